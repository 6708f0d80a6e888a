//! The runtime: [`KafkaStreams`] runs a [`Topology`] over Kafka — stream threads in the
//! application's consumer group, one task per partition group, a global thread for global
//! stores, and instance metadata for interactive queries.

pub mod admin;
pub mod config;
mod global_thread;
pub mod metadata;
mod producer;
pub mod standby;
mod state_manager;
pub(crate) mod stream_thread;
mod topics;
mod txn_store;
pub mod window_query;

pub use config::{
    ErrorHandling, ProcessingGuarantee, ProductionErrorHandling, StreamsConfig,
    UncaughtExceptionHandling,
};
pub use metadata::StreamsMetadata;
pub use standby::StandbyPartition;
pub use window_query::{SessionStoreView, WindowStoreView};

use crate::task::GlobalStores;
use crate::topology::{Subtopology, Topology};
use crate::{Error, Result};
use ks_stores::{KeyValueStore, ReadOnlyKeyValueStore, Visitor};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use ks_kafka::now_ms;

/// Where a [`KafkaStreams`] instance is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamsState {
    Created,
    /// Started, and some stream thread is joining the group, between a revoke and its next
    /// assignment, or restoring its tasks' stores.
    Rebalancing,
    /// Every stream thread has its assigned tasks open and restored.
    Running,
    PendingShutdown,
    NotRunning,
    /// A stream thread failed (its reason); the others were stopped.
    Error(String),
}

/// Counters the runtime keeps (for /metrics and tests).
#[derive(Debug, Default)]
pub struct Metrics {
    pub processed: AtomicU64,
    pub errors: AtomicU64,
    pub commits: AtomicU64,
    /// Rebalances this instance's threads took part in (assignment callbacks, empty ones too).
    pub rebalances: AtomicU64,
    /// Changelog records restored into this instance's stores since it started.
    pub restored_records: AtomicU64,
    /// Times a stream thread closed its tasks dirty and rejoined the group because they had
    /// migrated without it (a stale generation, a transaction the coordinator aborted).
    pub task_migrations: AtomicU64,
    /// Stream threads started in place of failed ones (`UncaughtExceptionHandling::ReplaceThread`).
    pub replaced_threads: AtomicU64,
    /// Output records dropped by the production handler (`ProductionErrorHandling::Continue`).
    /// (Shared with the stream threads' producers, which count them.)
    pub dropped_records: Arc<AtomicU64>,
    /// Changelog records applied to standby copies since the instance started.
    pub standby_records: AtomicU64,
    /// Per task made active here: how its stores were restored (see [`TaskRestore`]).
    task_restores: Mutex<BTreeMap<String, TaskRestore>>,
    /// Records waiting in each stream thread's assigned partitions, from librdkafka's
    /// statistics (fetch-response high watermarks, not the local broker's wrong ListOffsets).
    lag_by_thread: Mutex<HashMap<String, u64>>,
    /// Per stream thread, whether its consumer had a broker connection up at its last
    /// statistics report (librdkafka's `brokers[].state == "UP"`).
    broker_up_by_thread: Mutex<HashMap<String, bool>>,
    /// The latest data errors handled (ms since the epoch, reason), newest first, at most
    /// [`RECENT_ERRORS`]: what an operator's dashboard lists.
    recent_errors: Mutex<std::collections::VecDeque<(i64, String)>>,
}

/// How many of the latest data errors [`Metrics::recent_errors`] keeps.
pub const RECENT_ERRORS: usize = 20;

/// How a task's stores were brought up to date when it last became active on this instance.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRestore {
    /// Changelog records restored (the tail past a standby's position when it had one).
    pub records: u64,
    /// Records restored per second.
    pub records_per_second: f64,
    /// From the assignment to the task processing: opening, restoring, initialising.
    pub time_to_ready: Duration,
    /// Whether a standby copy was handed over (only the tail was restored).
    pub from_standby: bool,
}

impl Metrics {
    /// Per task made active here, its last restore.
    pub fn task_restores(&self) -> BTreeMap<String, TaskRestore> {
        self.task_restores.lock().clone()
    }

    pub(crate) fn set_task_restore(&self, task: &str, restore: TaskRestore) {
        self.task_restores.lock().insert(task.to_string(), restore);
    }

    /// Total consumer lag over the stream threads, once statistics have arrived.
    pub fn lag(&self) -> Option<u64> {
        let lags = self.lag_by_thread.lock();
        (!lags.is_empty()).then(|| lags.values().sum())
    }

