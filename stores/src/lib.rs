//! ks-stores: the state stores of ks — in-memory, RocksDB and a custom file-backed store — each
//! changelogged to Kafka and restorable from it, Kafka Streams style.
//!
//! Layout:
//! - [`store`]: the traits, at the bytes level and object-safe: [`StateStore`] (name,
//!   persistence, flush, close, restore), [`ReadOnlyKeyValueStore`] (the one read side every
//!   query is written against) and [`KeyValueStore`] (writes). Every method takes `&self`;
//!   stores are `Send + Sync` and shared as `Arc<dyn KeyValueStore>`.
//! - [`memory`], [`rocksdb`], [`file`]: the three implementations. Persistent ones live under
//!   `<state.dir>/<application.id>/<task>/{rocksdb,file}/<store>`.
//! - [`changelog`]: [`ChangelogSink`] (the engine's producer, or [`KafkaChangelogSink`]) and
//!   [`ChangeLoggingStore`], which sends every write to `<application.id>-<store>-changelog`.
//! - [`restore`]: rebuilds a store from its changelog partition, up to partition EOF.
//! - [`checkpoint`]: the per-task `.checkpoint` file of changelog offsets.
//! - [`spec`]: [`StoreSpec`] + [`StoreContext`] -> [`OpenedStore`], which tells whether the local
//!   state can be trusted (and so whether to honour the checkpoint).
//! - [`window`]: [`WindowStore`] and [`SessionStore`] over any key-value store, with Kafka
//!   Streams' windowed key layouts and retention.
//! - [`serde`]: typed keys and values ([`TypedStore`]) over the byte stores.
//!
//! A task's life with one store:
//!
//! ```no_run
//! use std::sync::Arc;
//! use ks_stores::*;
//!
//! # fn main() -> ks_stores::Result<()> {
//! let ctx = StoreContext::new("/var/lib/ks", "wordcount", "0_3", 3);
//! let sink = Arc::new(KafkaChangelogSink::new("localhost:9092")?);
//! let spec = StoreSpec::new("counts", StoreKind::RocksDb);
//! let opened = spec.open(&ctx, Some(sink.clone()))?;
//!
//! // Before processing: restore the changelog tail (all of it unless the state is trusted).
//! let mut checkpoint = Checkpoint::read(ctx.checkpoint_path()?)?;
//! let restored = opened.restore(&RestoreConfig::new("localhost:9092"), &checkpoint)?;
//!
//! // Processing writes through the changelogging layer; queries read a shared view.
//! let counts = TypedStore::new(opened.store.clone(), StringSerde, I64Serde);
//! counts.put(&"hello".to_string(), &1)?;
//! let view = ReadOnlyTypedStore::new(opened.read_only(), StringSerde, I64Serde);
//! assert_eq!(view.get(&"hello".to_string())?, Some(1));
//!
//! // Commit: flush the store, wait for the changelog acks, then checkpoint.
//! opened.store.flush()?;
//! let acked = sink.flush()?;
//! let topic = opened.changelog_topic.clone().unwrap_or_default();
//! if let Some(offset) = acked.get(&(topic.clone(), 3)).copied()
//!     .or(restored.and_then(|r| r.checkpoint_offset()))
//! {
//!     checkpoint.set(topic, 3, offset);
//! }
//! checkpoint.write(ctx.checkpoint_path()?)?;
//! # Ok(()) }
//! ```

pub mod changelog;
pub mod checkpoint;
mod error;
pub mod file;
pub mod memory;
pub mod restore;
pub mod rocksdb;
pub mod serde;
pub mod spec;
pub mod store;
pub mod window;

pub use crate::changelog::{
    changelog_topic, AckedOffsets, ChangeLoggingStore, ChangelogSink, KafkaChangelogSink,
    MemoryChangelogSink,
};
pub use crate::checkpoint::{Checkpoint, CHECKPOINT_FILE};
pub use crate::error::{Error, Result};
pub use crate::file::{CompactionPolicy, FileKeyValueStore};
pub use crate::memory::InMemoryKeyValueStore;
pub use crate::restore::{
    restore, EofAwareContext, RestoreConfig, RestoreConsumers, RestoreProgress, RestoreStats,
    Restorer,
};
pub use crate::rocksdb::{RocksDbConfig, RocksDbKeyValueStore, RocksDbMemoryUsage, RocksDbShared};
pub use crate::serde::{
    BytesSerde, F64Serde, I32Serde, I64Serde, JsonSerde, ProstSerde, ReadOnlyTypedStore, Serde,
    StringSerde, TypedStore, U32Serde, U64Serde,
};
pub use crate::spec::{LocalState, OpenedStore, StoreContext, StoreFactory, StoreKind, StoreSpec};
pub use crate::store::{
    read_only, ChangelogRecord, KeyValue, KeyValueStore, ReadOnlyKeyValueStore, StateStore, Visitor,
};
pub use crate::window::{
    find_all_sessions_in, find_sessions_in, session_store_key, split_session_store_key,
    split_window_store_key, window_store_key, ReadOnlySessionStore, ReadOnlyWindowStore,
    SessionEntry, SessionStore, WindowEntry, WindowStore, WindowStoreConfig,
};
