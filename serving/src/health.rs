//! [`Health`]: what `/health` answers, the same shape from both servers.

use serde::{Deserialize, Serialize};

/// `/health`: 200 when `healthy`, 503 when not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Whether the server is serving.
    pub healthy: bool,
    /// The server's state (ks-server: the engine state, `Running`, `Error(..)`, …).
    pub state: String,
    /// `reachable`, `unreachable` (no broker connection up: 503) or `unknown` (no client
    /// statistics yet, or a server that does not track them).
    pub broker: String,
}