    /// Whether the stream threads reach a broker: `Some(false)` when no thread had a broker
    /// connection up at its last statistics report (the broker is down or unreachable),
    /// `None` before the first report.
    pub fn brokers_reachable(&self) -> Option<bool> {
        let up = self.broker_up_by_thread.lock();
        (!up.is_empty()).then(|| up.values().any(|u| *u))
    }

    /// The latest data errors handled here (ms since the epoch, reason), newest first.
    pub fn recent_errors(&self) -> Vec<(i64, String)> {
        self.recent_errors.lock().iter().cloned().collect()
    }

    pub(crate) fn push_error(&self, reason: String) {
        let mut errors = self.recent_errors.lock();
        if errors.len() == RECENT_ERRORS {
            errors.pop_back();
        }
        errors.push_front((now_ms(), reason));
    }

    pub(crate) fn set_broker_up(&self, thread: &str, up: bool) {
        self.broker_up_by_thread
            .lock()
            .insert(thread.to_string(), up);
    }

    pub(crate) fn set_lag(&self, thread: &str, lag: u64) {
        self.lag_by_thread.lock().insert(thread.to_string(), lag);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskEntry {
    pub id: String,
    pub partitions: Vec<(String, i32)>,
}

/// The stores of every local task, by task id then store name.
type StoreRegistry = BTreeMap<String, HashMap<String, Arc<dyn KeyValueStore>>>;

pub(crate) struct Shared {
    pub config: StreamsConfig,
    pub topology: Topology,
    pub subtopologies: Vec<Subtopology>,
    pub instance_id: String,
    /// Partition counts of every topic, known once `start()` has created the internal ones.
    pub partition_counts: std::sync::OnceLock<HashMap<String, i32>>,
    pub shutdown: AtomicBool,
    pub metrics: Metrics,
    globals: RwLock<GlobalStores>,
    stores: RwLock<StoreRegistry>,
    pub thread_tasks: RwLock<HashMap<String, Vec<TaskEntry>>>,
    pub peers: RwLock<HashMap<String, StreamsMetadata>>,
    pub metadata_dirty: AtomicBool,
    /// The standby tasks of this instance, and which tasks the stream threads hold.
    pub(crate) standbys: standby::Standbys,
    /// Connected consumers for the stream threads' restores (see `ks_stores::RestoreConsumers`).
    pub(crate) restore_consumers: Arc<ks_stores::RestoreConsumers>,
    state: Mutex<StreamsState>,
    state_listener: Mutex<Option<StateListener>>,
    /// Set when a failed thread asks every instance of the application to shut down.
    pub(crate) app_shutdown: Mutex<Option<String>>,
    threads_ready: Mutex<HashMap<String, bool>>,
    committed: Mutex<BTreeMap<(String, i32), i64>>,
    /// Held until `close()`: see [`StreamsConfig::lock_state_dir`].
    state_dir_lock: Mutex<Option<std::fs::File>>,
}

impl Shared {
    pub fn register_store(&self, task: &str, name: &str, store: Arc<dyn KeyValueStore>) {
        self.stores
            .write()
            .entry(task.to_string())
            .or_default()
            .insert(name.to_string(), store);
    }

    pub fn unregister_task(&self, task: &str) {
        self.stores.write().remove(task);
    }

    pub fn set_thread_tasks(&self, thread: &str, entries: Vec<TaskEntry>) {
        self.thread_tasks
            .write()
            .insert(thread.to_string(), entries);
        self.metadata_dirty.store(true, Ordering::SeqCst);
    }

    pub fn record_commit(&self, offsets: impl Iterator<Item = ((String, i32), i64)>) {
        self.committed.lock().extend(offsets);
    }

    /// The tasks (partitions) of sub-topology `sub`: its widest source topic's partition count,
    /// 0 before `start()` has read them.
    pub fn task_count(&self, sub: &Subtopology) -> i32 {
        let Some(counts) = self.partition_counts.get() else {
            return 0;
        };
        sub.source_topics
            .iter()
            .filter_map(|t| counts.get(t))
            .copied()
            .max()
            .unwrap_or(0)
    }

    pub fn global_stores(&self) -> GlobalStores {
        self.globals.read().clone()
    }

    /// Cooperative-sticky moves only what must move; but librdkafka's assignors cannot keep
    /// co-partitioned topics together except `range` does when partition counts match.
    pub fn assignment_strategy(&self) -> String {
        if let Some(s) = &self.config.assignment_strategy {
            return s.clone();
        }
        if self.subtopologies.iter().any(|s| s.source_topics.len() > 1) {
            "range".into()
        } else {
            "cooperative-sticky".into()
        }
    }

    fn set_state(&self, s: StreamsState) {
        let changed = {
            let mut st = self.state.lock();
            // An error stays visible until the instance is closed.
            if (!matches!(*st, StreamsState::Error(_)) || s == StreamsState::NotRunning) && *st != s
            {
                Some(std::mem::replace(&mut *st, s.clone()))
            } else {
                None
            }
        };
        if let Some(old) = changed {
            let listener = self.state_listener.lock().clone();
            if let Some(listener) = listener {
                listener(&s, &old);
            }
        }
    }

    /// A stream thread is ready (its assigned tasks are open and restored) or not (it is
    /// joining, between a revoke and the next assignment, or restoring). The instance is
    /// `Running` while every stream thread is ready and `Rebalancing` otherwise.
    pub(crate) fn set_thread_ready(&self, thread: &str, ready: bool) {
        let all_ready = {
            let mut r = self.threads_ready.lock();
            r.insert(thread.to_string(), ready);
            r.len() == self.config.num_stream_threads && r.values().all(|v| *v)
        };
        let current = self.state.lock().clone();
        if matches!(current, StreamsState::Running | StreamsState::Rebalancing) {
            self.set_state(if all_ready {
                StreamsState::Running
            } else {
                StreamsState::Rebalancing
            });
        }
    }
}

/// Called with `(new, old)` on every state change.
pub type StateListener = Arc<dyn Fn(&StreamsState, &StreamsState) + Send + Sync>;

/// A running streams application instance.
pub struct KafkaStreams {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<KafkaStreams> {
        config.validate()?;
        topology.validate()?;
        // Internal topics are named for the application from here on.
        let topology = topology.scoped(&config.application_id);
        let state_dir_lock = config.lock_state_dir()?;
        let instance_id = config.resolve_instance_id()?;
        let subtopologies = topology.subtopologies();
        // Two tasks of one thread often restore at once (a failover moves several).
        let restore_consumers = ks_stores::RestoreConsumers::new(
            state_manager::restore_config(&config),
            config.num_stream_threads + 1,
        );
        Ok(KafkaStreams {
            shared: Arc::new(Shared {
                restore_consumers,
                config,
                topology,
                subtopologies,
                instance_id,
                partition_counts: std::sync::OnceLock::new(),
                shutdown: AtomicBool::new(false),
                metrics: Metrics::default(),
                globals: RwLock::new(Arc::new(HashMap::new())),
                stores: RwLock::new(BTreeMap::new()),
                thread_tasks: RwLock::new(HashMap::new()),
                peers: RwLock::new(HashMap::new()),
                metadata_dirty: AtomicBool::new(true),
                standbys: standby::Standbys::default(),
                state: Mutex::new(StreamsState::Created),
                state_listener: Mutex::new(None),
                app_shutdown: Mutex::new(None),
                threads_ready: Mutex::new(HashMap::new()),
                committed: Mutex::new(BTreeMap::new()),
                state_dir_lock: Mutex::new(Some(state_dir_lock)),
            }),
            threads: Vec::new(),
        })
    }

    /// Creates the internal topics, reads the global stores to the end, then starts the stream
    /// threads. Returns once they run (partitions arrive with the group's first rebalance).
    pub fn start(&mut self) -> Result<()> {
        if !self.threads.is_empty() {
            return Err(Error::NotRunning("already started".into()));
        }
        let counts = admin::partition_counts(&self.shared.config)?;
        let cfg = &self.shared.config;
        let internal = topics::plan(&self.shared.topology, cfg, &counts)?;
        admin::ensure_topics(cfg, &internal)?;
        let counts = admin::partition_counts(cfg)?;
        if self.shared.partition_counts.set(counts).is_err() {
            return Err(Error::NotRunning("already started".into()));
        }

        let globals = global_thread::open(&self.shared)?;
        let views: HashMap<String, Arc<dyn ReadOnlyKeyValueStore>> = globals
            .stores
            .iter()
            .map(|(n, s)| (n.clone(), ks_stores::read_only(s.clone())))
            .collect();
        *self.shared.globals.write() = Arc::new(views);
        // Running once every stream thread has its tasks open and restored.
        self.shared.set_state(StreamsState::Rebalancing);
        let shared = self.shared.clone();
        let metadata = spawn("metadata", shared.clone(), None, move || {
            metadata::run(shared)
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        let global = metadata.and_then(|m| {
            self.threads.push(m);
            spawn("global", shared.clone(), None, move || {
                global_thread::run(shared, globals, tx)
            })
        });
        let bootstrapped = match global {
            Err(e) => Err(e),
            Ok(g) => {
                self.threads.push(g);
                match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(result) => result,
                    Err(_) => Err(Error::NotRunning(format!(
                        "global stores did not bootstrap ({:?})",
                        self.state()
                    ))),
                }
            }
        };
        if let Err(e) = bootstrapped {
            // A failed start leaves nothing running.
            self.stop_threads();
            self.shared.set_state(StreamsState::Error(e.to_string()));
            return Err(e);
        }
        if self.shared.config.num_standby_replicas > 0 {
            let shared = self.shared.clone();
            match spawn("standby", shared.clone(), None, move || {
                standby::run(shared)
            }) {
                Ok(handle) => self.threads.push(handle),
                Err(e) => {
                    self.stop_threads();
                    self.shared.set_state(StreamsState::Error(e.to_string()));
                    return Err(e);
                }
            }
        }
        // Restores start on connected consumers, the first one included.
        if self.shared.topology.store_specs().iter().any(|s| s.logging) {
            self.shared.restore_consumers.prepare();
        }
        for i in 0..self.shared.config.num_stream_threads {
            let shared = self.shared.clone();
            let stack = self.shared.config.stream_thread_stack_size;
            let spawned = spawn(&format!("stream-{i}"), shared.clone(), stack, move || {
                run_stream_thread(&shared, i)
            });
            match spawned {
                Ok(handle) => self.threads.push(handle),
                Err(e) => {
                    self.stop_threads();
                    self.shared.set_state(StreamsState::Error(e.to_string()));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn state(&self) -> StreamsState {
        self.shared.state.lock().clone()
    }

    /// Calls `listener(new, old)` on every state change from now on (Kafka Streams'
    /// `setStateListener`). Set it before `start()` to see every transition.
    pub fn set_state_listener(
        &self,
        listener: impl Fn(&StreamsState, &StreamsState) + Send + Sync + 'static,
    ) {
        *self.shared.state_listener.lock() = Some(Arc::new(listener));
    }

    pub fn instance_id(&self) -> &str {
        &self.shared.instance_id
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The input offsets this instance has committed (next offset to read), by partition.
    pub fn committed_offsets(&self) -> BTreeMap<(String, i32), i64> {
        self.shared.committed.lock().clone()
    }

    /// The source partitions this instance's tasks hold now.
    pub fn assigned_partitions(&self) -> Vec<(String, i32)> {
        metadata::local(&self.shared).topic_partitions
    }

    /// Waits until `cond` holds for this instance's assignment, or `timeout` passes.
    pub fn wait_for_assignment(
        &self,
        timeout: Duration,
        cond: impl Fn(&[(String, i32)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if cond(&self.assigned_partitions()) {
                return true;
            }
            if matches!(self.state(), StreamsState::Error(_)) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A read-only view of store `name` over every local task (or the global store of that name).
    pub fn store(&self, name: &str) -> Result<Arc<dyn ReadOnlyKeyValueStore>> {
        if let Some(g) = self.shared.global_stores().get(name) {
            return Ok(g.clone());
        }
        if !self
            .shared
            .topology
            .store_specs()
            .iter()
            .any(|s| s.name == name)
        {
            return Err(Error::UnknownStore(name.to_string()));
        }
        Ok(Arc::new(LocalStoreView {
            shared: self.shared.clone(),
            name: name.to_string(),
            stale: None,
        }))
    }

    /// Window store `name` over every local task, for interactive queries by key and time
    /// range or by time range alone ([`ks_stores::ReadOnlyWindowStore`]; values as stored).
    pub fn window_store(&self, name: &str) -> Result<Arc<dyn ks_stores::ReadOnlyWindowStore>> {
        Ok(Arc::new(WindowStoreView::new(self.store(name)?)))
    }

    /// Session store `name` over every local task: a key's sessions over a time range, every
    /// key's, or one session ([`ks_stores::ReadOnlySessionStore`]; values as stored).
    pub fn session_store(&self, name: &str) -> Result<Arc<dyn ks_stores::ReadOnlySessionStore>> {
        Ok(Arc::new(SessionStoreView::new(self.store(name)?)))
    }

    /// [`KafkaStreams::window_store`] also reading standby copies within `max_lag` (see
    /// [`KafkaStreams::store_allowing_stale`]).
    pub fn window_store_allowing_stale(
        &self,
        name: &str,
        max_lag: u64,
    ) -> Result<Arc<dyn ks_stores::ReadOnlyWindowStore>> {
        Ok(Arc::new(WindowStoreView::new(
            self.store_allowing_stale(name, max_lag)?,
        )))
    }

    /// Like [`KafkaStreams::store`], but also reading this instance's standby copies of the
    /// store whose lag is at most `max_lag` changelog records (Kafka Streams'
    /// `StoreQueryParameters.enableStaleStores()`, KIP-535): answers may be that stale.
    pub fn store_allowing_stale(
        &self,
        name: &str,
        max_lag: u64,
    ) -> Result<Arc<dyn ReadOnlyKeyValueStore>> {
        if self.shared.global_stores().contains_key(name) {
            return self.store(name);
        }
        self.store(name)?;
        Ok(Arc::new(LocalStoreView {
            shared: self.shared.clone(),
            name: name.to_string(),
            stale: Some(max_lag),
        }))
    }

    /// Like [`KafkaStreams::task_stores`], plus this instance's standby copies of the store
    /// within `max_lag` changelog records (tasks active here come first, with their active
    /// store).
    pub fn task_stores_allowing_stale(
        &self,
        name: &str,
        max_lag: u64,
    ) -> Vec<(String, Arc<dyn ReadOnlyKeyValueStore>)> {
        let mut out = self.task_stores(name);
        for (task, store) in self.shared.standbys.task_stores_within(name, max_lag) {
            if !out.iter().any(|(t, _)| *t == task) {
                out.push((task, ks_stores::read_only(store)));
            }
        }
        out
    }

    /// Every task id of the application that holds store `name` (one per partition of its
    /// sub-topology), known once `start()` has run.
    pub fn tasks_of_store(&self, name: &str) -> Vec<String> {
        self.shared
            .subtopologies
            .iter()
            .filter(|s| s.stores.iter().any(|n| n == name))
            .flat_map(|s| {
                (0..self.shared.task_count(s)).map(move |p| crate::task::task_id(s.id, p))
            })
            .collect()
    }

    /// This instance's standby copies: per standby task its source partitions and lag.
    pub fn standby_partitions(&self) -> Vec<StandbyPartition> {
        self.shared.standbys.partitions(&self.shared)
    }

    /// Store `name` of each local task, by task id: for stores whose keys are not partitioned
    /// (every task holds the same key), where a caller combines the tasks' values itself.
    pub fn task_stores(&self, name: &str) -> Vec<(String, Arc<dyn ReadOnlyKeyValueStore>)> {
        self.shared
            .stores
            .read()
            .iter()
            .filter_map(|(task, m)| {
                m.get(name)
                    .map(|st| (task.clone(), ks_stores::read_only(st.clone())))
            })
            .collect()
    }

    /// This instance's metadata.
    pub fn local_metadata(&self) -> StreamsMetadata {
        metadata::local(&self.shared)
    }

    /// Every live instance of the application (this one included).
    pub fn all_metadata(&self) -> Vec<StreamsMetadata> {
        metadata::all(&self.shared)
    }

    /// The instance hosting `key` of store `store`, for keys partitioned by Kafka's default
    /// partitioner (murmur2).
    pub fn metadata_for_key(&self, store: &str, key: &[u8]) -> Option<StreamsMetadata> {
        let sub = self
            .shared
            .subtopologies
            .iter()
            .find(|s| s.stores.iter().any(|n| n == store))?;
        let topic = sub.source_topics.first()?;
        let n = *self.shared.partition_counts.get()?.get(topic)?;
        let partition = admin::partition_for_key(key, n);
        self.all_metadata().into_iter().find(|m| {
            m.topic_partitions
                .iter()
                .any(|(t, p)| t == topic && *p == partition)
        })
    }

    /// Stops every thread: tasks commit, checkpoint and close, the group is left.
    fn stop_threads(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a ks thread panicked");
            }
        }
    }

    pub fn close(&mut self) -> Result<()> {
        self.shared.set_state(StreamsState::PendingShutdown);
        self.stop_threads();
        let failed = matches!(self.state(), StreamsState::Error(_));
        let state = self.state();
        self.shared.set_state(StreamsState::NotRunning);
        // Another instance may use the state directory from now on.
        drop(self.shared.state_dir_lock.lock().take());
        if failed {
            if let StreamsState::Error(e) = state {
                return Err(Error::NotRunning(format!("a thread had failed: {e}")));
            }
        }
        Ok(())
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.close();
        }
    }
}

/// A stream thread under the uncaught exception handler: replaced while the handler says so,
/// otherwise its failure stops this instance (or, asked for, the whole application).
fn run_stream_thread(shared: &Arc<Shared>, index: usize) -> Result<()> {
    loop {
        // A panic outside the processors (which turn theirs into processing errors) fails the
        // thread like an error, under the same handler, instead of ending it unnoticed.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            stream_thread::run(shared.clone(), index)
        }))
        .unwrap_or_else(|payload| {
            Err(Error::NotRunning(format!(
                "stream thread {} {}",
                index + 1,
                crate::task::panic_message(&*payload)
            )))
        });
        let Err(e) = outcome else {
            return Ok(());
        };
        if shared.shutdown.load(Ordering::SeqCst) {
            return Err(e);
        }
        match shared.config.uncaught_exception_handling {
            UncaughtExceptionHandling::ReplaceThread => {
                log::error!("stream thread {} failed, replacing it: {e}", index + 1);
                shared
                    .metrics
                    .replaced_threads
                    .fetch_add(1, Ordering::Relaxed);
                shared.set_thread_ready(&stream_thread::thread_name(shared, index), false);
            }
            UncaughtExceptionHandling::ShutdownClient => return Err(e),
            UncaughtExceptionHandling::ShutdownApplication => {
                *shared.app_shutdown.lock() = Some(e.to_string());
                shared.metadata_dirty.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
    }
}

/// Starts a ks thread; a thread that cannot be created is an error of the caller (`start()`
/// fails), and one that fails or panics puts the instance in `Error` and stops it.
fn spawn(
    name: &str,
    shared: Arc<Shared>,
    stack_size: Option<usize>,
    body: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<JoinHandle<()>> {
    let label = name.to_string();
    let mut builder = std::thread::Builder::new().name(format!("ks-{name}"));
    if let Some(bytes) = stack_size {
        builder = builder.stack_size(bytes);
    }
    builder
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
                .unwrap_or_else(|payload| {
                    Err(Error::NotRunning(crate::task::panic_message(&*payload)))
                });
            if let Err(e) = outcome {
                log::error!("thread {label} failed: {e}");
                shared.set_state(StreamsState::Error(format!("{label}: {e}")));
                // One failed thread stops the instance, as Kafka Streams' default handler does.
                shared.shutdown.store(true, Ordering::SeqCst);
            }
        })
        .map_err(|e| Error::NotRunning(format!("cannot start the {name} thread: {e}")))
}

/// A task's store closed between the view listing it and reading it: the task is leaving
/// (a rebalance), so the view reads as if it were gone already.
fn skip_closed<T: Default>(r: ks_stores::Result<T>) -> ks_stores::Result<T> {
    match r {
        Err(ks_stores::Error::StoreClosed(_)) => Ok(T::default()),
        other => other,
    }
}

/// A read-only view of one store name over every task of this instance.
struct LocalStoreView {
    shared: Arc<Shared>,
    name: String,
    /// Standby copies within this lag are read too (after the active stores).
    stale: Option<u64>,
}

impl LocalStoreView {
    fn stores(&self) -> Vec<Arc<dyn KeyValueStore>> {
        let mut stores: Vec<Arc<dyn KeyValueStore>> = self
            .shared
            .stores
            .read()
            .values()
            .filter_map(|m| m.get(&self.name).cloned())
            .collect();
        if let Some(max_lag) = self.stale {
            stores.extend(self.shared.standbys.stores_within(&self.name, max_lag));
        }
        stores
    }
}

impl ReadOnlyKeyValueStore for LocalStoreView {
    fn get(&self, key: &[u8]) -> ks_stores::Result<Option<Vec<u8>>> {
        for s in self.stores() {
            if let Some(v) = skip_closed(s.get(key))? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        visit: Visitor<'_>,
    ) -> ks_stores::Result<()> {
        let mut all = BTreeMap::new();
        for s in self.stores() {
            for (k, v) in skip_closed(s.range(from, to))? {
                all.insert(k, v);
            }
        }
        for (k, v) in &all {
            if let ControlFlow::Break(()) = visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn approximate_num_entries(&self) -> ks_stores::Result<u64> {
        let mut n = 0;
        for s in self.stores() {
            n += s.approximate_num_entries()?;
        }
        Ok(n)
    }
}
