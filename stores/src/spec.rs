//! Building a task's stores: a [`StoreSpec`] (name, kind, logging) opened in a [`StoreContext`]
//! (state dir, application, task) gives an [`OpenedStore`] that says whether its local state can
//! be trusted, and so whether the checkpoint is honoured on restore.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::changelog::{changelog_topic, ChangeLoggingStore, ChangelogSink};
use crate::checkpoint::{Checkpoint, CHECKPOINT_FILE};
use crate::file::{CompactionPolicy, FileKeyValueStore};
use crate::memory::InMemoryKeyValueStore;
use crate::restore::{restore, RestoreConfig, RestoreStats, Restorer};
use crate::rocksdb::{RocksDbKeyValueStore, RocksDbShared};
use crate::store::{read_only, KeyValueStore, ReadOnlyKeyValueStore};
use crate::{Error, Result};

/// What an opened store found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalState {
    /// Nothing there (or not persistent): restore from the beginning of the changelog.
    Fresh,
    /// Intact state from an earlier run: restore only the changelog after the checkpoint.
    Reopened,
    /// Damaged state was found and discarded: restore from the beginning.
    Recovered { reason: String },
}

impl LocalState {
    /// Whether a checkpoint for this store may be honoured.
    pub fn is_trusted(&self) -> bool {
        matches!(self, LocalState::Reopened)
    }
}

/// Where a task's stores live and which partition they log to.
#[derive(Clone)]
pub struct StoreContext {
    pub state_dir: PathBuf,
    pub application_id: String,
    /// Kafka Streams style `<subtopology>_<partition>`, e.g. `0_3`.
    pub task_id: String,
    pub partition: i32,
    pub rocksdb: RocksDbShared,
    pub file_compaction: CompactionPolicy,
}

impl StoreContext {
    /// A context using the process-wide RocksDB resources ([`RocksDbShared::global`]).
    pub fn new(
        state_dir: impl Into<PathBuf>,
        application_id: impl Into<String>,
        task_id: impl Into<String>,
        partition: i32,
    ) -> Self {
        StoreContext {
            state_dir: state_dir.into(),
            application_id: application_id.into(),
            task_id: task_id.into(),
            partition,
            rocksdb: RocksDbShared::global(),
            file_compaction: CompactionPolicy::default(),
        }
    }

    pub fn with_rocksdb(mut self, shared: RocksDbShared) -> Self {
        self.rocksdb = shared;
        self
    }

    /// `<state.dir>/<application.id>/<task>`.
    pub fn task_dir(&self) -> Result<PathBuf> {
        path_segment("application id", &self.application_id)?;
        path_segment("task id", &self.task_id)?;
        Ok(self
            .state_dir
            .join(&self.application_id)
            .join(&self.task_id))
    }

    /// `<task dir>/.checkpoint`.
    pub fn checkpoint_path(&self) -> Result<PathBuf> {
        Ok(self.task_dir()?.join(CHECKPOINT_FILE))
    }

    pub fn changelog_topic(&self, store: &str) -> String {
        changelog_topic(&self.application_id, store)
    }

    /// `<task dir>/<kind>/<store>`, the directory of a persistent store.
    pub fn store_dir(&self, kind_dir: &str, store: &str) -> Result<PathBuf> {
        path_segment("store name", store)?;
        Ok(self.task_dir()?.join(kind_dir).join(store))
    }
}

// Names become directories: one plain segment each, or a name could escape the state dir.
fn path_segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{what} {s:?} cannot be a directory name"
        )))
    }
}

/// Opens a kind of store. The built-in kinds are [`StoreKind`]; implement this for a store of
/// one's own.
pub trait StoreFactory: Send + Sync {
    fn open(&self, name: &str, ctx: &StoreContext) -> Result<(Arc<dyn KeyValueStore>, LocalState)>;

    /// Removes the store's local state (call it with the store closed): Kafka Streams wipes a
    /// persistent store found without checkpoint under exactly-once.
    fn wipe(&self, name: &str, ctx: &StoreContext) -> Result<()>;
}

/// The built-in store kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    InMemory,
    RocksDb,
    File,
}

impl StoreKind {
    /// The directory under the task directory, for persistent kinds.
    pub fn dir_name(self) -> Option<&'static str> {
        match self {
            StoreKind::InMemory => None,
            StoreKind::RocksDb => Some("rocksdb"),
            StoreKind::File => Some("file"),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::InMemory => "in-memory",
            StoreKind::RocksDb => "rocksdb",
            StoreKind::File => "file",
        })
    }
}

