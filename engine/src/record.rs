//! Records as they flow between nodes: bytes, so one topology serves every serde.

/// A record header: name and value bytes.
pub type Header = (String, Vec<u8>);

/// A record inside a topology. `None` key or value as in Kafka (a `None` value is a tombstone
/// for tables).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch; the source record's timestamp unless a processor changes it.
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    pub fn new(key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) -> Record {
        Record {
            key,
            value,
            timestamp,
            headers: Vec::new(),
        }
    }

    pub fn with_value(&self, value: Option<Vec<u8>>) -> Record {
        Record {
            key: self.key.clone(),
            value,
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Where the record being processed came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A record leaving the topology through a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRecord {
    pub topic: String,
    /// Chosen by the sink's partitioner; `None` lets the producer partition by key.
    pub partition: Option<i32>,
    pub record: Record,
}
