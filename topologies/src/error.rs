/// What failed in the model server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("engine: {0}")]
    Engine(#[from] ks_engine::Error),
    #[error("model: {0}")]
    Model(#[from] ks_models::Error),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot read model file {path}: {reason}")]
    ModelFile { path: String, reason: String },
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("http: {0}")]
    Http(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
