//! Crash-safe state files: `magic (4) | payload length (u32 LE) | CRC32 of payload (u32 LE) |
//! payload`, written to a temporary file, fsynced, renamed over the old one, and the directory
//! fsynced. A reader sees the old file or the new one, never a half-written one; a file cut
//! short or altered anyway (disk trouble, a copy gone wrong) fails the length or CRC check and
//! is reported as [`Error::CorruptState`] instead of being loaded.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 4] = b"KSA1";
const HEADER: usize = 12;

/// Writes `payload` to `path` crash-safely.
pub fn write(path: &Path, payload: &[u8]) -> Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| Error::CorruptState {
        path: path.to_path_buf(),
        reason: format!("payload of {} bytes is over 4 GiB", payload.len()),
    })?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(MAGIC);
        header[4..8].copy_from_slice(&len.to_le_bytes());
        header[8..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        f.write_all(&header).map_err(Error::io(&tmp))?;
        f.write_all(payload).map_err(Error::io(&tmp))?;
        f.sync_all().map_err(Error::io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(Error::io(path))?;
    // The rename itself is only durable once the directory entry is.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io(dir))?;
    }
    Ok(())
}

/// Reads a file written by [`write`]; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path)(e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|reason| Error::CorruptState {
            path: path.to_path_buf(),
            reason,
        })
}

fn decode(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let Some((header, payload)) = bytes.split_first_chunk::<HEADER>() else {
        return Err(format!(
            "truncated: {} bytes, shorter than the header",
            bytes.len()
        ));
    };
    if &header[..4] != MAGIC {
        return Err("not a ks-reactive state file (bad magic)".into());
    }
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, crc) = (word(4) as usize, word(8));
    if payload.len() != len {
        return Err(format!(
            "truncated: header says {len} payload bytes, file holds {}",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("CRC mismatch: the payload is damaged".into());
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let dir = std::env::temp_dir().join(format!("ks-framed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.bin");
        write(&p, b"hello state").unwrap();
        assert_eq!(read(&p).unwrap().as_deref(), Some(&b"hello state"[..]));
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 3]).unwrap();
        assert!(matches!(read(&p), Err(Error::CorruptState { .. })));
        let mut flipped = full.clone();
        flipped[14] ^= 1;
        std::fs::write(&p, &flipped).unwrap();
        assert!(matches!(read(&p), Err(Error::CorruptState { .. })));
        assert!(matches!(read(&dir.join("missing")), Ok(None)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
