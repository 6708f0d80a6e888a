//! ks: facade over the workspace crates.
pub use ks_broker as broker;
pub use ks_proto as proto;
