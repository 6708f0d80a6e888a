//! Apache Kafka in KRaft combined mode (each process is broker and controller), from the jars
//! `scripts/install-kafka.sh` resolves into `.ks/kafka/<version>/libs`.
//!
//! A node's directory holds everything it needs to start again after a stop or a kill:
//! `server.properties` and `log4j2.properties` (rewritten at every start), `logs/` (the log
//! directory, formatted on first start) and `server.log` (the JVM's output).

use crate::probe::metadata_brokers;
use crate::process::Process;
use crate::{checkout_root, free_port, Error, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// JVM heap of one node unless `KS_KAFKA_HEAP_MB` says otherwise.
pub const DEFAULT_HEAP_MB: u32 = 512;

/// Finds the broker's jar directory (`$KS_KAFKA_LIBS` or `.ks/kafka/<version>/libs`), running
/// the install script when it is missing.
pub fn kafka_libs() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KS_KAFKA_LIBS") {
        return Ok(PathBuf::from(p));
    }
    let printed = crate::run_install_script("scripts/install-kafka.sh")?;
    let libs = PathBuf::from(printed);
    if libs.join(".").is_dir() {
        Ok(libs)
    } else {
        Err(Error::Install {
            script: checkout_root().join("scripts/install-kafka.sh"),
            reason: format!("{} is not a directory", libs.display()),
        })
    }
}

