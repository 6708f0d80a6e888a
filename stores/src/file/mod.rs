//! [`FileKeyValueStore`]: the tutorial's custom store, grown up. Entries live in an ordered map
//! in memory and in an append-only log file `<task>/file/<store>/data.log` (format in
//! `log`), reopened on restart.
//!
//! Crash safety: records are checksummed, so a torn tail is detected on open; the store then
//! moves the damaged file aside (`data.log.corrupt`), starts empty and reports
//! [`LocalState::Recovered`] so the engine restores it from the whole changelog. New files and
//! compactions are written to a temporary file, fsynced and renamed over the log (then the
//! directory is fsynced), so a crash leaves either the old or the new file, never a mix.
//! [`StateStore::flush`] fsyncs the log: the engine checkpoints only after it.

mod log;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::memory::scan_map;
use crate::store::{ChangelogRecord, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor};
use crate::{Error, LocalState, Result};

const LOG: &str = "data.log";
const TMP: &str = "data.log.tmp";
const CORRUPT: &str = "data.log.corrupt";

/// When the log is compacted: once it is larger than `min_bytes` and more than `ratio` times the
/// bytes its live entries need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    pub min_bytes: u64,
    pub ratio: f64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            min_bytes: 4 << 20,
            ratio: 2.0,
        }
    }
}

pub struct FileKeyValueStore {
    name: String,
    dir: PathBuf,
    policy: CompactionPolicy,
    // None once closed.
    state: RwLock<Option<Files>>,
}

struct Files {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    log: BufWriter<File>,
    log_bytes: u64,
    live_bytes: u64,
    // Reused for encoding, so a put allocates nothing but the map entry.
    scratch: Vec<u8>,
}

fn record_len(key: &[u8], value: &[u8]) -> u64 {
    (log::RECORD_OVERHEAD + key.len() + value.len()) as u64
}

impl FileKeyValueStore {
    /// Opens (creating if needed) the store kept in directory `dir`.
    pub fn open(
        name: impl Into<String>,
        dir: impl AsRef<Path>,
        policy: CompactionPolicy,
    ) -> Result<(Self, LocalState)> {
        let name = name.into();
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = dir.join(TMP);
        // A compaction that crashed before its rename: the log itself is intact.
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        let path = dir.join(LOG);
        let (map, state) = if path.exists() {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            match log::replay(&bytes) {
                Ok(replayed) => {
                    ::log::debug!(
                        "file store {name}: replayed {} records into {} entries",
                        replayed.records,
                        replayed.map.len()
                    );
                    (replayed.map, LocalState::Reopened)
                }
                Err(c) => {
                    let err = Error::CorruptStoreFile {
                        path: path.clone(),
                        offset: c.offset,
                        reason: c.reason,
                    };
                    ::log::warn!("file store {name}: {err}; rebuilding it from the changelog");
                    let aside = dir.join(CORRUPT);
                    std::fs::rename(&path, &aside).map_err(|e| Error::io(&aside, e))?;
                    (
                        BTreeMap::new(),
                        LocalState::Recovered {
                            reason: err.to_string(),
                        },
                    )
                }
            }
        } else {
            (BTreeMap::new(), LocalState::Fresh)
        };
        let store = FileKeyValueStore {
            name,
            dir,
            policy,
            state: RwLock::new(None),
        };
        let live_bytes = map.iter().map(|(k, v)| record_len(k, v)).sum();
        // Rewriting also creates a missing log crash-safely and drops the garbage of the last
        // run, so a reopened log never needs appending to an unknown tail.
        let files = store.rewrite(map, live_bytes)?;
        *store.lock_write_raw()? = Some(files);
        Ok((store, state))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `map` as a fresh log: temporary file, fsync, rename, fsync of the directory.
    fn rewrite(&self, map: BTreeMap<Vec<u8>, Vec<u8>>, live_bytes: u64) -> Result<Files> {
        let tmp = self.dir.join(TMP);
        let path = self.dir.join(LOG);
        let mut bytes = Vec::with_capacity(log::MAGIC.len() + live_bytes as usize);
        bytes.extend_from_slice(log::MAGIC);
        for (k, v) in &map {
            log::encode(&mut bytes, k, Some(v));
        }
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&self.dir, e))?;
        let log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Files {
            map,
            log: BufWriter::with_capacity(64 << 10, log),
            log_bytes: bytes.len() as u64,
            live_bytes,
            scratch: Vec::new(),
        })
    }

    fn lock_write_raw(&self) -> Result<RwLockWriteGuard<'_, Option<Files>>> {
        self.state
            .write()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Option<Files>>> {
        let guard = self
            .state
            .read()
            .map_err(|_| Error::LockPoisoned(self.name.clone()))?;
        if guard.is_none() {
            return Err(Error::StoreClosed(self.name.clone()));
        }
        Ok(guard)
    }

    /// Runs `f` on the open files under the write lock, then compacts if the log has grown.
    fn write<T>(&self, f: impl FnOnce(&mut Files) -> Result<T>) -> Result<T> {
        let mut guard = self.lock_write_raw()?;
        let files = guard
            .as_mut()
            .ok_or_else(|| Error::StoreClosed(self.name.clone()))?;
        let out = f(files)?;
        if files.log_bytes > self.policy.min_bytes
            && files.log_bytes as f64 > self.policy.ratio * files.live_bytes as f64
        {
            if let Some(old) = guard.take() {
                let Files {
                    map,
                    mut log,
                    live_bytes,
                    ..
                } = old;
                // The old log must be complete on disk only if the rewrite fails; flush it so a
                // failed compaction leaves a readable log behind.
                let path = self.dir.join(LOG);
                log.flush().map_err(|e| Error::io(&path, e))?;
                drop(log);
                *guard = Some(self.rewrite(map, live_bytes)?);
            }
        }
        Ok(out)
    }

    fn append(&self, files: &mut Files, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        files.scratch.clear();
        log::encode(&mut files.scratch, key, value);
        files
            .log
            .write_all(&files.scratch)
            .map_err(|e| Error::io(self.dir.join(LOG), e))?;
        files.log_bytes += files.scratch.len() as u64;
        Ok(())
    }

    fn apply(
        &self,
        files: &mut Files,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        self.append(files, key, value)?;
        let old = match value {
            Some(v) => {
                files.live_bytes += record_len(key, v);
                files.map.insert(key.to_vec(), v.to_vec())
            }
            None => files.map.remove(key),
        };
        if let Some(old) = &old {
            files.live_bytes = files.live_bytes.saturating_sub(record_len(key, old));
        }
        Ok(old)
    }

    fn sync(&self, files: &mut Files) -> Result<()> {
        let path = self.dir.join(LOG);
        files.log.flush().map_err(|e| Error::io(&path, e))?;
        files
            .log
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io(&path, e))
    }
}

