//! The operator's dashboard, shared by both model servers: one page of plain HTML and JS
//! ([`DASHBOARD_HTML`], embedded in the binary, no CDN) served at `/`, which polls
//! `/dashboard/data` every second for a [`DashboardData`] and draws it.
//!
//! The page is server-agnostic: everything it shows comes from [`DashboardData`] (the current
//! model per data type with its serving statistics, the application's counters, the instances
//! with their partitions and the latest errors), except the challenger and drift figures, which
//! it asks of `/models/{dataType}/challenger` and `/models/{dataType}/drift` and shows only when
//! they answer 200. Records/s, scoring latency and errors per minute are rates the page computes
//! from the deltas of the cumulative [`Counters`] between two polls, so a server keeps no
//! time series.
//!
//! ```
//! use ks_serving::dashboard::{Counters, RecentErrors, DASHBOARD_HTML};
//!
//! assert!(DASHBOARD_HTML.contains("/dashboard/data"));
//! let errors = RecentErrors::default();
//! errors.push("undecodable record at models_data[0]@7");
//! assert_eq!(errors.snapshot()[0].reason, "undecodable record at models_data[0]@7");
//! let mut total = Counters { records: 3, ..Counters::default() };
//! total.add(&Counters { records: 4, lag: Some(2), ..Counters::default() });
//! assert_eq!((total.records, total.lag), (7, Some(2)));
//! ```

use crate::ServingStats;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The dashboard page (`serving/dashboard/index.html`), served at `/` by both servers.
pub const DASHBOARD_HTML: &str = include_str!("../dashboard/index.html");

/// How many of the latest errors a server keeps for the dashboard.
pub const RECENT_ERRORS: usize = 20;

/// What `/dashboard/data` answers: the whole application as the answering instance sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    /// `ks-server` or `as-server`.
    pub server: String,
    /// The application (consumer group) shown.
    pub application: String,
    /// When the answer was made (ms since the epoch).
    pub time_ms: i64,
    /// The current model per data type, with its serving statistics over every instance.
    pub models: Vec<DashboardModel>,
    /// Counters summed over every instance that answered.
    pub totals: Counters,
    /// Every instance of the application.
    pub instances: Vec<DashboardInstance>,
    /// The latest errors of every instance that answered, newest first.
    pub recent_errors: Vec<ErrorEntry>,
    /// `host:port` of the instances that did not answer (their figures are missing).
    #[serde(default)]
    pub unreachable: Vec<String>,
}

/// One data type's current model on the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardModel {
    /// The data type.
    pub data_type: String,
    /// The model's name.
    pub name: String,
    /// `PMML` or `TENSORFLOW`.
    pub model_type: String,
    /// `<partition>:<offset>` of the model message.
    pub version: String,
    /// Since when it serves (ms since the epoch).
    pub since: i64,
    /// Its serving statistics, when any record was scored.
    pub stats: Option<ServingStats>,
}

/// Cumulative counters of one instance (or their sum); the page turns them into rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Data records processed.
    pub records: u64,
    /// Records scored by a model.
    pub scores: u64,
    /// Records that found no model.
    pub no_model: u64,
    /// Bad records and bad models.
    pub errors: u64,
    /// Total scoring time, seconds.
    pub latency_sum_seconds: f64,
    /// Scorings timed.
    pub latency_count: u64,
    /// Records waiting in the assigned partitions, when known.
    pub lag: Option<u64>,
}

impl Counters {
    /// Adds `other` in (lags add up: each instance reports its own partitions').
    pub fn add(&mut self, other: &Counters) {
        self.records += other.records;
        self.scores += other.scores;
        self.no_model += other.no_model;
        self.errors += other.errors;
        self.latency_sum_seconds += other.latency_sum_seconds;
        self.latency_count += other.latency_count;
        self.lag = match (self.lag, other.lag) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }
}

/// One instance on the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardInstance {
    /// The instance id.
    pub instance_id: String,
    /// Its HTTP host.
    pub host: String,
    /// Its HTTP port.
    pub port: u16,
    /// Whether it is the instance answering.
    pub local: bool,
    /// Its state (`Running`, `Rebalancing`, …; empty when it did not answer).
    pub state: String,
    /// Its active partitions, as `topic-partition`.
    pub partitions: Vec<String>,
    /// The standby copies it keeps, as `topic-partition`.
    pub standby_partitions: Vec<String>,
    /// Its counters (`None` when it did not answer).
    pub counters: Option<Counters>,
}

/// One error, as the dashboard lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// When it happened (ms since the epoch).
    pub time_ms: i64,
    /// What went wrong.
    pub reason: String,
    /// The instance it happened on (filled in when instances are merged).
    #[serde(default)]
    pub instance: String,
}

/// The latest [`RECENT_ERRORS`] errors, kept for the dashboard.
#[derive(Debug, Default)]
pub struct RecentErrors {
    entries: Mutex<VecDeque<ErrorEntry>>,
}

impl RecentErrors {
    /// Records an error now, dropping the oldest beyond [`RECENT_ERRORS`].
    pub fn push(&self, reason: &str) {
        // A panic elsewhere while holding the lock leaves a deque that is still valid.
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == RECENT_ERRORS {
            entries.pop_back();
        }
        entries.push_front(ErrorEntry {
            time_ms: crate::now_ms(),
            reason: reason.to_string(),
            instance: String::new(),
        });
    }

    /// The errors kept, newest first.
    pub fn snapshot(&self) -> Vec<ErrorEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }
}

/// Merges the errors of several instances: newest first, at most [`RECENT_ERRORS`].
pub fn merge_errors(mut all: Vec<ErrorEntry>) -> Vec<ErrorEntry> {
    all.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
    all.truncate(RECENT_ERRORS);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_errors_keep_the_newest_first_and_are_bounded() {
        let e = RecentErrors::default();
        for i in 0..RECENT_ERRORS + 5 {
            e.push(&format!("e{i}"));
        }
        let s = e.snapshot();
        assert_eq!(s.len(), RECENT_ERRORS);
        assert_eq!(s[0].reason, format!("e{}", RECENT_ERRORS + 4));
        assert_eq!(s[RECENT_ERRORS - 1].reason, "e5");
    }

    #[test]
    fn merged_errors_are_newest_first() {
        let at = |t, r: &str| ErrorEntry {
            time_ms: t,
            reason: r.into(),
            instance: String::new(),
        };
        let m = merge_errors(vec![at(1, "a"), at(3, "c"), at(2, "b")]);
        let reasons: Vec<&str> = m.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["c", "b", "a"]);
    }

    #[test]
    fn the_page_polls_the_data_endpoint_and_loads_nothing_from_outside() {
        assert!(DASHBOARD_HTML.contains("/dashboard/data"));
        for outside in ["http://", "https://", "//cdn"] {
            assert!(
                !DASHBOARD_HTML.contains(outside),
                "the page must not load {outside}…"
            );
        }
    }
}
