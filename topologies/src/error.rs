//! The crate's one error type.

use std::net::SocketAddr;

/// What failed in the model server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(#[from] ks_engine::Error),
    /// A setting is out of range or malformed.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A Kafka client failed.
    #[error(transparent)]
    Kafka(#[from] ks_kafka::Error),
    /// An HTTP request (to a peer) failed.
    #[error("http {authority}{path}: {reason}")]
    Http {
        /// `host:port` asked.
        authority: String,
        /// The path asked.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The HTTP API's TLS files are unusable, or it could not be served.
    #[error(transparent)]
    HttpServer(#[from] ks_http::Error),
    /// A thread or runtime could not be started.
    #[error("cannot start {what}: {source}")]
    Start {
        /// What: `the model builder`, `the HTTP runtime`.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// A result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
