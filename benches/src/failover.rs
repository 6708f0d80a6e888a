//! The failover benchmark (`ks-failover`): how long the tasks of a killed instance take to
//! process again on the survivor, with and without standby replicas, on the same broker in
//! the same run.
//!
//! Two `ks-wordcount` processes (a replay-safe count per key in RocksDB) share a 4-partition
//! input preloaded with `keys` distinct keys, so each task's store and changelog hold a quarter
//! of them. Once both have counted everything (and, with standbys, each holds caught-up copies
//! of the other's tasks), a producer keeps writing at full rate, one instance is killed with
//! SIGKILL, and the survivor's events (wall-clock stamped lines) give:
//! - detection: from the kill to the survivor being assigned the moved partitions (the
//!   group's session timeout and rebalance: the broker's part, not the engine's);
//! - restore: from that assignment to the moved tasks processing (opening, replaying the
//!   changelog — all of it without a standby, the tail past the copy with one — and
//!   initialising), and the records replayed.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One event line of `ks-wordcount`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Processed(u64),
    Assigned {
        at: i64,
        partitions: Vec<i32>,
    },
    Restored(RestoredTask),
    Standby {
        at: i64,
        lags: Vec<(i32, Option<u64>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RestoredTask {
    pub at: i64,
    pub task: String,
    pub records: u64,
    pub from_standby: bool,
    pub ready_ms: u64,
}

fn list(s: &str) -> Option<Vec<&str>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split(',').filter(|x| !x.is_empty()).collect())
}

/// Parses one line of `ks-wordcount`'s output (`None`: not an event).
pub fn parse_event(line: &str) -> Option<Event> {
    if let Some(rest) = line.strip_prefix("processed ") {
        return rest.split(' ').next()?.parse().ok().map(Event::Processed);
    }
    let rest = line.strip_prefix("at ")?;
    let (at, rest) = rest.split_once(' ')?;
    let at: i64 = at.parse().ok()?;
    if let Some(parts) = rest.strip_prefix("assigned ") {
        let partitions = list(parts)?
            .into_iter()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        return Some(Event::Assigned { at, partitions });
    }
    if let Some(parts) = rest.strip_prefix("standby ") {
        let mut lags = Vec::new();
        for item in list(parts)? {
            let (p, lag) = item.split_once(':')?;
            lags.push((p.parse().ok()?, lag.parse().ok()));
        }
        return Some(Event::Standby { at, lags });
    }
    let rest = rest.strip_prefix("restored task ")?;
    let words: Vec<&str> = rest.split(' ').collect();
    match words.as_slice() {
        [task, "records", n, "from_standby", b, "ready_ms", ms] => {
            Some(Event::Restored(RestoredTask {
                at,
                task: task.to_string(),
                records: n.parse().ok()?,
                from_standby: b.parse().ok()?,
                ready_ms: ms.parse().ok()?,
            }))
        }
        _ => None,
    }
}

/// What one instance reported so far.
#[derive(Debug, Default)]
pub struct Events {
    pub processed: u64,
    pub partitions: Vec<i32>,
    pub assigned: Vec<(i64, Vec<i32>)>,
    pub restored: Vec<RestoredTask>,
    pub standby: Vec<(i32, Option<u64>)>,
}

/// A `ks-wordcount` process and its events.
pub struct Instance {
    child: Child,
    pub events: Arc<Mutex<Events>>,
    pub log: PathBuf,
}

impl Instance {
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        binary: &Path,
        brokers: &str,
        app: &str,
        state_dir: &Path,
        input: &str,
        output: &str,
        replicas: usize,
        log: PathBuf,
    ) -> Result<Instance> {
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(binary)
            .args([
                "--brokers",
                brokers,
                "--application-id",
                app,
                "--input",
                input,
            ])
            .args([
                "--output",
                output,
                "--store",
                "rocksdb",
                "--commit-ms",
                "1000",
            ])
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--num-standby-replicas", &replicas.to_string()])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG")
                    .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from ks-wordcount"))?;
        let events = Arc::new(Mutex::new(Events::default()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let Some(event) = parse_event(&line) else {
                    continue;
                };
                let Ok(mut e) = sink.lock() else { return };
                match event {
                    Event::Processed(n) => e.processed = n,
                    Event::Assigned { at, partitions } => {
                        e.partitions = partitions.clone();
                        e.assigned.push((at, partitions));
                    }
                    Event::Restored(r) => e.restored.push(r),
                    Event::Standby { lags, .. } => e.standby = lags,
                }
            }
        });
        Ok(Instance { child, events, log })
    }

    fn with<T>(&self, f: impl FnOnce(&Events) -> T) -> Result<T> {
        let e = self
            .events
            .lock()
            .map_err(|_| anyhow!("event reader failed"))?;
        Ok(f(&e))
    }

    /// SIGKILL: no commit, no checkpoint, no leaving the group.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("cannot kill ks-wordcount")?;
        let _ = self.child.wait();
        Ok(())
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            _ => None,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One failover's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverRun {
    pub standby_replicas: usize,
    pub keys: u64,
    /// Kill → the survivor assigned the moved partitions (session timeout + rebalance).
    pub detection_ms: u64,
    /// Assignment → the moved tasks processing (open, restore, init), the slowest task.
    pub restore_ms: u64,
    /// Kill → the moved tasks processing.
    pub total_ms: u64,
    /// Changelog records replayed for the moved tasks.
    pub restored_records: u64,
    pub from_standby: bool,
}

fn now_ms() -> i64 {
    ks_kafka::now_ms()
}

fn wait(what: &str, timeout: Duration, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {} s waiting for {what}", timeout.as_secs())
}

