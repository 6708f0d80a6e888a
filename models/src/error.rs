//! The one error type of the crate: every failure names what failed, so a caller (the
//! server, the CLI) can report a bad model or a bad record without guessing.

/// Everything that can go wrong while loading a model or scoring a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model bytes exceed the size we are willing to parse.
    #[error("model document is too large: {size} bytes (limit {limit})")]
    TooLarge { size: usize, limit: usize },
    /// The PMML text is not UTF-8.
    #[error("model document is not UTF-8: {0}")]
    NotUtf8(String),
    /// A DOCTYPE makes entity expansion attacks possible; PMML never needs one.
    #[error("model document has a DOCTYPE, which is rejected")]
    Doctype,
    /// The document nests elements deeper than the limit.
    #[error("model document is nested too deeply (limit {limit})")]
    TooDeep { limit: usize },
    /// The document holds more XML nodes than the limit.
    #[error("model document has too many XML nodes (limit {limit})")]
    TooManyNodes { limit: usize },
    /// The bytes are not well-formed XML.
    #[error("model document is not well-formed XML at line {line}, column {column}: {reason}")]
    Xml {
        /// 1-based line of the error.
        line: u32,
        /// 1-based column of the error.
        column: u32,
        /// What the XML parser said.
        reason: String,
    },
    /// Well-formed XML, but not PMML (wrong root element).
    #[error("not a PMML document: {0}")]
    NotPmml(String),
    /// A PMML element or attribute value this evaluator does not implement.
    #[error("unsupported PMML: {0}")]
    Unsupported(String),
    /// The PMML is inconsistent: a missing attribute, a bad number, a dangling reference.
    #[error("invalid PMML: {0}")]
    InvalidModel(String),
    /// A field is referenced that is defined nowhere in scope.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// An input value is invalid for its field and the model says to return invalid.
    #[error("invalid value `{value}` for field `{field}`")]
    InvalidValue { field: String, value: String },
    /// A required input is missing and the model says to return invalid.
    #[error("missing value for field `{0}`")]
    MissingValue(String),
    /// Evaluation could not produce a result (e.g. a reference cycle between fields).
    #[error("evaluation failed: {0}")]
    Evaluation(String),
    /// The TensorFlow graph could not be loaded or run.
    #[error("tensorflow: {0}")]
    Tensorflow(String),
    /// The ONNX model could not be loaded or run (tract-onnx, or a graph shape we do not feed).
    #[error("onnx: {0}")]
    Onnx(String),
    /// A record or a batch has the wrong shape for the model.
    #[error("bad input: {0}")]
    Input(String),
}

/// Result alias of the crate.
pub type Result<T> = std::result::Result<T, Error>;
