//! Streams configuration, named as in Kafka Streams where the concept is the same.

use crate::timestamp::{RecordTimestamp, TimestampExtractor};
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// Offsets are committed only after sink and changelog writes are acknowledged: a crash
    /// replays, never skips.
    AtLeastOnce,
    /// Output, changelog writes and input offsets commit in one Kafka transaction.
    ExactlyOnce,
}

impl std::str::FromStr for ProcessingGuarantee {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
            "exactly_once" | "exactly_once_v2" => Ok(ProcessingGuarantee::ExactlyOnce),
            _ => Err(Error::InvalidConfig(format!(
                "processing.guarantee {s:?} (at_least_once or exactly_once)"
            ))),
        }
    }
}

/// What happens to a record whose deserialization or processing fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorHandling {
    /// Log it and go on with the next record.
    LogAndContinue,
    /// Stop the stream thread (the instance goes to ERROR); the record is processed again on
    /// restart because its offset is never committed.
    LogAndFail,
    /// Send the record to `topic` with headers naming the error and its origin, then go on.
    DeadLetter { topic: String },
}

/// What happens to an output record the producer cannot send or the broker refuses (too
/// large, an unknown or unauthorised topic): Kafka Streams' production exception handler.
/// Changelog writes are never skipped: a failed one always fails the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductionErrorHandling {
    /// Fail the task (the default, as Kafka Streams').
    #[default]
    Fail,
    /// Log it, count it in `Metrics::dropped_records` and go on.
    Continue,
}

/// What happens when a stream thread fails (Kafka Streams' uncaught exception handler
/// responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UncaughtExceptionHandling {
    /// A new stream thread takes the failed one's place (its tasks closed dirty first, so
    /// they restart from the last commit).
    ReplaceThread,
    /// This instance stops and enters `Error` (the default).
    #[default]
    ShutdownClient,
    /// Every instance of the application stops and enters `Error`: the request travels on
    /// the instance metadata topic.
    ShutdownApplication,
}

/// A timestamp extractor shared by every task (`default.timestamp.extractor`).
#[derive(Clone)]
pub struct SharedExtractor(pub Arc<dyn TimestampExtractor>);

impl std::fmt::Debug for SharedExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TimestampExtractor")
    }
}

