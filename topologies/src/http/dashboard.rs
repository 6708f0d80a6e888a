//! The dashboard: `/` serves ks-serving's page ([`DASHBOARD_HTML`]), `/dashboard/data` what it
//! polls ([`DashboardData`]) for the whole application, whichever instance is asked.
//!
//! With `local=true` an instance answers its own part only ([`LocalPart`]: counters, latest
//! errors, its serving statistics per data type); without, it asks every other live instance
//! for theirs at once (as `/state/value` does, each within [`PEER_TIMEOUT`]) and merges: the
//! statistics per data type, the counters summed, the errors newest first. An instance that
//! does not answer is listed in `unreachable` and shown without figures.

use super::{peers, Answer, PEER_TIMEOUT};
use crate::queries::{InstanceInfo, MetricsSnapshot, ServingQueries};
use ks_serving::dashboard::{
    merge_errors, Counters, DashboardData, DashboardInstance, DashboardModel, ErrorEntry,
    DASHBOARD_HTML,
};
use ks_serving::{ModelInfo, ServingStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const DATA_PATH: &str = "/dashboard/data";

/// One instance's part of the dashboard, what `/dashboard/data?local=true` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LocalPart {
    instance_id: String,
    state: String,
    counters: Counters,
    recent_errors: Vec<ErrorEntry>,
    /// This instance's serving statistics by data type.
    stats: BTreeMap<String, ServingStats>,
}

/// The page.
pub(super) fn page() -> Answer {
    Answer {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: DASHBOARD_HTML.to_string(),
        unauthorized: false,
    }
}

fn counters(m: &MetricsSnapshot) -> Counters {
    Counters {
        records: m.records,
        scores: m.scores,
        no_model: m.no_model,
        errors: m.errors,
        latency_sum_seconds: m.latency_sum_seconds,
        latency_count: m.latency_count,
        lag: m.lag,
    }
}

/// What the synchronous queries give: this instance's part, the instances, the models.
fn gather(queries: &dyn ServingQueries) -> (LocalPart, Vec<InstanceInfo>, Vec<ModelInfo>) {
    let instances = queries.instances();
    let models = queries.models();
    let instance_id = instances
        .iter()
        .find(|i| i.local)
        .map(|i| i.instance_id.clone())
        .unwrap_or_default();
    let stats = models
        .iter()
        .filter_map(|m| {
            queries
                .local_stats(&m.data_type)
                .map(|s| (m.data_type.clone(), s))
        })
        .collect();
    let part = LocalPart {
        instance_id,
        state: queries.health().state,
        counters: counters(&queries.metrics()),
        recent_errors: queries.recent_errors(),
        stats,
    };
    (part, instances, models)
}

/// `/dashboard/data`, this instance's part (`local_only`) or the whole application's.
pub(super) async fn data(
    queries: Arc<dyn ServingQueries>,
    local_only: bool,
    token: Option<String>,
) -> Answer {
    let application = queries.application();
    let gathered = tokio::task::spawn_blocking(move || gather(&*queries)).await;
    let (mine, instances, models) = match gathered {
        Ok(g) => g,
        Err(e) => return Answer::error(500, &format!("query failed: {e}"), DATA_PATH),
    };
    if local_only {
        return Answer::serialized(&mine, DATA_PATH);
    }
    // Every other instance is asked at once: the slowest bounds the answer.
    let asks: Vec<_> = instances
        .iter()
        .filter(|i| !i.local && !i.host.is_empty() && i.port != 0)
        .map(|i| {
            let authority = peers::authority(&i.host, i.port);
            let ask = tokio::spawn(ask_peer(authority.clone(), token.clone()));
            (i.instance_id.clone(), authority, ask)
        })
        .collect();
    let mut parts: BTreeMap<String, LocalPart> = BTreeMap::new();
    let mut unreachable = Vec::new();
    for (id, authority, ask) in asks {
        match ask.await {
            Ok(Some(part)) => {
                parts.insert(id, part);
            }
            _ => unreachable.push(authority),
        }
    }
    let data = merge(application, mine, &instances, &models, parts, unreachable);
    Answer::serialized(&data, DATA_PATH)
}

async fn ask_peer(authority: String, token: Option<String>) -> Option<LocalPart> {
    let path = format!("{DATA_PATH}?local=true");
    let ask = super::get_with_token(&authority, &path, token.as_deref());
    match tokio::time::timeout(PEER_TIMEOUT, ask).await {
        Ok(Ok((200, body))) => match serde_json::from_str(&body) {
            Ok(part) => Some(part),
            Err(e) => {
                log::warn!("peer {authority}: undecodable dashboard part: {e}");
                None
            }
        },
        Ok(Ok((status, _))) => {
            log::warn!("peer {authority}: status {status} for {path}");
            None
        }
        Ok(Err(e)) => {
            log::warn!("peer {authority}: {e}");
            None
        }
        Err(_) => {
            log::warn!("peer {authority}: no answer within {PEER_TIMEOUT:?}");
            None
        }
    }
}

fn topic_partitions(ps: impl IntoIterator<Item = (String, i32)>) -> Vec<String> {
    let mut v: Vec<(String, i32)> = ps.into_iter().collect();
    v.sort();
    v.into_iter().map(|(t, p)| format!("{t}-{p}")).collect()
}

