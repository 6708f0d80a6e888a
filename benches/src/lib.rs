//! `ks-bench`: end-to-end throughput, latency and memory of `ks-server` against the broker's own
//! limit, all measured in one run over the same preloaded records.
//!
//! - `passthrough`: a bare consumer -> producer copy of the data topic (the practical limit);
//! - `memory`, `standard`, `custom`: `ks-server` (a child process) scoring the same records from
//!   offset 0;
//! - `kstreams`: the same job on Apache Kafka Streams (the Java peer in `benches/peers/kafka-streams`);
//! - `state_value`: `/state/value` latency under concurrent HTTP load while a server scores at
//!   full rate;
//! - `steady`: end-to-end latency at a fixed input rate with the server caught up;
//! - `swap`: records/s while a new model is swapped in every second, against the same server's
//!   steady phases in between.
//!
//! One JSON line per mode on stdout; progress on stderr. See `benches/README.md`.

pub mod bench;
pub mod cli;
pub mod copier;
pub mod failover;
pub mod http;
pub mod kafka;
pub mod report;
pub mod server;
pub mod swap;
