//! A running model server: the engine with the chosen topology, the model builder, the errors
//! publisher and the HTTP API.

use crate::queries::{
    Health, InstanceInfo, MetricsSnapshot, ModelInfo, ServingQueries, TaskMetrics,
};
use crate::serving::{ServerMetrics, SCORE_WINDOWS_STORE, SERVING_STORE};
use crate::topology::{self, StoreVariant, Topics, Wiring};
use crate::{Error, Result};
use ks_engine::runtime::admin::{ensure_topics, TopicSpec};
use ks_engine::{ErrorHandling, KafkaStreams, ProcessingGuarantee, StreamsConfig, StreamsState};
use ks_serving::challenger::ChallengerReport;
use ks_serving::control::{Action, ControlSink};
use ks_serving::dashboard::ErrorEntry;
use ks_serving::drift::DriftReport;
use ks_serving::versions::VersionsReport;
use ks_serving::{
    start_builder, BuildFailures, FailureReport, LifecycleOptions, ModelRegistry, ServingStats,
};
use parking_lot::RwLock;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long [`Server::start`] waits for the brokers to answer before failing.
pub const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything `ks-server` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Which variant runs.
    pub store: StoreVariant,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The consumer group and prefix of internal topics and state.
    pub application_id: String,
    /// HTTP host to bind and advertise to other instances.
    pub host: String,
    /// HTTP port; 0 picks a free one (tests).
    pub port: u16,
    /// Where persistent stores and checkpoints live.
    pub state_dir: PathBuf,
    /// The topics read and written.
    pub topics: Topics,
    /// At-least-once or exactly-once.
    pub processing_guarantee: ProcessingGuarantee,
    /// Stream threads.
    pub threads: usize,
    /// Niceness of the stream threads and their Kafka clients' threads (Linux; see
    /// `StreamsConfig::stream_thread_nice`): above 0, queries are answered first on a busy
    /// machine.
    pub stream_thread_nice: i32,
    /// Commit interval (default: the guarantee's).
    pub commit_interval: Option<Duration>,
    /// `log.summary.interval.ms`: each stream thread's progress line at info (default 2 min).
    pub log_summary_interval: Option<Duration>,
    /// Consumer group session timeout.
    pub session_timeout: Duration,
    /// `max.poll.records`: the stream threads' batch (default 500; the engine's own default is
    /// 1); graph models score a batch as one tensor.
    pub max_poll_records: Option<usize>,
    /// Partitions of the topics the server creates when they are missing.
    pub data_partitions: i32,
    /// `num.standby.replicas`: warm copies of each task's serving statistics kept on other
    /// instances, for fast failover and stale reads (`/state/value?max_lag=`).
    pub num_standby_replicas: usize,
    /// librdkafka properties for every client the server makes (engine and its own): plain
    /// ones to all, `consumer.*`/`producer.*`/`admin.*` ones to that kind.
    pub client_properties: ks_kafka::ClientProperties,
    /// `cache.max.bytes.buffering` from the properties file: each task's record cache
    /// (`StreamsConfig::cache_max_bytes_buffering`); `None` keeps the engine's default (0).
    pub cache_max_bytes_buffering: Option<u64>,
    /// The HTTP API's protections: admin token, request size and rate limits.
    pub http: crate::http::HttpOptions,
    /// Versions kept per data type, the automatic promotion policy, drift window sizes.
    pub lifecycle: LifecycleOptions,
}

impl ServerConfig {
    /// The defaults for `store` on `brokers`.
    pub fn new(store: StoreVariant, brokers: &str) -> ServerConfig {
        ServerConfig {
            store,
            brokers: brokers.to_string(),
            application_id: format!("ks-model-server-{}", store.as_str()),
            host: "127.0.0.1".into(),
            port: 8888,
            state_dir: std::env::temp_dir().join("ks-server"),
            topics: Topics::default(),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            threads: 1,
            stream_thread_nice: 0,
            commit_interval: None,
            log_summary_interval: None,
            session_timeout: Duration::from_secs(10),
            max_poll_records: None,
            data_partitions: 4,
            num_standby_replicas: 0,
            client_properties: ks_kafka::ClientProperties::default(),
            cache_max_bytes_buffering: None,
            http: crate::http::HttpOptions::default(),
            lifecycle: LifecycleOptions::default(),
        }
    }
}