impl FromStr for StoreKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "in-memory" | "inmemory" | "memory" => Ok(StoreKind::InMemory),
            "rocksdb" | "rocks" => Ok(StoreKind::RocksDb),
            "file" => Ok(StoreKind::File),
            _ => Err(Error::InvalidConfig(format!(
                "unknown store kind {s:?} (in-memory, rocksdb, file)"
            ))),
        }
    }
}

impl StoreFactory for StoreKind {
    fn open(&self, name: &str, ctx: &StoreContext) -> Result<(Arc<dyn KeyValueStore>, LocalState)> {
        match self {
            StoreKind::InMemory => {
                path_segment("store name", name)?;
                Ok((
                    Arc::new(InMemoryKeyValueStore::new(name)),
                    LocalState::Fresh,
                ))
            }
            StoreKind::RocksDb => {
                let dir = ctx.store_dir("rocksdb", name)?;
                let (s, state) = RocksDbKeyValueStore::open(name, dir, &ctx.rocksdb)?;
                Ok((Arc::new(s), state))
            }
            StoreKind::File => {
                let dir = ctx.store_dir("file", name)?;
                let (s, state) = FileKeyValueStore::open(name, dir, ctx.file_compaction)?;
                Ok((Arc::new(s), state))
            }
        }
    }

    fn wipe(&self, name: &str, ctx: &StoreContext) -> Result<()> {
        let Some(kind_dir) = self.dir_name() else {
            return Ok(());
        };
        let dir = ctx.store_dir(kind_dir, name)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&dir, e)),
            _ => Ok(()),
        }
    }
}

/// How to build one store of a task.
#[derive(Clone)]
pub struct StoreSpec {
    pub name: String,
    /// Whether writes go to the changelog (and the store can be restored from it).
    pub logging: bool,
    factory: Arc<dyn StoreFactory>,
    kind: Option<StoreKind>,
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSpec")
            .field("name", &self.name)
            .field("logging", &self.logging)
            .field(
                "kind",
                &self.kind.map_or("custom".to_string(), |k| k.to_string()),
            )
            .finish()
    }
}

impl StoreSpec {
    /// A built-in store, changelogged.
    pub fn new(name: impl Into<String>, kind: StoreKind) -> Self {
        StoreSpec {
            name: name.into(),
            logging: true,
            factory: Arc::new(kind),
            kind: Some(kind),
        }
    }

    /// A user-defined store, changelogged.
    pub fn custom(name: impl Into<String>, factory: Arc<dyn StoreFactory>) -> Self {
        StoreSpec {
            name: name.into(),
            logging: true,
            factory,
            kind: None,
        }
    }

    pub fn with_logging(mut self, logging: bool) -> Self {
        self.logging = logging;
        self
    }

    /// The built-in kind, `None` for a custom store.
    pub fn kind(&self) -> Option<StoreKind> {
        self.kind
    }

    /// Opens the store for a task; with logging, wraps it so every write also goes to `sink`.
    pub fn open(
        &self,
        ctx: &StoreContext,
        sink: Option<Arc<dyn ChangelogSink>>,
    ) -> Result<OpenedStore> {
        let (inner, local_state) = self.factory.open(&self.name, ctx)?;
        self.wrap_opened(inner, local_state, ctx, sink)
    }

    /// A store already open elsewhere (a standby copy handed to the task taking its place),
    /// wrapped as [`StoreSpec::open`] wraps a new one; its state is trusted as it is.
    pub fn wrap(
        &self,
        inner: Arc<dyn KeyValueStore>,
        ctx: &StoreContext,
        sink: Option<Arc<dyn ChangelogSink>>,
    ) -> Result<OpenedStore> {
        self.wrap_opened(inner, LocalState::Reopened, ctx, sink)
    }

    fn wrap_opened(
        &self,
        inner: Arc<dyn KeyValueStore>,
        local_state: LocalState,
        ctx: &StoreContext,
        sink: Option<Arc<dyn ChangelogSink>>,
    ) -> Result<OpenedStore> {
        let (store, changelog_topic): (Arc<dyn KeyValueStore>, _) = match (self.logging, sink) {
            (true, Some(sink)) => {
                let topic = ctx.changelog_topic(&self.name);
                (
                    Arc::new(ChangeLoggingStore::new(
                        inner.clone(),
                        sink,
                        topic.clone(),
                        ctx.partition,
                    )),
                    Some(topic),
                )
            }
            (true, None) => {
                return Err(Error::InvalidConfig(format!(
                    "store {} is changelogged but no changelog sink was given",
                    self.name
                )))
            }
            (false, _) => (inner.clone(), None),
        };
        Ok(OpenedStore {
            store,
            inner,
            changelog_topic,
            partition: ctx.partition,
            local_state,
        })
    }

