//! The file store's on-disk format: an append-only log of checksummed records.
//!
//! ```text
//! file   := MAGIC record*
//! record := len:u32le crc:u32le payload[len]          crc = crc32(payload)
//! payload:= 1 key_len:u32le key value                 a put
//!         | 2 key_len:u32le key                       a delete
//! ```
//!
//! Every record carries its length and checksum, so a write torn by a crash (a short tail, or
//! garbage where a record should be) is always detected instead of read as data.

use std::collections::BTreeMap;

pub(crate) const MAGIC: &[u8; 8] = b"KSFSLOG1";
const PUT: u8 = 1;
const DELETE: u8 = 2;
/// Bytes of a record around its key and value: len, crc, op, key_len.
pub(crate) const RECORD_OVERHEAD: usize = 4 + 4 + 1 + 4;

/// Appends one record to `out`: a put when `value` is given, else a delete.
pub(crate) fn encode(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    let payload_len = 1 + 4 + key.len() + value.map_or(0, <[u8]>::len);
    let start = out.len();
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(if value.is_some() { PUT } else { DELETE });
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    if let Some(v) = value {
        out.extend_from_slice(v);
    }
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Where and why a log could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Corruption {
    pub offset: u64,
    pub reason: String,
}

/// What a whole log holds once replayed.
pub(crate) struct Replayed {
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
    pub records: u64,
}

/// Replays a whole log file. Any damage, wherever it is, fails the whole replay: a prefix would
/// be a state that never existed at any checkpoint, so the store is rebuilt instead.
pub(crate) fn replay(bytes: &[u8]) -> Result<Replayed, Corruption> {
    let corrupt = |offset: usize, reason: String| Corruption {
        offset: offset as u64,
        reason,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(0, "missing or wrong file header".into()));
    }
    let mut map = BTreeMap::new();
    let mut records = 0;
    let mut at = MAGIC.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        let Some((len, crc)) = read_u32(rest, 0).zip(read_u32(rest, 4)) else {
            return Err(corrupt(
                at,
                format!("torn record header ({} bytes)", rest.len()),
            ));
        };
        let len = len as usize;
        let Some(payload) = rest.get(8..8 + len) else {
            return Err(corrupt(
                at,
                format!(
                    "torn record: {len} bytes announced, {} present",
                    rest.len() - 8
                ),
            ));
        };
        if crc32fast::hash(payload) != crc {
            return Err(corrupt(at, "record checksum mismatch".into()));
        }
        let (op, key, value) = split_payload(payload)
            .ok_or_else(|| corrupt(at, "record key length exceeds the record".into()))?;
        match op {
            PUT => {
                map.insert(key.to_vec(), value.to_vec());
            }
            DELETE if value.is_empty() => {
                map.remove(key);
            }
            DELETE => return Err(corrupt(at, "delete record with a value".into())),
            other => return Err(corrupt(at, format!("unknown record type {other}"))),
        }
        records += 1;
        at += 8 + len;
    }
    Ok(Replayed { map, records })
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn split_payload(payload: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let op = *payload.first()?;
    let key_len = read_u32(payload, 1)? as usize;
    let key = payload.get(5..5usize.checked_add(key_len)?)?;
    let value = &payload[5 + key_len..];
    Some((op, key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(ops: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (k, v) in ops {
            encode(&mut out, k, *v);
        }
        out
    }

    #[test]
    fn replays_puts_and_deletes() {
        let log = log_of(&[(b"a", Some(b"1")), (b"b", Some(b"")), (b"a", None)]);
        let r = replay(&log).unwrap();
        assert_eq!(r.records, 3);
        assert_eq!(
            r.map.into_iter().collect::<Vec<_>>(),
            vec![(b"b".to_vec(), vec![])]
        );
    }

    #[test]
    fn every_truncation_is_detected() {
        let log = log_of(&[(b"key-1", Some(b"value-1")), (b"key-2", Some(b"value-2"))]);
        let first_record_end = MAGIC.len() + RECORD_OVERHEAD + 5 + 7;
        for cut in 0..log.len() {
            let result = replay(&log[..cut]);
            if cut == MAGIC.len() || cut == first_record_end {
                assert!(result.is_ok(), "cut at a record boundary {cut}");
            } else {
                assert!(result.is_err(), "cut at {cut} was read as data");
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let log = log_of(&[(b"key", Some(b"value"))]);
        for i in 0..log.len() {
            let mut bad = log.clone();
            bad[i] ^= 0x5a;
            assert!(replay(&bad).is_err(), "flip at {i} was read as data");
        }
    }
}