/// Sends rejected models (and the reason) to the errors topic, and the server's own control
/// messages (automatic promotions) to the model topic.
struct ErrorsPublisher {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    models_topic: String,
    count: AtomicU64,
    /// The latest rejected models, for the dashboard.
    recent: ks_serving::dashboard::RecentErrors,
}

impl ControlSink for ErrorsPublisher {
    fn publish(&self, data_type: &str, action: &Action) {
        let mut headers = OwnedHeaders::new();
        for (key, value) in action.headers() {
            headers = headers.insert(Header {
                key: &key,
                value: Some(&value),
            });
        }
        let payload = ks_proto::Message::encode_to_vec(&ks_proto::control::descriptor(data_type));
        let record = BaseRecord::<str, [u8]>::to(&self.models_topic)
            .key(data_type)
            .payload(&payload)
            .headers(headers);
        match self.producer.send(record) {
            Ok(()) => log::info!("published {} of {data_type}", action.as_str()),
            Err((e, _)) => log::error!("cannot publish {} of {data_type}: {e}", action.as_str()),
        }
    }
}

impl BuildFailures for ErrorsPublisher {
    fn failed(&self, report: &FailureReport) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.recent.push(&format!(
            "model {} for {} rejected: {}",
            report.name, report.data_type, report.reason
        ));
        let reason = report.reason.as_str();
        let (topic, partition, offset) = (
            &report.origin.topic,
            report.origin.partition,
            report.origin.offset,
        );
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ks.error",
                value: Some(reason),
            })
            .insert(Header {
                key: "ks.source.topic",
                value: Some(topic.as_str()),
            })
            .insert(Header {
                key: "ks.source.partition",
                value: Some(&partition.to_string()),
            })
            .insert(Header {
                key: "ks.source.offset",
                value: Some(&offset.to_string()),
            });
        let payload = report.to_json();
        let record = BaseRecord::<str, str>::to(&self.topic)
            .key(report.data_type.as_str())
            .payload(&payload)
            .headers(headers);
        if let Err((e, _)) = self.producer.send(record) {
            log::error!("cannot report the rejected model {}: {e}", report.name);
        }
    }
}

struct Core {
    streams: RwLock<Option<KafkaStreams>>,
    registry: Arc<ModelRegistry>,
    metrics: Arc<ServerMetrics>,
    errors: Arc<ErrorsPublisher>,
    application: String,
}

impl ServingQueries for Core {
    fn local_stats(&self, data_type: &str) -> Option<ServingStats> {
        let guard = self.streams.read();
        let streams = guard.as_ref()?;
        merged_stats(streams.task_stores(SERVING_STORE), data_type)
    }

    fn local_windows(
        &self,
        data_type: &str,
        from: i64,
        to: i64,
    ) -> std::collections::BTreeMap<i64, ks_serving::windows::ScoreWindow> {
        let guard = self.streams.read();
        let Some(streams) = guard.as_ref() else {
            return Default::default();
        };
        merged_windows(
            streams.task_stores(SCORE_WINDOWS_STORE),
            data_type,
            from,
            to,
        )
    }

    fn stale_stats(&self, data_type: &str, max_lag: u64) -> Option<Option<ServingStats>> {
        let guard = self.streams.read();
        let streams = guard.as_ref()?;
        let stores = streams.task_stores_allowing_stale(SERVING_STORE, max_lag);
        let all = streams.tasks_of_store(SERVING_STORE);
        if all.is_empty() || !all.iter().all(|t| stores.iter().any(|(s, _)| s == t)) {
            return None;
        }
        Some(merged_stats(stores, data_type))
    }

