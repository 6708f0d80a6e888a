//! Instance metadata for interactive queries. The local broker returns no members from
//! DescribeGroups, so each instance publishes its own metadata (application.server, stores,
//! assigned partitions, a heartbeat) keyed by its id to the compacted topic
//! `<application.id>-instances`, and reads everyone's like a global table. Entries whose
//! heartbeat is older than three heartbeat intervals are treated as gone.

use crate::runtime::{now_ms, Shared};
use crate::{Error, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one instance of the application hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamsMetadata {
    pub instance_id: String,
    /// `application.server` host and port (empty and 0 when not configured).
    pub host: String,
    pub port: u16,
    pub state_stores: Vec<String>,
    /// Assigned source partitions as (topic, partition).
    pub topic_partitions: Vec<(String, i32)>,
    pub tasks: Vec<String>,
    pub heartbeat_ms: i64,
    /// Set by an instance whose failed thread asks the whole application to shut down
    /// (`UncaughtExceptionHandling::ShutdownApplication`): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_requested: Option<String>,
    /// The standby copies this instance keeps, each with its lag (see `standby`).
    #[serde(default)]
    pub standby_partitions: Vec<crate::runtime::StandbyPartition>,
}

pub(crate) fn topic_name(application_id: &str) -> String {
    format!("{application_id}-instances")
}

pub(crate) fn local(shared: &Shared) -> StreamsMetadata {
    let (host, port) = shared
        .config
        .application_server
        .as_deref()
        .and_then(|s| s.rsplit_once(':'))
        .map(|(h, p)| (h.to_string(), p.parse().unwrap_or(0)))
        .unwrap_or_default();
    let mut topic_partitions = Vec::new();
    let mut tasks = Vec::new();
    for entries in shared.thread_tasks.read().values() {
        for e in entries {
            tasks.push(e.id.clone());
            topic_partitions.extend(e.partitions.iter().cloned());
        }
    }
    topic_partitions.sort();
    tasks.sort();
    let mut state_stores: Vec<String> = shared
        .topology
        .store_specs()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    state_stores.extend(shared.topology.global_store_names());
    StreamsMetadata {
        instance_id: shared.instance_id.clone(),
        host,
        port,
        state_stores,
        topic_partitions,
        tasks,
        heartbeat_ms: now_ms(),
        shutdown_requested: shared.app_shutdown.lock().clone(),
        standby_partitions: shared.standbys.partitions(shared),
    }
}

/// Publishes this instance's metadata on change and every heartbeat, and follows everyone's.
pub(crate) fn run(shared: Arc<Shared>) -> Result<()> {
    let cfg = &shared.config;
    let topic = topic_name(&cfg.application_id);
    let producer: BaseProducer = cfg
        .client_for(ks_kafka::ClientKind::Producer)
        .set("linger.ms", "0")
        .create()
        .map_err(Error::kafka("creating the metadata producer"))?;
    let consumer: BaseConsumer = cfg
        .client_for(ks_kafka::ClientKind::Consumer)
        .set("group.id", format!("{}-metadata", cfg.application_id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(Error::kafka("creating the metadata consumer"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .map_err(Error::kafka("assigning the metadata topic"))?;
    consumer
        .assign(&tpl)
        .map_err(Error::kafka("assigning the metadata topic"))?;
    let mut last_publish: Option<Instant> = None;
    let id = shared.instance_id.clone();
    while !shared.shutdown.load(Ordering::SeqCst) {
        let due = last_publish.is_none_or(|t| t.elapsed() >= cfg.metadata_heartbeat);
        if due || shared.metadata_dirty.swap(false, Ordering::SeqCst) {
            let me = local(&shared);
            if let Ok(json) = serde_json::to_vec(&me) {
                if let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(&id).payload(&json)) {
                    log::warn!("publishing instance metadata failed: {e}");
                }
            }
            // Our own view is never stale, whatever the broker's latency.
            shared.peers.write().insert(id.clone(), me);
            last_publish = Some(Instant::now());
        }
        producer.poll(Duration::ZERO);
        while let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            let Ok(m) = msg else { break };
            let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            if key == id {
                continue;
            }
            let mut peers = shared.peers.write();
            match m.payload().map(serde_json::from_slice::<StreamsMetadata>) {
                Some(Ok(md)) => {
                    let fresh = md.heartbeat_ms >= now_ms() - stale_after_ms(&shared);
                    if let (Some(reason), true) = (&md.shutdown_requested, fresh) {
                        log::error!("instance {key} asks the application to shut down: {reason}");
                        shared.set_state(crate::StreamsState::Error(format!(
                            "the application was shut down by instance {key}: {reason}"
                        )));
                        shared.shutdown.store(true, Ordering::SeqCst);
                    }
                    peers.insert(key.to_string(), md);
                }
                Some(Err(e)) => log::warn!("ignoring malformed instance metadata for {key}: {e}"),
                None => {
                    peers.remove(key);
                }
            }
        }
    }
    let me = local(&shared);
    if me.shutdown_requested.is_some() {
        // Asking the others to shut down: the request is the last word of this instance.
        if let Ok(json) = serde_json::to_vec(&me) {
            let _ = producer.send(BaseRecord::to(&topic).key(&id).payload(&json));
        }
    } else {
        // Leaving: a tombstone, so the others forget this instance at once.
        let _ = producer.send(BaseRecord::<String, [u8]>::to(&topic).key(&id));
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

/// How old a heartbeat may be before its instance counts as gone.
fn stale_after_ms(shared: &Shared) -> i64 {
    3 * shared.config.metadata_heartbeat.as_millis() as i64 + 1000
}

/// Everyone whose heartbeat is fresh, sorted by instance id.
pub(crate) fn all(shared: &Shared) -> Vec<StreamsMetadata> {
    let horizon = now_ms() - stale_after_ms(shared);
    let mut out: Vec<StreamsMetadata> = shared
        .peers
        .read()
        .values()
        .filter(|m| m.heartbeat_ms >= horizon && m.instance_id != shared.instance_id)
        .cloned()
        .collect();
    out.push(local(shared));
    out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    out
}