/// Settings of one streams instance.
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// `application.id`: the consumer group, the prefix of internal topics and state dirs.
    pub application_id: String,
    pub bootstrap_servers: String,
    /// `state.dir`: where persistent stores and checkpoints live.
    pub state_dir: PathBuf,
    pub processing_guarantee: ProcessingGuarantee,
    /// `num.stream.threads`.
    pub num_stream_threads: usize,
    /// `commit.interval.ms`.
    pub commit_interval: Duration,
    /// `log.summary.interval.ms`: how often each stream thread logs at info what it processed
    /// (records, records/s, tasks). Kafka Streams' default: 2 minutes.
    pub log_summary_interval: Duration,
    /// `application.server`: the host:port this instance answers interactive queries on.
    pub application_server: Option<String>,
    /// A stable id of this instance (default: generated once and kept in the state dir), used for
    /// transactional ids so that a restarted instance fences its zombie predecessor.
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    /// `max.poll.records`: the most records a stream thread takes from its consumer in one
    /// batch (what it already fetched, without waiting), processes, and only then punctuates
    /// and considers a commit. Processors below a source see each batch first
    /// ([`crate::Processor::prepare`]). Default 1 (a record per poll-loop iteration, commits
    /// and punctuations checked between records), not Kafka's 500: with batches, the
    /// lost-partitions test (`lost_partitions_are_recovered`) saw its counts change after
    /// they had been exact, not yet explained. ks-server opts in with 500.
    pub max_poll_records: usize,
    /// `partition.assignment.strategy`; default cooperative-sticky, or range when a
    /// sub-topology reads several (co-partitioned) topics, so their partitions stay together.
    pub assignment_strategy: Option<String>,
    pub error_handling: ErrorHandling,
    /// `production.exception.handler`: failed sends of output records.
    pub production_error_handling: ProductionErrorHandling,
    /// The uncaught exception handler's response to a failed stream thread.
    pub uncaught_exception_handling: UncaughtExceptionHandling,
    /// How often each instance republishes its metadata, and how old it may get before others
    /// forget it (3×).
    pub metadata_heartbeat: Duration,
    /// `replication.factor` of the internal topics created on start; -1 (Kafka Streams'
    /// default) takes the broker's `default.replication.factor`.
    pub replication_factor: i32,
    /// Extra librdkafka properties for every client, applied last.
    pub client_properties: Vec<(String, String)>,
    /// `consumer.*`, `producer.*` and `admin.*` properties (prefix removed) for that kind of
    /// client only, applied after `client_properties` by [`StreamsConfig::client_for`].
    pub kind_properties: ks_kafka::ClientProperties,
    /// `default.timestamp.extractor`: the event time of records whose source has no extractor
    /// of its own (default: the record's timestamp).
    pub timestamp_extractor: SharedExtractor,
    /// `max.task.idle.ms`: how long a task that reads several partitions (a join) waits for an
    /// empty one before it processes the others' records, so records are taken in timestamp
    /// order across its inputs rather than in fetch order. `None` (Kafka Streams' -1): never
    /// wait. Records already buffered are always taken smallest timestamp first. Unlike Kafka
    /// Streams, ks does not track how far behind an empty input is, so at 0 it does not wait
    /// for records already on the broker either: set it above 0 (e.g. the fetch wait, 500 ms)
    /// for strict order when inputs start or catch up at different speeds.
    pub max_task_idle: Option<std::time::Duration>,
    /// Stack size of each stream thread (default: Rust's, 2 MiB), for processors that recurse
    /// deeply. A thread that cannot be created with it fails `start()`.
    pub stream_thread_stack_size: Option<usize>,
    /// Scheduling niceness of each stream thread and of the Kafka clients' threads it starts
    /// (Linux; 0: the process's own). Above 0 the processing yields a busy machine's cores to
    /// the application's other threads first, e.g. interactive queries answered while a backlog
    /// is processed at full rate. Raising niceness needs no privilege; a value the system
    /// refuses is logged and ignored.
    pub stream_thread_nice: i32,
    /// `num.standby.replicas`: warm copies kept of each task with a changelogged store, on
    /// other instances (see `runtime::standby`). 0: none.
    pub num_standby_replicas: usize,
    /// `acceptable.recovery.lag`: how far (changelog records) a standby may be behind to
    /// count as caught up, for the warm-up before joining and for stale reads' defaults.
    pub acceptable_recovery_lag: u64,
    /// The longest a starting instance with standbys waits for its copies to catch up before
    /// it joins the group (the warm-up; 0: join at once).
    pub max_warmup_wait: Duration,
    /// `cache.max.bytes.buffering`: the bytes each task's record cache may hold (see
    /// [`crate::cache`]): aggregations forward the latest value per key at each commit (or
    /// eviction) instead of every update. 0, ks's default, disables it: every update is
    /// forwarded at once (Kafka Streams defaults to 10 MiB per instance, split over threads;
    /// ks bounds each task instead).
    pub cache_max_bytes_buffering: usize,
}