    fn instances(&self) -> Vec<InstanceInfo> {
        let guard = self.streams.read();
        let Some(streams) = guard.as_ref() else {
            return Vec::new();
        };
        let me = streams.instance_id().to_string();
        streams
            .all_metadata()
            .into_iter()
            .map(|m| InstanceInfo {
                local: m.instance_id == me,
                instance_id: m.instance_id,
                host: m.host,
                port: m.port,
                stores: m.state_stores,
                partitions: m.topic_partitions,
                standby_partitions: m.standby_partitions,
            })
            .collect()
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.registry.all().iter().map(|m| m.info()).collect()
    }

    fn versions(&self, data_type: &str) -> Option<VersionsReport> {
        self.registry.versions(data_type)
    }

    fn challenger(&self, data_type: &str) -> Option<ChallengerReport> {
        self.registry.challenger_report(data_type)
    }

    fn drift(&self, data_type: &str) -> Option<DriftReport> {
        self.registry.drift().report(data_type)
    }

    fn challengers(&self) -> Vec<ChallengerReport> {
        self.registry.challenger_reports()
    }

    fn drifts(&self) -> Vec<DriftReport> {
        self.registry.drift_reports()
    }

    fn queryable(&self) -> bool {
        self.streams
            .read()
            .as_ref()
            .is_some_and(|s| s.state() == StreamsState::Running)
    }

    fn health(&self) -> Health {
        let (state, reachable) = self
            .streams
            .read()
            .as_ref()
            .map(|s| (s.state(), s.metrics().brokers_reachable()))
            .unwrap_or((StreamsState::NotRunning, None));
        Health {
            healthy: state == StreamsState::Running && reachable != Some(false),
            state: format!("{state:?}"),
            broker: match reachable {
                Some(true) => "reachable",
                Some(false) => "unreachable",
                None => "unknown",
            }
            .into(),
        }
    }

    fn application(&self) -> String {
        self.application.clone()
    }

    fn recent_errors(&self) -> Vec<ErrorEntry> {
        let mut all = self.errors.recent.snapshot();
        if let Some(s) = self.streams.read().as_ref() {
            all.extend(
                s.metrics()
                    .recent_errors()
                    .into_iter()
                    .map(|(time_ms, reason)| ErrorEntry {
                        time_ms,
                        reason,
                        instance: String::new(),
                    }),
            );
        }
        ks_serving::dashboard::merge_errors(all)
    }

    fn metrics(&self) -> MetricsSnapshot {
        let (latency_buckets, latency_sum_seconds, latency_count) = self.metrics.histogram();
        let (engine_errors, lag, tasks) = self
            .streams
            .read()
            .as_ref()
            .map(|s| {
                (
                    s.metrics().errors.load(Ordering::Relaxed),
                    s.metrics().lag(),
                    task_metrics(s),
                )
            })
            .unwrap_or((0, None, Vec::new()));
        MetricsSnapshot {
            records: self.metrics.records.load(Ordering::Relaxed),
            scores: self.metrics.scores.load(Ordering::Relaxed),
            no_model: self.metrics.no_model.load(Ordering::Relaxed),
            batched_scores: self.metrics.batched.load(Ordering::Relaxed),
            errors: engine_errors + self.errors.count.load(Ordering::Relaxed),
            models_loaded: self.registry.loaded(),
            latency_buckets,
            latency_sum_seconds,
            latency_count,
            lag,
            tasks,
        }
    }
}

/// The serving statistics of `data_type` merged over the tasks' stores (`None`: no task has
/// any). A value that does not decode is skipped: it is not this server's to repair here.
fn merged_stats(
    stores: Vec<(String, Arc<dyn ks_engine::stores::ReadOnlyKeyValueStore>)>,
    data_type: &str,
) -> Option<ServingStats> {
    let mut merged: Option<ServingStats> = None;
    for (_, store) in stores {
        let Ok(Some(bytes)) = store.get(data_type.as_bytes()) else {
            continue;
        };
        let Ok(stats) = serde_json::from_slice::<ServingStats>(&bytes) else {
            continue;
        };
        merged = Some(match merged {
            Some(m) => m.merge(&stats),
            None => stats,
        });
    }
    merged
}