fn java() -> PathBuf {
    if let Some(j) = std::env::var_os("KS_JAVA") {
        return PathBuf::from(j);
    }
    match std::env::var_os("JAVA_HOME") {
        Some(home) if Path::new(&home).join("bin/java").is_file() => {
            Path::new(&home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

fn heap_mb() -> u32 {
    std::env::var("KS_KAFKA_HEAP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_HEAP_MB)
}

/// How long a node may take from spawn to answering Metadata with itself listed.
fn start_timeout() -> Duration {
    Duration::from_secs(
        std::env::var("KS_KAFKA_START_TIMEOUT_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    )
}

/// One node of a KRaft cluster (a single broker is a cluster of one).
#[derive(Debug, Clone)]
pub(crate) struct NodeSpec {
    pub id: u32,
    pub port: u16,
    pub controller_port: u16,
    pub dir: PathBuf,
    /// `id@host:port` of every controller of the cluster.
    pub voters: String,
    pub cluster_id: String,
    /// Replication factor of the internal topics and the default for new topics.
    pub replication: u32,
    /// A SASL_PLAINTEXT (mechanism PLAIN) client listener besides the PLAINTEXT one.
    pub sasl: Option<SaslListener>,
}

/// A SASL_PLAINTEXT listener with mechanism PLAIN and its users.
#[derive(Debug, Clone)]
pub(crate) struct SaslListener {
    pub port: u16,
    /// `(user, password)`.
    pub users: Vec<(String, String)>,
}

impl SaslListener {
    /// The listener's JAAS line: the broker's own login plus one `user_<name>` per user.
    /// Quotes and backslashes in names or passwords are escaped for JAAS.
    fn jaas(&self) -> String {
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let (admin, admin_pw) = self
            .users
            .first()
            .map(|(u, p)| (u.as_str(), p.as_str()))
            .unwrap_or(("admin", "admin"));
        let mut line = format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{}\" password=\"{}\"",
            q(admin),
            q(admin_pw)
        );
        for (u, p) in &self.users {
            line.push_str(&format!(" user_{}=\"{}\"", q(u), q(p)));
        }
        line.push(';');
        // A properties file treats a backslash as an escape: double it once more.
        line.replace('\\', "\\\\")
    }
}

impl NodeSpec {
    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_dirs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    fn properties(&self) -> String {
        let min_isr = if self.replication >= 3 { 2 } else { 1 };
        let (sasl_listener, sasl_advertised, sasl_map, sasl_props) = match &self.sasl {
            Some(s) => (
                format!(",SASL_PLAINTEXT://127.0.0.1:{}", s.port),
                format!(",SASL_PLAINTEXT://127.0.0.1:{}", s.port),
                ",SASL_PLAINTEXT:SASL_PLAINTEXT",
                format!(
                    "sasl.enabled.mechanisms=PLAIN\n\
                     listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN\n\
                     listener.name.sasl_plaintext.plain.sasl.jaas.config={}\n",
                    s.jaas()
                ),
            ),
            None => (String::new(), String::new(), "", String::new()),
        };
        let rf = self.replication;
        let (id, port, cport) = (self.id, self.port, self.controller_port);
        format!(
            "# Written by ks-broker at every start.\n\
             process.roles=broker,controller\n\
             node.id={id}\n\
             controller.quorum.voters={voters}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}{sasl_listener}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}{sasl_advertised}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT{sasl_map}\n\
             {sasl_props}\
             log.dirs={logs}\n\
             num.partitions=1\n\
             default.replication.factor={rf}\n\
             min.insync.replicas={min_isr}\n\
             offsets.topic.replication.factor={rf}\n\
             offsets.topic.num.partitions=10\n\
             transaction.state.log.replication.factor={rf}\n\
             transaction.state.log.min.isr={min_isr}\n\
             transaction.state.log.num.partitions=10\n\
             share.coordinator.state.topic.replication.factor={rf}\n\
             share.coordinator.state.topic.min.isr={min_isr}\n\
             # Tests and the demo join groups at once instead of waiting 3 s for more members.\n\
             group.initial.rebalance.delay.ms=0\n\
             # A transaction past its timeout is aborted within a second, not up to 10 s later.\n\
             transaction.abort.timed.out.transaction.cleanup.interval.ms=1000\n\
             auto.create.topics.enable=true\n",
            voters = self.voters,
            logs = self.log_dirs().display(),
        )
    }

    /// Writes the configuration and formats the log directory if it is not formatted yet.
    fn prepare(&self, libs: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let props = self.dir.join("server.properties");
        std::fs::write(&props, self.properties()).map_err(io(&props))?;
        let log4j = self.dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J2).map_err(io(&log4j))?;
        if self.log_dirs().join("meta.properties").is_file() {
            return Ok(());
        }
        let out = Command::new(java())
            .args(["-Xmx256m", "-cp"])
            .arg(classpath(libs))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .args(["kafka.tools.StorageTool", "format", "--ignore-formatted"])
            .args(["-t", &self.cluster_id, "-c"])
            .arg(&props)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                what: "kafka-storage format".into(),
                log: props.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Format {
                dir: self.log_dirs(),
                reason: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(())
    }

    /// Formats (first time), spawns the JVM and waits until the node answers Metadata listing
    /// itself.
    pub(crate) fn start(&self) -> Result<Process> {
        let mut process = self.spawn()?;
        self.wait_ready(&mut process)?;
        Ok(process)
    }

    /// Formats (first time) and spawns the JVM without waiting. The process dies with the
    /// calling thread.
    pub(crate) fn spawn(&self) -> Result<Process> {
        let libs = kafka_libs()?;
        self.prepare(&libs)?;
        let heap = heap_mb();
        let mut cmd = Command::new(java());
        cmd.arg(format!("-Xmx{heap}m"))
            .arg(format!("-Xms{}m", heap.min(256)))
            .args([
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
            ])
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ));
        if let Ok(extra) = std::env::var("KS_KAFKA_JAVA_OPTS") {
            cmd.args(extra.split_whitespace());
        }
        cmd.arg("-cp")
            .arg(classpath(&libs))
            .arg("kafka.Kafka")
            .arg(self.dir.join("server.properties"));
        let log = self.dir.join("server.log");
        Process::spawn(cmd, &log, &format!("kafka node {}", self.id))
    }

    /// Waits until the node answers a Metadata request that lists itself.
    pub(crate) fn wait_ready(&self, process: &mut Process) -> Result<()> {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let id = i32::try_from(self.id).unwrap_or(i32::MAX);
        process.wait_ready(&self.bootstrap(), start_timeout(), || {
            metadata_brokers(addr, Duration::from_secs(2)).is_some_and(|ids| ids.contains(&id))
        })
    }
}

fn classpath(libs: &Path) -> String {
    format!("{}/*", libs.display())
}

/// INFO to the node's stdout (its `server.log`), the request log and the state-change log quiet.
const LOG4J2: &str = "\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
";

/// The cluster id in an existing log directory, so a node started on it again keeps it.
pub(crate) fn existing_cluster_id(dir: &Path) -> Option<String> {
    let meta = std::fs::read_to_string(dir.join("logs/meta.properties")).ok()?;
    meta.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .map(|s| s.trim().to_string())
}

/// A new random cluster id: 16 bytes in URL-safe base64 without padding, as Kafka's `Uuid`,
/// and, as Kafka's `Uuid.randomUuid` does, never one starting with `-` (the storage tool would
/// take it for an option).
pub(crate) fn random_cluster_id() -> String {
    loop {
        let id = random_base64_uuid();
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn random_base64_uuid() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !filled {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id()) << 64;
        bytes = seed.to_le_bytes();
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Free ports for a node's client and controller listeners.
pub(crate) fn node_ports(port: Option<u16>) -> Result<(u16, u16)> {
    let port = match port {
        Some(p) => p,
        None => free_port()?,
    };
    let mut controller = free_port()?;
    while controller == port {
        controller = free_port()?;
    }
    Ok((port, controller))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafka_uuids() {
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(id, random_cluster_id());
        // About one id in 64 would start with '-' without the check.
        assert!((0..2000).all(|_| !random_cluster_id().starts_with('-')));
    }
}