impl StreamsConfig {
    pub fn new(
        application_id: impl Into<String>,
        bootstrap_servers: impl Into<String>,
    ) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.into(),
            bootstrap_servers: bootstrap_servers.into(),
            state_dir: std::env::temp_dir().join("ks-streams"),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            num_stream_threads: 1,
            commit_interval: Duration::from_secs(30),
            log_summary_interval: Duration::from_secs(120),
            application_server: None,
            instance_id: None,
            session_timeout: Duration::from_secs(45),
            max_poll_interval: Duration::from_secs(300),
            max_poll_records: 1,
            assignment_strategy: None,
            error_handling: ErrorHandling::LogAndFail,
            production_error_handling: ProductionErrorHandling::Fail,
            uncaught_exception_handling: UncaughtExceptionHandling::ShutdownClient,
            metadata_heartbeat: Duration::from_secs(2),
            replication_factor: -1,
            client_properties: Vec::new(),
            kind_properties: ks_kafka::ClientProperties::default(),
            timestamp_extractor: SharedExtractor(Arc::new(RecordTimestamp)),
            max_task_idle: Some(Duration::ZERO),
            stream_thread_stack_size: None,
            stream_thread_nice: 0,
            num_standby_replicas: 0,
            acceptable_recovery_lag: 10_000,
            max_warmup_wait: Duration::from_secs(60),
            cache_max_bytes_buffering: 0,
        }
    }

    pub fn with_timestamp_extractor(mut self, e: impl TimestampExtractor + 'static) -> Self {
        self.timestamp_extractor = SharedExtractor(Arc::new(e));
        self
    }

    /// `max.task.idle.ms` (`None` for -1: never wait for an empty input).
    pub fn with_max_task_idle(mut self, d: Option<Duration>) -> Self {
        self.max_task_idle = d;
        self
    }

    /// `num.standby.replicas`.
    pub fn with_num_standby_replicas(mut self, n: usize) -> Self {
        self.num_standby_replicas = n;
        self
    }

    /// `acceptable.recovery.lag` and the longest warm-up before joining (see the fields).
    pub fn with_standby_warmup(mut self, acceptable_lag: u64, max_wait: Duration) -> Self {
        self.acceptable_recovery_lag = acceptable_lag;
        self.max_warmup_wait = max_wait;
        self
    }

    /// `cache.max.bytes.buffering` (bytes per task; 0: no record cache).
    pub fn with_cache_max_bytes_buffering(mut self, bytes: usize) -> Self {
        self.cache_max_bytes_buffering = bytes;
        self
    }

    /// See [`StreamsConfig::stream_thread_nice`].
    pub fn with_stream_thread_nice(mut self, nice: i32) -> Self {
        self.stream_thread_nice = nice;
        self
    }

    pub fn with_stream_thread_stack_size(mut self, bytes: usize) -> Self {
        self.stream_thread_stack_size = Some(bytes);
        self
    }

    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Sets the guarantee; exactly-once also lowers the commit interval to Kafka Streams'
    /// 100 ms default.
    pub fn with_processing_guarantee(mut self, g: ProcessingGuarantee) -> Self {
        if g == ProcessingGuarantee::ExactlyOnce && self.commit_interval == Duration::from_secs(30)
        {
            self.commit_interval = Duration::from_millis(100);
        }
        self.processing_guarantee = g;
        self
    }

    pub fn with_threads(mut self, n: usize) -> Self {
        self.num_stream_threads = n;
        self
    }

    pub fn with_commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = d;
        self
    }

    /// `log.summary.interval.ms`.
    pub fn with_log_summary_interval(mut self, d: Duration) -> Self {
        self.log_summary_interval = d;
        self
    }

    pub fn with_application_server(mut self, host_port: impl Into<String>) -> Self {
        self.application_server = Some(host_port.into());
        self
    }

    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    pub fn with_session_timeout(mut self, d: Duration) -> Self {
        self.session_timeout = d;
        self
    }

    /// `max.poll.interval.ms`, also the group's rebalance timeout: how long a join may wait
    /// for members that do not rejoin.
    pub fn with_max_poll_interval(mut self, d: Duration) -> Self {
        self.max_poll_interval = d;
        self
    }

    /// `max.poll.records`: see [`StreamsConfig::max_poll_records`].
    pub fn with_max_poll_records(mut self, n: usize) -> Self {
        self.max_poll_records = n;
        self
    }

    pub fn with_error_handling(mut self, h: ErrorHandling) -> Self {
        self.error_handling = h;
        self
    }

    pub fn with_production_error_handling(mut self, h: ProductionErrorHandling) -> Self {
        self.production_error_handling = h;
        self
    }

    pub fn with_uncaught_exception_handling(mut self, h: UncaughtExceptionHandling) -> Self {
        self.uncaught_exception_handling = h;
        self
    }

    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_properties.push((key.into(), value.into()));
        self
    }

    /// Passes a properties file's client properties through: the common ones to every client
    /// (as [`StreamsConfig::with_property`]), the prefixed ones to their kind of client.
    pub fn with_client_properties(mut self, p: &ks_kafka::ClientProperties) -> Self {
        self.client_properties.extend(p.common.iter().cloned());
        for kind in ks_kafka::ClientKind::ALL {
            let mine = match kind {
                ks_kafka::ClientKind::Consumer => &mut self.kind_properties.consumer,
                ks_kafka::ClientKind::Producer => &mut self.kind_properties.producer,
                ks_kafka::ClientKind::Admin => &mut self.kind_properties.admin,
            };
            mine.extend(p.kind(kind).iter().cloned());
        }
        self
    }

    /// The base configuration of a client of `kind`: the bootstrap servers, then the common
    /// client properties, then the kind's own (`consumer.*`, `producer.*`, `admin.*`), which win.
    /// Every client the runtime makes starts from this; the settings it makes afterwards are
    /// the ones the engine needs (a group id, `enable.partition.eof`), except on the stream
    /// threads' consumer and producer, where `StreamsConfig::apply_user_properties` runs last
    /// so a user's tuning (`fetch.wait.max.ms`, `linger.ms`) wins over the engine's defaults.
    pub fn client_for(&self, kind: ks_kafka::ClientKind) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("log_level", "3");
        self.apply_user_properties(kind, &mut c);
        c
    }

    /// What the user gave a client of `kind`: the common properties, then the kind's own.
    pub fn user_properties(
        &self,
        kind: ks_kafka::ClientKind,
    ) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.client_properties
            .iter()
            .chain(self.kind_properties.kind(kind))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets [`StreamsConfig::user_properties`] of `kind` on `c`, over what is there.
    pub(crate) fn apply_user_properties(
        &self,
        kind: ks_kafka::ClientKind,
        c: &mut rdkafka::ClientConfig,
    ) {
        ks_kafka::with_properties(c, self.user_properties(kind));
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok_id = !self.application_id.is_empty()
            && self
                .application_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok_id {
            return Err(Error::InvalidConfig(format!(
                "application.id {:?} must be non-empty [A-Za-z0-9._-]",
                self.application_id
            )));
        }
        if self.num_stream_threads == 0 {
            return Err(Error::InvalidConfig(
                "num.stream.threads must be at least 1".into(),
            ));
        }
        if self.max_poll_records == 0 {
            return Err(Error::InvalidConfig(
                "max.poll.records must be at least 1".into(),
            ));
        }
        if self.commit_interval.is_zero() {
            return Err(Error::InvalidConfig(
                "commit.interval.ms must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Locks `<state.dir>/<application.id>` for this process (an exclusive advisory lock on its
    /// `.lock` file, released when the returned file is dropped or the process dies), so a second
    /// instance on the same state dir fails at start instead of sharing task directories and
    /// transactional ids.
    pub(crate) fn lock_state_dir(&self) -> Result<std::fs::File> {
        let dir = self.state_dir.join(&self.application_id);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::StateDirLocked { path }),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Io { path, source: e }),
        }
    }

    /// The instance id: configured, or generated once and remembered in the state dir.
    pub(crate) fn resolve_instance_id(&self) -> Result<String> {
        if let Some(id) = &self.instance_id {
            return Ok(id.clone());
        }
        let dir = self.state_dir.join(&self.application_id);
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let path = dir.join("instance.id");
        if let Ok(id) = std::fs::read_to_string(&path) {
            let id = id.trim().to_string();
            if !id.is_empty() {
                return Ok(id);
            }
        }
        let id = format!("{:016x}", rand::random::<u64>());
        let tmp = dir.join("instance.id.tmp");
        std::fs::write(&tmp, &id).map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io(&path))?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ks_kafka::{ClientKind, ClientProperties};

    fn config() -> StreamsConfig {
        let mut p = ClientProperties::default();
        for (k, v) in [
            ("security.protocol", "sasl_plaintext"),
            ("fetch.wait.max.ms", "50"),
            ("consumer.fetch.wait.max.ms", "7"),
            ("consumer.max.partition.fetch.bytes", "65536"),
            ("producer.linger.ms", "2"),
            ("admin.socket.timeout.ms", "4000"),
        ] {
            p.insert(k, v).unwrap();
        }
        StreamsConfig::new("app", "localhost:1").with_client_properties(&p)
    }

    #[test]
    fn each_kind_of_client_gets_the_common_properties_and_only_its_own() {
        let c = config();
        let consumer = c.client_for(ClientKind::Consumer);
        assert_eq!(consumer.get("bootstrap.servers"), Some("localhost:1"));
        assert_eq!(consumer.get("security.protocol"), Some("sasl_plaintext"));
        // The kind's own property wins over the common one with the same key.
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("7"));
        assert_eq!(consumer.get("max.partition.fetch.bytes"), Some("65536"));
        assert_eq!(consumer.get("linger.ms"), None);
        assert_eq!(consumer.get("socket.timeout.ms"), None);

        let producer = c.client_for(ClientKind::Producer);
        assert_eq!(producer.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(producer.get("linger.ms"), Some("2"));
        assert_eq!(producer.get("fetch.wait.max.ms"), Some("50"));
        assert_eq!(producer.get("max.partition.fetch.bytes"), None);

        let admin = c.client_for(ClientKind::Admin);
        assert_eq!(admin.get("socket.timeout.ms"), Some("4000"));
        assert_eq!(admin.get("linger.ms"), None);
    }

    #[test]
    fn user_properties_win_when_applied_after_the_engine_defaults() {
        let c = config();
        let mut consumer = c.client_for(ClientKind::Consumer);
        consumer.set("fetch.wait.max.ms", "10");
        c.apply_user_properties(ClientKind::Consumer, &mut consumer);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("7"));
        let restore: Vec<_> = c.user_properties(ClientKind::Consumer).collect();
        assert!(restore.contains(&("max.partition.fetch.bytes", "65536")));
        assert!(!restore.iter().any(|(k, _)| *k == "linger.ms"));
    }
}