/// `data_type`'s score windows starting in `from..=to`, added up over the tasks' window
/// stores by start: each task counts the records of its own partition. A window that does not
/// decode is skipped, as in [`merged_stats`].
fn merged_windows(
    stores: Vec<(String, Arc<dyn ks_engine::stores::ReadOnlyKeyValueStore>)>,
    data_type: &str,
    from: i64,
    to: i64,
) -> std::collections::BTreeMap<i64, ks_serving::windows::ScoreWindow> {
    use ks_engine::stores::ReadOnlyWindowStore;
    let mut merged = std::collections::BTreeMap::new();
    for (task, store) in stores {
        let view = ks_engine::runtime::WindowStoreView::new(store);
        let windows = match view.fetch_range(data_type.as_bytes(), from, to) {
            Ok(w) => w,
            Err(e) => {
                log::warn!("score windows of task {task}: {e}");
                continue;
            }
        };
        for (start, bytes) in windows {
            if let Ok(w) = serde_json::from_slice::<ks_serving::windows::ScoreWindow>(&bytes) {
                merged
                    .entry(start)
                    .or_insert_with(ks_serving::windows::ScoreWindow::default)
                    .merge(&w);
            }
        }
    }
    merged
}

/// Per task: the standby copy's lag and the last restore, for `/metrics`.
fn task_metrics(s: &KafkaStreams) -> Vec<TaskMetrics> {
    let mut by_task: std::collections::BTreeMap<String, TaskMetrics> = Default::default();
    for p in s.standby_partitions() {
        let t = by_task.entry(p.task.clone()).or_default();
        t.standby_lag = p.lag;
    }
    for (task, r) in s.metrics().task_restores() {
        let t = by_task.entry(task).or_default();
        t.restore_records_per_second = Some(r.records_per_second);
        t.time_to_ready_seconds = Some(r.time_to_ready.as_secs_f64());
    }
    by_task
        .into_iter()
        .map(|(task, t)| TaskMetrics { task, ..t })
        .collect()
}

