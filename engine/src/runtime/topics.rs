//! The internal topics an application needs at start, with their partition counts, and the
//! co-partitioning check Kafka Streams makes (its `TopologyException` for joined inputs with
//! different partition counts).
//!
//! - A repartition topic (`<application.id>-<name>-repartition`) gets the partition count of the
//!   sub-topology it feeds: that of the sub-topology's other (external) inputs when it is joined
//!   with them, else that of the sub-topology writing it.
//! - The inputs of a sub-topology read by more than one source node are joined, so they must
//!   have the same partition count; otherwise `start()` fails naming the topics.
//! - A changelog has a partition per task of its sub-topology.

use crate::runtime::admin::TopicSpec;
use crate::runtime::config::{ErrorHandling, StreamsConfig};
use crate::runtime::metadata;
use crate::topology::Topology;
use crate::{Error, Result};
use std::collections::HashMap;

/// Every internal topic to ensure, given the partition counts of the topics that exist.
pub(crate) fn plan(
    topology: &Topology,
    config: &StreamsConfig,
    existing: &HashMap<String, i32>,
) -> Result<Vec<TopicSpec>> {
    let mut counts = existing.clone();
    for t in topology.source_topics() {
        if !topology.internal.contains(&t) && !counts.contains_key(&t) {
            return Err(Error::InvalidTopology(format!(
                "source topic {t} does not exist"
            )));
        }
    }
    let mut specs = vec![TopicSpec {
        name: metadata::topic_name(&config.application_id),
        partitions: 1,
        compacted: true,
    }];
    for topic in &topology.internal {
        let n = repartition_count(topology, topic, &counts, 0)?;
        counts.entry(topic.clone()).or_insert(n);
        specs.push(TopicSpec {
            name: topic.clone(),
            partitions: counts[topic],
            compacted: false,
        });
    }
    check_copartitioned(topology, &counts)?;
    for sub in topology.subtopologies() {
        let tasks = sub
            .source_topics
            .iter()
            .filter_map(|t| counts.get(t).copied())
            .max()
            .unwrap_or(1);
        for store in &sub.stores {
            let logged = topology
                .store_specs()
                .iter()
                .any(|s| &s.name == store && s.logging);
            if logged {
                specs.push(TopicSpec {
                    name: ks_stores::changelog_topic(&config.application_id, store),
                    partitions: tasks,
                    compacted: true,
                });
            }
        }
    }
    for g in topology.global_topics() {
        if !counts.contains_key(&g) {
            return Err(Error::InvalidTopology(format!(
                "global topic {g} does not exist"
            )));
        }
    }
    if let ErrorHandling::DeadLetter { topic } = &config.error_handling {
        if !counts.contains_key(topic) {
            specs.push(TopicSpec {
                name: topic.clone(),
                partitions: 1,
                compacted: false,
            });
        }
    }
    Ok(specs)
}

/// The partition count of repartition topic `topic`: as it exists, else that of the external
/// inputs it is joined with, else that of the inputs of the sub-topology writing it.
fn repartition_count(
    topology: &Topology,
    topic: &str,
    counts: &HashMap<String, i32>,
    depth: usize,
) -> Result<i32> {
    if let Some(&n) = counts.get(topic) {
        return Ok(n);
    }
    if depth > topology.internal.len() {
        return Err(Error::InvalidTopology(format!(
            "repartition topic {topic} is fed by a cycle of repartition topics"
        )));
    }
    let reader = topology
        .subtopologies()
        .into_iter()
        .find(|s| s.source_topics.iter().any(|t| t == topic));
    if let Some(reader) = &reader {
        let joined = reader
            .source_topics
            .iter()
            .filter(|t| !topology.internal.contains(*t))
            .filter_map(|t| counts.get(t).copied())
            .max();
        if let Some(n) = joined {
            return Ok(n);
        }
    }
    let writer = topology.writer_of(topic).ok_or_else(|| {
        Error::InvalidTopology(format!("repartition topic {topic} has no writer"))
    })?;
    let mut n = 0;
    for t in &writer.source_topics {
        n = n.max(repartition_count(topology, t, counts, depth + 1)?);
    }
    Ok(n.max(1))
}

/// Joined inputs must have the same partition count.
fn check_copartitioned(topology: &Topology, counts: &HashMap<String, i32>) -> Result<()> {
    for group in topology.copartition_groups() {
        let with_counts: Vec<(String, i32)> = group
            .iter()
            .map(|t| (t.clone(), counts.get(t).copied().unwrap_or(0)))
            .collect();
        if with_counts.windows(2).any(|w| w[0].1 != w[1].1) {
            return Err(Error::NotCopartitioned {
                topics: with_counts,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_foreign_key_join_needs_no_copartitioning() {
        // Kafka Streams' subscription protocol: the subscription topic is partitioned like the
        // right table, the response topic like the left one, whatever their counts.
        let t = crate::dsl::fk_join_tests::orders_join_customers().scoped("app");
        let existing = HashMap::from([("orders".to_string(), 4), ("customers".to_string(), 2)]);
        let specs = plan(&t, &StreamsConfig::new("app", "unused:9092"), &existing).unwrap();
        let count = |suffix: &str| {
            let found: Vec<_> = specs
                .iter()
                .filter(|s| s.name.contains(suffix) && s.name.ends_with("-topic"))
                .collect();
            assert_eq!(
                found.len(),
                1,
                "{suffix}: {:?}",
                specs.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            assert!(found[0].name.starts_with("app-"), "{}", found[0].name);
            found[0].partitions
        };
        assert_eq!(count("SUBSCRIPTION-REGISTRATION"), 2);
        assert_eq!(count("SUBSCRIPTION-RESPONSE"), 4);
    }
}
