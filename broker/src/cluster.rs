//! Three Apache Kafka nodes on one machine for replication tests: every node is broker and
//! controller (a quorum of three), internal topics and new topics get replication factor 3 and
//! `min.insync.replicas=2`, so any one node can be stopped or killed and the cluster goes on.

use crate::kafka::{self, NodeSpec};
use crate::process::Process;
use crate::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// A KRaft cluster of three combined nodes (ids 1, 2, 3) on 127.0.0.1, removed on drop.
#[derive(Debug)]
pub struct KafkaCluster {
    nodes: Vec<(NodeSpec, Option<Process>)>,
    dir: PathBuf,
}

impl KafkaCluster {
    /// Starts three nodes (in parallel: each waits for a quorum of the others) and waits until
    /// each answers Metadata listing itself.
    pub fn start() -> Result<KafkaCluster> {
        const SIZE: u32 = 3;
        let cluster_id = kafka::random_cluster_id();
        let dir = std::env::temp_dir().join(format!("ks-kafka-cluster-{}", &cluster_id[..8]));
        let mut ports = Vec::new();
        for _ in 0..SIZE {
            let (port, controller) = kafka::node_ports(None)?;
            ports.push((port, controller));
        }
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let specs: Vec<NodeSpec> = ports
            .iter()
            .enumerate()
            .map(|(i, (port, controller))| NodeSpec {
                id: i as u32 + 1,
                port: *port,
                controller_port: *controller,
                dir: dir.join(format!("node-{}", i + 1)),
                voters: voters.clone(),
                cluster_id: cluster_id.clone(),
                replication: SIZE,
                sasl: None,
            })
            .collect();
        // Spawned from this thread so each JVM dies with the thread that owns the cluster
        // (PR_SET_PDEATHSIG follows the spawning thread); the three start concurrently, since
        // none is ready before a quorum of them runs.
        let mut nodes = Vec::new();
        let mut first_error = None;
        for spec in specs {
            match spec.spawn() {
                Ok(p) => nodes.push((spec, Some(p))),
                Err(e) => {
                    first_error.get_or_insert(e);
                    nodes.push((spec, None));
                }
            }
        }
        for (spec, process) in &mut nodes {
            if let Some(p) = process.as_mut() {
                if let Err(e) = spec.wait_ready(p) {
                    first_error.get_or_insert(e);
                }
            }
        }
        let cluster = KafkaCluster { nodes, dir };
        match first_error {
            Some(e) => Err(e),
            None => Ok(cluster),
        }
    }

    /// Every node's client address, comma-separated.
    pub fn bootstrap_servers(&self) -> String {
        self.nodes
            .iter()
            .map(|(spec, _)| spec.bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node index (0-based) whose Kafka node id is `id`.
    pub fn index_of(&self, id: i32) -> Option<usize> {
        self.nodes
            .iter()
            .position(|(spec, _)| i64::from(spec.id) == i64::from(id))
    }

    /// Node `i`'s client address.
    pub fn node_bootstrap(&self, i: usize) -> Result<String> {
        let size = self.nodes.len();
        self.nodes
            .get(i)
            .map(|(spec, _)| spec.bootstrap())
            .ok_or(Error::NoSuchNode { node: i, size })
    }

    fn node(&mut self, i: usize) -> Result<&mut (NodeSpec, Option<Process>)> {
        let size = self.nodes.len();
        self.nodes
            .get_mut(i)
            .ok_or(Error::NoSuchNode { node: i, size })
    }

    /// SIGTERM to node `i` (a controlled shutdown: its leaderships move first).
    pub fn stop(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.node(i)?.1.take() {
            p.terminate(Duration::from_secs(60));
        }
        Ok(())
    }

    /// SIGKILL to node `i`.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut p) = self.node(i)?.1.take() {
            p.kill();
        }
        Ok(())
    }

    /// Starts node `i` again on its log directory; a running node is left as it is.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        let node = self.node(i)?;
        if node.1.as_mut().is_some_and(Process::is_running) {
            return Ok(());
        }
        node.1 = Some(node.0.start()?);
        Ok(())
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes
            .get_mut(i)
            .and_then(|n| n.1.as_mut())
            .is_some_and(Process::is_running)
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for (_, p) in &mut self.nodes {
            if let Some(p) = p.as_mut() {
                p.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