/// A running server. Dropping it shuts it down.
pub struct Server {
    core: Arc<Core>,
    http_addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop_http: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Creates missing topics, binds the HTTP port, starts the engine (reading the models first).
    pub fn start(config: ServerConfig) -> Result<Server> {
        let streams_config = |port: u16| {
            let mut c = StreamsConfig::new(&config.application_id, &config.brokers)
                .with_state_dir(&config.state_dir)
                .with_processing_guarantee(config.processing_guarantee)
                .with_threads(config.threads)
                .with_stream_thread_nice(config.stream_thread_nice)
                .with_num_standby_replicas(config.num_standby_replicas)
                .with_session_timeout(config.session_timeout)
                .with_application_server(format!("{}:{port}", config.host))
                .with_error_handling(ErrorHandling::DeadLetter {
                    topic: config.topics.errors.clone(),
                })
                .with_client_properties(&config.client_properties);
            if let Some(every) = config.log_summary_interval {
                c = c.with_log_summary_interval(every);
            }
            if let Some(ci) = config.commit_interval {
                c = c.with_commit_interval(ci);
            }
            c = c.with_max_poll_records(config.max_poll_records.unwrap_or(500));
            if let Some(bytes) = config.cache_max_bytes_buffering {
                c = c.with_cache_max_bytes_buffering(usize::try_from(bytes).unwrap_or(usize::MAX));
            }
            c
        };
        let probe = streams_config(0);
        // Fail at start, with the reason, when the brokers are unreachable or refuse our
        // credentials, instead of retrying in the background.
        ks_kafka::check_brokers(
            &probe.client_for(ks_kafka::ClientKind::Admin),
            BROKER_CHECK_TIMEOUT,
        )?;
        let t = &config.topics;
        ensure_topics(
            &probe,
            &[
                TopicSpec {
                    name: t.data.clone(),
                    partitions: config.data_partitions,
                    compacted: false,
                },
                TopicSpec {
                    name: t.models.clone(),
                    partitions: 1,
                    compacted: false,
                },
                TopicSpec {
                    name: t.results.clone(),
                    partitions: config.data_partitions,
                    compacted: false,
                },
                TopicSpec {
                    name: t.errors.clone(),
                    partitions: 1,
                    compacted: false,
                },
            ],
        )?;
        let mut producer_config = rdkafka::ClientConfig::new();
        producer_config
            .set("bootstrap.servers", &config.brokers)
            .set("log_level", "3");
        config
            .client_properties
            .apply(ks_kafka::ClientKind::Producer, &mut producer_config);
        let producer: ThreadedProducer<DefaultProducerContext> = producer_config
            .create()
            .map_err(ks_kafka::Error::context("creating the errors producer"))?;
        let errors = Arc::new(ErrorsPublisher {
            producer,
            topic: t.errors.clone(),
            models_topic: t.models.clone(),
            count: AtomicU64::new(0),
            recent: ks_serving::dashboard::RecentErrors::default(),
        });
        let registry = Arc::new(ModelRegistry::new(config.lifecycle));
        let metrics = Arc::new(ServerMetrics::default());
        let (builder, _builder_thread) = start_builder(registry.clone(), errors.clone(), 64)
            .map_err(|source| Error::Start {
                what: "the model builder",
                source,
            })?;
        let wiring = Wiring {
            registry: registry.clone(),
            metrics: metrics.clone(),
            builder,
            failures: errors.clone(),
            control: config
                .lifecycle
                .promote_policy
                .map(|_| errors.clone() as Arc<dyn ControlSink>),
        };
        let topology = topology::build(config.store, &config.topics, &wiring)?;
        let core = Arc::new(Core {
            streams: RwLock::new(None),
            registry,
            metrics,
            errors,
            application: config.application_id.clone(),
        });

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ks-http")
            .enable_all()
            .build()
            .map_err(|source| Error::Start {
                what: "the HTTP runtime",
                source,
            })?;
        let addr: SocketAddr = format!("{}:{}", config.host, config.port)
            .parse()
            .map_err(|e| Error::InvalidConfig(format!("--host/--port: {e}")))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let queries: Arc<dyn ServingQueries> = core.clone();
        let (http_addr, _) = runtime.block_on(crate::http::serve_with(
            queries,
            addr,
            config.http.clone(),
            async {
                let _ = stop_rx.await;
            },
        ))?;

        let mut streams = KafkaStreams::new(topology, streams_config(http_addr.port()))?;
        streams.start()?;
        *core.streams.write() = Some(streams);
        log::info!(
            "ks-server ({}) serving HTTP on {http_addr}",
            config.store.as_str()
        );
        Ok(Server {
            core,
            http_addr,
            runtime: Some(runtime),
            stop_http: Some(stop_tx),
        })
    }

    /// The address the HTTP API listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Runs `f` with the engine (for tests and the binary's status line).
    pub fn with_streams<R>(&self, f: impl FnOnce(&KafkaStreams) -> R) -> Option<R> {
        self.core.streams.read().as_ref().map(f)
    }

    /// What the HTTP API reads, for in-process callers.
    pub fn queries(&self) -> Arc<dyn ServingQueries> {
        self.core.clone()
    }

    /// Stops HTTP, then the engine (which commits and closes its tasks).
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(tx) = self.stop_http.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let streams = self.core.streams.write().take();
        let _ = self.core.errors.producer.flush(Duration::from_secs(5));
        match streams {
            Some(mut s) => Ok(s.close()?),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
