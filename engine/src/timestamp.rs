//! Event time: where a record's timestamp comes from ([`TimestampExtractor`], Kafka Streams'
//! interface of the same name) and how a partition's time survives a restart (committed with
//! the partition's offset, in Kafka Streams' own metadata format).
//!
//! The extracted timestamp becomes the record's timestamp for the whole sub-topology: stream
//! time, stream-time punctuation and the timestamps of output records follow it. A negative
//! timestamp is invalid: the record is not processed and goes to the configured error handler
//! (continue, fail or dead letter) as an [`Error::InvalidTimestamp`](crate::Error::InvalidTimestamp).
//!
//! ```
//! use ks_engine::timestamp::TimestampExtractor;
//! use ks_engine::{Record, RecordMetadata, Result};
//!
//! /// Event time from the first 8 bytes of the value (big-endian milliseconds).
//! struct FromValue;
//! impl TimestampExtractor for FromValue {
//!     fn extract(&self, _: &RecordMetadata, r: &Record, _partition_time: i64) -> Result<i64> {
//!         let bytes = r.value.as_deref().and_then(|v| v.get(..8)).unwrap_or(&[]);
//!         Ok(<[u8; 8]>::try_from(bytes).map(i64::from_be_bytes).unwrap_or(-1))
//!     }
//! }
//! ```

use crate::record::{Record, RecordMetadata};
use crate::Result;
use base64::Engine;

/// Where a record's event time comes from. `partition_time` is the highest timestamp processed
/// so far from the record's partition (-1 before the first).
pub trait TimestampExtractor: Send + Sync {
    fn extract(
        &self,
        metadata: &RecordMetadata,
        record: &Record,
        partition_time: i64,
    ) -> Result<i64>;
}

/// The record's own timestamp (set by the producer or the broker): the default. An invalid
/// (negative) one goes to the error handler, as Kafka Streams' `FailOnInvalidTimestamp` fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordTimestamp;

impl TimestampExtractor for RecordTimestamp {
    fn extract(&self, _: &RecordMetadata, record: &Record, _: i64) -> Result<i64> {
        Ok(record.timestamp)
    }
}

/// The record's timestamp, or the partition's time when the record's is invalid (Kafka
/// Streams' `UsePartitionTimeOnInvalidTimestamp`); invalid before the partition has a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsePartitionTimeOnInvalid;

impl TimestampExtractor for UsePartitionTimeOnInvalid {
    fn extract(&self, _: &RecordMetadata, record: &Record, partition_time: i64) -> Result<i64> {
        Ok(if record.timestamp >= 0 {
            record.timestamp
        } else {
            partition_time
        })
    }
}

/// Processing time: the wall clock when the record is processed (Kafka Streams'
/// `WallclockTimestampExtractor`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WallclockTimestamp;

impl TimestampExtractor for WallclockTimestamp {
    fn extract(&self, _: &RecordMetadata, _: &Record, _: i64) -> Result<i64> {
        Ok(crate::runtime::now_ms())
    }
}

/// Kafka Streams' offset-metadata versions: 1 holds the partition time, 2 adds processor
/// metadata after it (read, not kept).
const PARTITION_TIME_V1: u8 = 1;
const PARTITION_TIME_V2: u8 = 2;

/// The commit metadata recording `partition_time`, in Kafka Streams' format (base64 of a
/// version byte and the big-endian time), so either engine resumes from the other's commits.
pub(crate) fn encode_partition_time(partition_time: i64) -> String {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(PARTITION_TIME_V1);
    bytes.extend_from_slice(&partition_time.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The partition time recorded in commit metadata, if it holds one (empty or foreign metadata
/// holds none).
pub(crate) fn decode_partition_time(metadata: &str) -> Option<i64> {
    if metadata.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(metadata)
        .ok()?;
    match bytes.split_first() {
        Some((&(PARTITION_TIME_V1 | PARTITION_TIME_V2), rest)) => rest
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .filter(|t| *t >= 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_time_round_trips_through_commit_metadata() {
        for t in [0, 1, 1_700_000_000_000, i64::MAX] {
            assert_eq!(decode_partition_time(&encode_partition_time(t)), Some(t));
        }
    }

    #[test]
    fn reads_kafka_streams_version_2_and_ignores_what_it_cannot_read() {
        // Version 2: the time, then processor metadata.
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&42i64.to_be_bytes());
        v2.extend_from_slice(&[0, 0, 0, 0]);
        let v2 = base64::engine::general_purpose::STANDARD.encode(v2);
        assert_eq!(decode_partition_time(&v2), Some(42));
        assert_eq!(decode_partition_time(""), None);
        assert_eq!(decode_partition_time("not base64!"), None);
        assert_eq!(decode_partition_time("AQ=="), None); // version 1, no time
        let v9 = base64::engine::general_purpose::STANDARD.encode([9u8; 9]);
        assert_eq!(decode_partition_time(&v9), None);
    }

    #[test]
    fn partition_time_stands_in_for_an_invalid_timestamp() {
        let md = RecordMetadata {
            topic: "t".into(),
            partition: 0,
            offset: 0,
        };
        let bad = Record {
            key: None,
            value: None,
            timestamp: -1,
            headers: Vec::new(),
        };
        assert_eq!(
            UsePartitionTimeOnInvalid.extract(&md, &bad, 77).ok(),
            Some(77)
        );
        assert_eq!(RecordTimestamp.extract(&md, &bad, 77).ok(), Some(-1));
    }
}