impl StateStore for FileKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<()> {
        self.write(|files| self.sync(files))
    }

    fn close(&self) -> Result<()> {
        let mut guard = self.lock_write_raw()?;
        match guard.take() {
            Some(mut files) => self.sync(&mut files),
            None => Ok(()),
        }
    }

    fn restore_batch(&self, records: &[ChangelogRecord]) -> Result<()> {
        self.write(|files| {
            for (k, v) in records {
                self.apply(files, k, v.as_deref())?;
            }
            Ok(())
        })
    }
}

impl ReadOnlyKeyValueStore for FileKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.read()?.as_ref().and_then(|f| f.map.get(key).cloned()))
    }

    fn scan(&self, from: Option<&[u8]>, to: Option<&[u8]>, visit: Visitor<'_>) -> Result<()> {
        if let Some(files) = self.read()?.as_ref() {
            scan_map(&files.map, from, to, visit);
        }
        Ok(())
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.read()?.as_ref().map_or(0, |f| f.map.len() as u64))
    }
}

impl KeyValueStore for FileKeyValueStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write(|files| self.apply(files, key, Some(value)).map(|_| ()))
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.write(|files| match files.map.get(key) {
            Some(existing) => Ok(Some(existing.clone())),
            None => self.apply(files, key, Some(value)).map(|_| None),
        })
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.write(|files| {
            if !files.map.contains_key(key) {
                return Ok(None);
            }
            self.apply(files, key, None)
        })
    }
}

impl Drop for FileKeyValueStore {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            ::log::warn!("closing file store {} on drop: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_keeps_live_entries_and_shrinks_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let policy = CompactionPolicy {
            min_bytes: 4 << 10,
            ratio: 2.0,
        };
        let (s, _) = FileKeyValueStore::open("s", dir.path(), policy).unwrap();
        for round in 0..100u32 {
            for k in 0..10u32 {
                s.put(&k.to_be_bytes(), &round.to_be_bytes()).unwrap();
            }
        }
        s.delete(&3u32.to_be_bytes()).unwrap();
        drop(s);
        let size = std::fs::metadata(dir.path().join(LOG)).unwrap().len();
        assert!(size < 8 << 10, "log not compacted: {size} B");
        let (s, state) = FileKeyValueStore::open("s", dir.path(), policy).unwrap();
        assert_eq!(state, LocalState::Reopened);
        assert_eq!(s.approximate_num_entries().unwrap(), 9);
        assert_eq!(
            s.get(&0u32.to_be_bytes()).unwrap(),
            Some(99u32.to_be_bytes().to_vec())
        );
        assert_eq!(s.get(&3u32.to_be_bytes()).unwrap(), None);
    }

    #[test]
    fn leftover_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = FileKeyValueStore::open("s", dir.path(), CompactionPolicy::default()).unwrap();
        s.put(b"k", b"v").unwrap();
        drop(s);
        std::fs::write(dir.path().join(TMP), b"half a compaction").unwrap();
        let (s, state) =
            FileKeyValueStore::open("s", dir.path(), CompactionPolicy::default()).unwrap();
        assert_eq!(state, LocalState::Reopened);
        assert_eq!(s.get(b"k").unwrap(), Some(b"v".to_vec()));
    }
}
