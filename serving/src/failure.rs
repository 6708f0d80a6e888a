//! [`FailureReport`]: a rejected model or record, as both servers write it to the errors topic.

use crate::Origin;

/// What was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A model message (undecodable, unreadable location, model that does not build).
    Model,
    /// A data record (undecodable, no data type, a model that cannot score it).
    Data,
    /// A control message on the model topic (malformed, or nothing to roll back to or promote).
    Control,
}

impl FailureKind {
    /// `model` or `data`, the `kind` of the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Model => "model",
            FailureKind::Data => "data",
            FailureKind::Control => "control",
        }
    }
}

/// One failure for the errors topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// A model or a data record.
    pub kind: FailureKind,
    /// Where the rejected message came from.
    pub origin: Origin,
    /// Its data type, empty when unknown.
    pub data_type: String,
    /// The model's name, empty when unknown or for a record.
    pub name: String,
    /// Why it was rejected.
    pub reason: String,
}

impl FailureReport {
    /// The errors-topic JSON: `{"kind", "dataType", "name", "error", "topic", "partition",
    /// "offset"}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "kind": self.kind.as_str(),
            "dataType": self.data_type,
            "name": self.name,
            "error": self.reason,
            "topic": self.origin.topic,
            "partition": self.origin.partition,
            "offset": self.origin.offset,
        })
        .to_string()
    }

    /// The errors-topic key: the data type, none when unknown.
    pub fn key(&self) -> Option<&[u8]> {
        (!self.data_type.is_empty()).then_some(self.data_type.as_bytes())
    }
}