/// Writes records of the existing keys at full rate until `stop`.
fn load(
    brokers: String,
    topic: String,
    keys: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<()> {
    let sender = crate::kafka::Sender::connect(&brokers, 5)?;
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // A stride through the keys, so every partition gets its share.
        let k = (i.wrapping_mul(7_919)) % keys;
        let key = format!("k{k}");
        sender.send(&topic, (k % 4) as i32, Some(key.as_bytes()), b"x", None)?;
        i += 1;
        sent.fetch_add(1, Ordering::Relaxed);
    }
    sender.flush()
}

/// Runs one failover with `replicas` standby replicas on `brokers`.
pub fn run_once(
    binary: &Path,
    brokers: &str,
    keys: u64,
    replicas: usize,
    work_dir: &Path,
) -> Result<FailoverRun> {
    let tag = format!("{:x}", now_ms());
    let (input, output, app) = (
        format!("failover-in-{tag}"),
        format!("failover-out-{tag}"),
        format!("failover-{replicas}-{tag}"),
    );
    crate::kafka::create_topics(brokers, &[(&input, 4), (&output, 4)])?;
    {
        let sender = crate::kafka::Sender::connect(brokers, 20)?;
        for k in 0..keys {
            let key = format!("k{k}");
            sender.send(&input, (k % 4) as i32, Some(key.as_bytes()), b"x", None)?;
        }
        sender.flush()?;
    }
    let dir = |name: &str| -> Result<PathBuf> {
        let d = work_dir.join(format!("{app}-{name}"));
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        Ok(d)
    };
    let mut a = Instance::start(
        binary,
        brokers,
        &app,
        &dir("a")?,
        &input,
        &output,
        replicas,
        work_dir.join(format!("{app}-a.log")),
    )?;
    let b = Instance::start(
        binary,
        brokers,
        &app,
        &dir("b")?,
        &input,
        &output,
        replicas,
        work_dir.join(format!("{app}-b.log")),
    )?;
    wait(
        "both instances to count every key",
        Duration::from_secs(600),
        || {
            if let Some(s) = a.exited() {
                bail!("instance a exited ({s}); log {}", a.log.display());
            }
            let (pa, na) = a.with(|e| (e.partitions.len(), e.processed))?;
            let (pb, nb) = b.with(|e| (e.partitions.len(), e.processed))?;
            Ok(pa == 2 && pb == 2 && na + nb >= keys)
        },
    )?;
    let moved = a.with(|e| e.partitions.clone())?;
    if replicas > 0 {
        wait(
            "b's copies of a's tasks to catch up",
            Duration::from_secs(600),
            || {
                b.with(|e| {
                    moved.iter().all(|p| {
                        e.standby
                            .iter()
                            .any(|(q, lag)| q == p && lag.is_some_and(|l| l <= 1_000))
                    })
                })
            },
        )?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let producer = {
        let (brokers, input, stop, sent) = (
            brokers.to_string(),
            input.clone(),
            stop.clone(),
            sent.clone(),
        );
        std::thread::spawn(move || load(brokers, input, keys, stop, sent))
    };
    // Full rate first, then the kill.
    std::thread::sleep(Duration::from_secs(2));
    let restores_before = b.with(|e| e.restored.len())?;
    let killed_at = now_ms();
    a.kill()?;
    let outcome = (|| -> Result<FailoverRun> {
        wait("b to run the moved tasks", Duration::from_secs(600), || {
            b.with(|e| {
                let done: Vec<&RestoredTask> = e.restored[restores_before..]
                    .iter()
                    .filter(|r| moved.iter().any(|p| r.task.ends_with(&format!("_{p}"))))
                    .collect();
                done.len() >= moved.len()
            })
        })?;
        b.with(|e| {
            let assigned_at = e
                .assigned
                .iter()
                .find(|(at, parts)| *at >= killed_at && moved.iter().all(|p| parts.contains(p)))
                .map(|(at, _)| *at)
                .unwrap_or(killed_at);
            let tasks: Vec<&RestoredTask> = e.restored[restores_before..]
                .iter()
                .filter(|r| moved.iter().any(|p| r.task.ends_with(&format!("_{p}"))))
                .collect();
            let ready_at = tasks.iter().map(|r| r.at).max().unwrap_or(assigned_at);
            FailoverRun {
                standby_replicas: replicas,
                keys,
                detection_ms: (assigned_at - killed_at).max(0) as u64,
                restore_ms: tasks.iter().map(|r| r.ready_ms).max().unwrap_or(0),
                total_ms: (ready_at - killed_at).max(0) as u64,
                restored_records: tasks.iter().map(|r| r.records).sum(),
                from_standby: tasks.iter().all(|r| r.from_standby),
            }
        })
    })();
    stop.store(true, Ordering::Relaxed);
    producer
        .join()
        .map_err(|_| anyhow!("the load producer panicked"))??;
    drop(b);
    outcome
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_lines_parse() {
        assert_eq!(
            parse_event("at 17 assigned [0,2]"),
            Some(Event::Assigned {
                at: 17,
                partitions: vec![0, 2]
            })
        );
        assert_eq!(
            parse_event("at 5 standby [1:0,3:?]"),
            Some(Event::Standby {
                at: 5,
                lags: vec![(1, Some(0)), (3, None)]
            })
        );
        assert_eq!(
            parse_event("at 9 restored task 0_3 records 12 from_standby true ready_ms 40"),
            Some(Event::Restored(RestoredTask {
                at: 9,
                task: "0_3".into(),
                records: 12,
                from_standby: true,
                ready_ms: 40
            }))
        );
        assert_eq!(
            parse_event("processed 42 partitions [(\"t\", 1)]"),
            Some(Event::Processed(42))
        );
        assert_eq!(parse_event("at x assigned []"), None);
        assert_eq!(parse_event("committed t:0=4"), None);
    }
}