/// This instance's part and the peers' (by instance id) into the whole application's view.
fn merge(
    application: String,
    mine: LocalPart,
    instances: &[InstanceInfo],
    models: &[ModelInfo],
    mut parts: BTreeMap<String, LocalPart>,
    unreachable: Vec<String>,
) -> DashboardData {
    let mut shown: Vec<DashboardInstance> = Vec::new();
    let mut listed = instances.to_vec();
    if !listed.iter().any(|i| i.local) {
        // Before the engine has joined (or without one), this instance still shows itself.
        listed.insert(
            0,
            InstanceInfo {
                instance_id: mine.instance_id.clone(),
                host: String::new(),
                port: 0,
                stores: Vec::new(),
                partitions: Vec::new(),
                local: true,
                standby_partitions: Vec::new(),
            },
        );
    }
    let mine_id = mine.instance_id.clone();
    parts.insert(mine_id.clone(), mine);
    for i in &listed {
        // An instance listing itself under another id than its part is still itself.
        let part = if i.local {
            parts.get(&mine_id)
        } else {
            parts.get(&i.instance_id)
        };
        shown.push(DashboardInstance {
            instance_id: i.instance_id.clone(),
            host: i.host.clone(),
            port: i.port,
            local: i.local,
            state: part.map(|p| p.state.clone()).unwrap_or_default(),
            partitions: topic_partitions(i.partitions.iter().cloned()),
            standby_partitions: topic_partitions(
                i.standby_partitions
                    .iter()
                    .map(|s| (s.topic.clone(), s.partition)),
            ),
            counters: part.map(|p| p.counters.clone()),
        });
    }
    let mut totals = Counters::default();
    let mut errors = Vec::new();
    for (id, part) in &parts {
        totals.add(&part.counters);
        errors.extend(part.recent_errors.iter().cloned().map(|mut e| {
            e.instance = id.clone();
            e
        }));
    }
    let models = models
        .iter()
        .map(|m| {
            let mut stats: Option<ServingStats> = None;
            for part in parts.values() {
                if let Some(theirs) = part.stats.get(&m.data_type) {
                    stats = Some(match stats {
                        Some(ours) => ours.merge(theirs),
                        None => theirs.clone(),
                    });
                }
            }
            DashboardModel {
                data_type: m.data_type.clone(),
                name: m.name.clone(),
                model_type: m.model_type.clone(),
                version: m.version.clone(),
                since: stats
                    .as_ref()
                    .filter(|s| s.version == m.version)
                    .map_or(m.loaded, |s| s.since),
                stats: stats.filter(|s| s.version == m.version),
            }
        })
        .collect();
    DashboardData {
        server: "ks-server".into(),
        application,
        time_ms: ks_serving::now_ms(),
        models,
        totals,
        instances: shown,
        recent_errors: merge_errors(errors),
        unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: &str, records: u64, stats: Option<ServingStats>) -> LocalPart {
        LocalPart {
            instance_id: id.into(),
            state: "Running".into(),
            counters: Counters {
                records,
                lag: Some(1),
                ..Counters::default()
            },
            recent_errors: vec![ErrorEntry {
                time_ms: records as i64,
                reason: format!("bad {id}"),
                instance: String::new(),
            }],
            stats: stats.into_iter().map(|s| ("wine".to_string(), s)).collect(),
        }
    }

    fn instance(id: &str, local: bool, partition: i32) -> InstanceInfo {
        InstanceInfo {
            instance_id: id.into(),
            host: "127.0.0.1".into(),
            port: 1,
            stores: Vec::new(),
            partitions: vec![("data".into(), partition)],
            local,
            standby_partitions: Vec::new(),
        }
    }

    fn model() -> ModelInfo {
        ModelInfo {
            data_type: "wine".into(),
            name: "tree".into(),
            description: String::new(),
            model_type: "PMML".into(),
            version: "0:1".into(),
            loaded: 5,
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn stats(n: usize) -> ServingStats {
        let mut s = ServingStats::new("tree", "", "PMML", "0:1", 3);
        for _ in 0..n {
            s.record(10.0);
        }
        s
    }

    #[test]
    fn every_instance_s_part_is_merged_and_a_silent_one_is_shown_without_figures() {
        let instances = [
            instance("a", true, 0),
            instance("b", false, 1),
            instance("c", false, 2),
        ];
        let parts = [("b".to_string(), part("b", 7, Some(stats(2))))].into();
        let d = merge(
            "app".into(),
            part("a", 3, Some(stats(1))),
            &instances,
            &[model()],
            parts,
            vec!["127.0.0.1:1".into()],
        );
        assert_eq!(d.totals.records, 10);
        assert_eq!(d.totals.lag, Some(2));
        assert_eq!(d.models[0].stats.as_ref().map(|s| s.usage), Some(3));
        assert_eq!(d.models[0].since, 3);
        assert_eq!(d.instances.len(), 3);
        assert_eq!(d.instances[0].partitions, ["data-0"]);
        assert!(d.instances[2].counters.is_none());
        assert_eq!(d.recent_errors[0].reason, "bad b");
        assert_eq!(d.recent_errors[0].instance, "b");
    }

    #[test]
    fn statistics_of_an_older_model_are_not_shown_as_the_current_one_s() {
        let mut old = stats(4);
        old.version = "0:0".into();
        let d = merge(
            "app".into(),
            part("a", 1, Some(old)),
            &[],
            &[model()],
            BTreeMap::new(),
            Vec::new(),
        );
        assert!(d.models[0].stats.is_none());
        assert_eq!(d.models[0].since, 5);
        assert_eq!(d.instances.len(), 1, "the answering instance shows itself");
    }
}
