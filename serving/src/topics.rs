//! The topics a model server reads and writes.

/// The data type `/state` and `/state/value` answer for without one in the path (the
/// tutorial's default).
pub const DEFAULT_DATA_TYPE: &str = ks_proto::WINE_DATA_TYPE;

/// The topics a server reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Wine records to score.
    pub data: String,
    /// Model messages.
    pub models: String,
    /// Results.
    pub results: String,
    /// Rejected records and models.
    pub errors: String,
}

impl Default for Topics {
    fn default() -> Topics {
        Topics {
            data: "models_data".into(),
            models: "models_models".into(),
            results: "models_results".into(),
            errors: "models_errors".into(),
        }
    }
}
