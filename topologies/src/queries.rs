//! What the HTTP layer asks of a running server. A small trait, so the routes are written and
//! tested once, against the real server or a fake.

pub use ks_serving::challenger::ChallengerReport;
pub use ks_serving::drift::DriftReport;
pub use ks_serving::versions::VersionsReport;
use ks_serving::ServingStats;
pub use ks_serving::{Health, ModelInfo};
use serde::{Deserialize, Serialize};

/// One instance of the application, as `/state/instances` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The instance id.
    pub instance_id: String,
    /// Its advertised HTTP host.
    pub host: String,
    /// Its advertised HTTP port.
    pub port: u16,
    /// The stores it hosts.
    pub stores: Vec<String>,
    /// Assigned data partitions as `topic-partition` pairs.
    pub partitions: Vec<(String, i32)>,
    /// Whether this is the instance answering.
    pub local: bool,
    /// The standby copies it keeps (source partition, task, lag in changelog records).
    #[serde(default)]
    pub standby_partitions: Vec<ks_engine::StandbyPartition>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// Data records processed by this instance.
    pub records: u64,
    /// Records scored by a model.
    pub scores: u64,
    /// Records that found no model for their data type.
    pub no_model: u64,
    /// Records scored together with the rest of their poll batch (models that batch).
    pub batched_scores: u64,
    /// Bad records and bad models sent to the errors topic.
    pub errors: u64,
    /// Models built and swapped in.
    pub models_loaded: u64,
    /// Scoring latency histogram: cumulative counts per upper bound in seconds (the last bound
    /// is +Inf), the sum in seconds, and the count.
    pub latency_buckets: Vec<(f64, u64)>,
    /// Total scoring time, seconds.
    pub latency_sum_seconds: f64,
    /// Records scored (the histogram's count).
    pub latency_count: u64,
    /// Records waiting in assigned partitions (log end − committed), when known.
    pub lag: Option<u64>,
    /// Per task: standby lag and the last restore here.
    pub tasks: Vec<TaskMetrics>,
}

/// One task's figures in `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskMetrics {
    /// The task id (`<subtopology>_<partition>`).
    pub task: String,
    /// Changelog records this instance's standby copy is behind, when it keeps one.
    pub standby_lag: Option<u64>,
    /// Records per second of the task's last restore here.
    pub restore_records_per_second: Option<f64>,
    /// From its last assignment here to it processing, seconds.
    pub time_to_ready_seconds: Option<f64>,
}

/// What the HTTP layer asks of a running server.
pub trait ServingQueries: Send + Sync + 'static {
    /// The serving statistics of `data_type` over this instance's tasks (`None`: never served
    /// here).
    fn local_stats(&self, data_type: &str) -> Option<ServingStats>;
    /// The statistics of `data_type` over every task of the application, read here from
    /// the active stores and the standby copies within `max_lag` changelog records (stale
    /// reads, Kafka Streams' KIP-535). `None` when this instance does not hold every task
    /// (the caller then asks the peers); `Some(None)` when none has statistics for it.
    fn stale_stats(&self, _data_type: &str, _max_lag: u64) -> Option<Option<ServingStats>> {
        None
    }
    /// `data_type`'s score windows with `from <= start <= to` over this instance's tasks,
    /// merged by window start (empty: none here).
    fn local_windows(
        &self,
        _data_type: &str,
        _from: i64,
        _to: i64,
    ) -> std::collections::BTreeMap<i64, ks_serving::windows::ScoreWindow> {
        std::collections::BTreeMap::new()
    }
    /// Every live instance, this one included.
    fn instances(&self) -> Vec<InstanceInfo>;
    /// The current model of every data type.
    fn models(&self) -> Vec<ModelInfo>;
    /// Whether the server is healthy.
    fn health(&self) -> Health;
    /// Whether state queries may be answered: not while the engine is rebalancing or
    /// restoring, when this instance's statistics would be partial.
    fn queryable(&self) -> bool {
        true
    }
    /// Counters for `/metrics`.
    fn metrics(&self) -> MetricsSnapshot;
    /// The application (consumer group) this instance belongs to, for the dashboard.
    fn application(&self) -> String {
        String::new()
    }
    /// The latest errors handled here (bad records, rejected models), newest first.
    fn recent_errors(&self) -> Vec<ks_serving::dashboard::ErrorEntry> {
        Vec::new()
    }
    /// `data_type`'s kept model versions (`None`: no model of it was installed).
    fn versions(&self, _data_type: &str) -> Option<VersionsReport> {
        None
    }
    /// `data_type`'s champion/challenger figures on this instance (`None`: no challenger).
    fn challenger(&self, _data_type: &str) -> Option<ChallengerReport> {
        None
    }
    /// `data_type`'s input drift on this instance (`None`: no record scored).
    fn drift(&self, _data_type: &str) -> Option<DriftReport> {
        None
    }
    /// Every data type's champion/challenger figures, for `/metrics`.
    fn challengers(&self) -> Vec<ChallengerReport> {
        Vec::new()
    }
    /// Every data type's input drift, for `/metrics`.
    fn drifts(&self) -> Vec<DriftReport> {
        Vec::new()
    }
}
