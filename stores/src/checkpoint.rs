//! The per-task `.checkpoint` file: for each changelog partition, the offset of the last record
//! the task's stores hold durably. Same text format as Kafka Streams:
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! app-counts-changelog 3 1041
//! app-totals-changelog 3 77
//! ```
//!
//! Written atomically (temporary file, fsync, rename, fsync of the directory), and only after the
//! stores were flushed and the changelog writes acked: a checkpoint never claims more than the
//! stores and the changelog both have.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

const VERSION: &str = "0";

/// The checkpoint file's name inside a task directory.
pub const CHECKPOINT_FILE: &str = ".checkpoint";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    offsets: BTreeMap<(String, i32), i64>,
}

impl Checkpoint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a checkpoint file; a missing file is an empty checkpoint (nothing to trust).
    pub fn read(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoint::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Checkpoint> {
        let bad = |line: usize, reason: String| Error::MalformedCheckpoint {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
        match lines.next() {
            Some((_, VERSION)) => {}
            Some((n, v)) => return Err(bad(n, format!("unsupported version {v:?}"))),
            None => return Err(bad(1, "empty file".into())),
        }
        let (n, count) = lines
            .next()
            .ok_or_else(|| bad(2, "missing entry count".into()))?;
        let count: usize = count
            .parse()
            .map_err(|_| bad(n, format!("entry count {count:?} is not a number")))?;
        let mut offsets = BTreeMap::new();
        for (n, line) in lines.filter(|(_, l)| !l.is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(topic), Some(partition), Some(offset), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(
                    n,
                    format!("expected `topic partition offset`, got {line:?}"),
                ));
            };
            let partition: i32 = partition
                .parse()
                .map_err(|_| bad(n, format!("partition {partition:?} is not a number")))?;
            let offset: i64 = offset
                .parse()
                .map_err(|_| bad(n, format!("offset {offset:?} is not a number")))?;
            offsets.insert((topic.to_string(), partition), offset);
        }
        if offsets.len() != count {
            return Err(bad(
                2,
                format!("announces {count} entries, holds {}", offsets.len()),
            ));
        }
        Ok(Checkpoint { offsets })
    }

    /// Writes the checkpoint atomically: readers see the old file or the new one, never a part.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut text = format!("{VERSION}\n{}\n", self.offsets.len());
        for ((topic, partition), offset) in &self.offsets {
            text.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))
    }

    /// Removes a checkpoint file (Kafka Streams does so under exactly-once once it has read it,
    /// so that a crash before the next clean commit wipes the store). Missing is fine.
    pub fn delete(path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// The offset of the last record held for this changelog partition, if checkpointed.
    pub fn offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(&(topic.to_string(), partition)).copied()
    }

    pub fn set(&mut self, topic: impl Into<String>, partition: i32, offset: i64) {
        self.offsets.insert((topic.into(), partition), offset);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.remove(&(topic.to_string(), partition))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.offsets.iter().map(|((t, p), o)| (t.as_str(), *p, *o))
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0_1").join(CHECKPOINT_FILE);
        let mut c = Checkpoint::new();
        c.set("app-a-changelog", 1, 41);
        c.set("app-b-changelog", 1, 7);
        c.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), c);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Checkpoint::read(dir.path().join("none"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        for text in [
            "",
            "1\n0\n",
            "0\nx\n",
            "0\n1\nt 0\n",
            "0\n1\nt zero 5\n",
            "0\n2\nt 0 5\n",
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(
                matches!(
                    Checkpoint::read(&path),
                    Err(Error::MalformedCheckpoint { .. })
                ),
                "{text:?} was accepted"
            );
        }
    }
}