    /// Removes the store's local state; see [`StoreFactory::wipe`].
    pub fn wipe(&self, ctx: &StoreContext) -> Result<()> {
        self.factory.wipe(&self.name, ctx)
    }
}

/// A store opened for a task.
pub struct OpenedStore {
    /// What the processor writes to: the changelogging layer when logging.
    pub store: Arc<dyn KeyValueStore>,
    /// The store itself, without the changelogging layer.
    pub inner: Arc<dyn KeyValueStore>,
    /// `<application.id>-<store>-changelog` when logging.
    pub changelog_topic: Option<String>,
    pub partition: i32,
    pub local_state: LocalState,
}

impl OpenedStore {
    /// The checkpointed offset to restore after, honoured only when the local state is trusted
    /// (a persistent store reopened intact); otherwise restore from the beginning.
    pub fn restore_after(&self, checkpoint: &Checkpoint) -> Option<i64> {
        let topic = self.changelog_topic.as_deref()?;
        if self.local_state.is_trusted() && self.inner.persistent() {
            checkpoint.offset(topic, self.partition)
        } else {
            None
        }
    }

    /// Restores from the changelog (nothing to do without logging) and returns what happened;
    /// the caller records [`RestoreStats::checkpoint_offset`] in the task's checkpoint.
    pub fn restore(
        &self,
        config: &RestoreConfig,
        checkpoint: &Checkpoint,
    ) -> Result<Option<RestoreStats>> {
        let Some(topic) = self.changelog_topic.as_deref() else {
            return Ok(None);
        };
        let after = self.restore_after(checkpoint);
        restore(self.inner.as_ref(), config, topic, self.partition, after).map(Some)
    }

    /// A restore in slices (see [`Restorer`]), `None` without logging.
    pub fn restorer(
        &self,
        config: &RestoreConfig,
        checkpoint: &Checkpoint,
    ) -> Result<Option<Restorer>> {
        let Some(topic) = self.changelog_topic.as_deref() else {
            return Ok(None);
        };
        let after = self.restore_after(checkpoint);
        Restorer::start(config, topic, self.partition, after).map(Some)
    }

    pub fn read_only(&self) -> Arc<dyn ReadOnlyKeyValueStore> {
        read_only(self.store.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::MemoryChangelogSink;

    #[test]
    fn names_that_escape_the_state_dir_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = StoreContext::new(dir.path(), "app", "0_0", 0);
        for bad in ["", "..", "a/b"] {
            let spec = StoreSpec::new(bad, StoreKind::File).with_logging(false);
            assert!(matches!(
                spec.open(&ctx, None),
                Err(Error::InvalidConfig(_))
            ));
        }
        let ctx = StoreContext::new(dir.path(), "app", "../x", 0);
        assert!(matches!(ctx.task_dir(), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn kinds_parse_and_lay_out_under_the_task_dir() {
        assert_eq!("RocksDB".parse::<StoreKind>().unwrap(), StoreKind::RocksDb);
        assert!(matches!(
            "lmdb".parse::<StoreKind>(),
            Err(Error::InvalidConfig(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let ctx = StoreContext::new(dir.path(), "app", "0_3", 3);
        let sink: Arc<dyn ChangelogSink> = Arc::new(MemoryChangelogSink::default());
        let opened = StoreSpec::new("counts", StoreKind::RocksDb)
            .open(&ctx, Some(sink))
            .unwrap();
        assert_eq!(
            opened.changelog_topic.as_deref(),
            Some("app-counts-changelog")
        );
        assert!(dir.path().join("app/0_3/rocksdb/counts/CURRENT").is_file());
        let opened = StoreSpec::new("seen", StoreKind::File)
            .with_logging(false)
            .open(&ctx, None)
            .unwrap();
        assert!(dir.path().join("app/0_3/file/seen/data.log").is_file());
        assert_eq!(opened.changelog_topic, None);
    }

    #[test]
    fn logging_without_a_sink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = StoreContext::new(dir.path(), "app", "0_0", 0);
        let spec = StoreSpec::new("s", StoreKind::InMemory);
        assert!(matches!(
            spec.open(&ctx, None),
            Err(Error::InvalidConfig(_))
        ));
    }
}
