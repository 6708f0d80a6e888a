//! The server under test (`ks-server`, `as-server` or the Kafka Streams peer on a JVM) as a child
//! process, so its peak RSS is its own and not the harness's.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Which server binary a mode runs, and how it is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// `ks-server --store <store>` (memory, standard or custom).
    KsServer(String),
    /// `as-server --mode <mode>` (stage or actor), crate ks-reactive.
    AsServer(String),
    /// The Kafka Streams peer (`benches/peers/kafka-streams`, Java): the job of
    /// `ks-server --store standard` on Apache Kafka Streams, run by `java -cp ... `.
    KStreams,
}

/// The Kafka Streams peer's main class.
pub const KSTREAMS_MAIN_CLASS: &str = "dev.ks.kstreams.Main";

/// The script that builds the Kafka Streams peer and prints its classpath.
pub fn kstreams_build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kafka-streams/build.sh")
}

/// The classpath of the Kafka Streams peer: `explicit` (`--kstreams-classpath`), else what its
/// build script (idempotent: Maven runs only when the pom or a source changed) prints last.
pub fn kstreams_classpath(explicit: Option<&str>) -> Result<String> {
    if let Some(cp) = explicit {
        return Ok(cp.to_string());
    }
    let script = kstreams_build_script();
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): the Kafka Streams peer needs java 17+ and mvn",
            script.display(),
            out.status
        );
    }
    last_line(&String::from_utf8_lossy(&out.stdout))
        .map(str::to_string)
        .with_context(|| format!("{} printed no classpath", script.display()))
}

/// The last non-empty line of a script's output.
fn last_line(out: &str) -> Option<&str> {
    out.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// The java to run the peer with: `explicit` (`--java`), else `$JAVA_HOME/bin/java`, else `java`.
pub fn java_binary(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os("JAVA_HOME") {
        Some(home) if Path::new(&home).join("bin/java").is_file() => {
            Path::new(&home).join("bin/java")
        }
        _ => PathBuf::from("java"),
    }
}

/// The JVM options and main class that come before the peer's own arguments.
pub fn kstreams_launcher_args(classpath: &str, heap_mb: u32) -> Vec<String> {
    vec![
        format!("-Xmx{heap_mb}m"),
        "-cp".into(),
        classpath.to_string(),
        KSTREAMS_MAIN_CLASS.into(),
    ]
}

impl ServerKind {
    /// The server of a throughput mode (the data topic read from offset 0, results timed), or
    /// `None` for the modes that are not one server scoring the preloaded topic.
    pub fn for_mode(mode: &str) -> Option<ServerKind> {
        match mode {
            "memory" | "standard" | "custom" => Some(ServerKind::KsServer(mode.to_string())),
            "as-stage" => Some(ServerKind::AsServer("stage".into())),
            "as-actor" => Some(ServerKind::AsServer("actor".into())),
            "kstreams" => Some(ServerKind::KStreams),
            _ => None,
        }
    }

    /// The binary's file name.
    pub fn binary_name(&self) -> &'static str {
        match self {
            ServerKind::KsServer(_) => "ks-server",
            ServerKind::AsServer(_) => "as-server",
            ServerKind::KStreams => "ks-kstreams-peer",
        }
    }

    /// The cargo package that builds the binary (the peer is built by its own script).
    fn package(&self) -> &'static str {
        match self {
            ServerKind::KsServer(_) => "ks-topologies",
            ServerKind::AsServer(_) => "ks-reactive",
            ServerKind::KStreams => "(benches/peers/kafka-streams/build.sh)",
        }
    }

    /// For progress lines: `ks-server --store standard`, `as-server --mode stage`.
    pub fn describe(&self) -> String {
        match self {
            ServerKind::KsServer(store) => format!("ks-server --store {store}"),
            ServerKind::AsServer(mode) => format!("as-server --mode {mode}"),
            ServerKind::KStreams => "the Kafka Streams peer".into(),
        }
    }

    /// Whether `line` of the server's stdout says it is up. ks-server prints
    /// "... running: http://ADDR/state/value ..." once its engine has started; as-server prints
    /// "as-server (<Mode>) listening on http://ADDR" as its first line (then `/health` is polled);
    /// the Kafka Streams peer prints "ks-kstreams-peer (standard) running: ..." once
    /// `KafkaStreams.start()` has returned (its global store bootstrapped).
    pub fn is_ready_line(&self, line: &str) -> bool {
        match self {
            ServerKind::KsServer(_) => line.contains(" running: "),
            ServerKind::AsServer(_) => line.contains(" listening on http://"),
            ServerKind::KStreams => {
                line.starts_with("ks-kstreams-peer") && line.contains(" running: ")
            }
        }
    }
}

/// Where the release binary of `kind` is: `explicit` (`--server-bin`, `--as-server-bin`), else
/// next to this executable (the README's command builds them all into the same target directory).
pub fn locate(explicit: Option<&Path>, kind: &ServerKind) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot locate the ks-bench executable")?;
    let name = kind.binary_name();
    let candidate = exe.with_file_name(name);
    if candidate.is_file() {
        Ok(candidate)
    } else {
        bail!(
            "no {name} next to {} (build it: cargo build --release -p ks-bench -p {}, \
             or pass its path with --server-bin / --as-server-bin)",
            exe.display(),
            kind.package()
        )
    }
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    /// Arguments before the server's own (the peer's JVM options, classpath and main class).
    pub launcher_args: Vec<String>,
    pub kind: ServerKind,
    pub brokers: String,
    /// ks-server's `--application-id`, as-server's `--group-id`: fresh for every mode.
    pub application_id: String,
    pub port: u16,
    pub state_dir: PathBuf,
    pub data_topic: String,
    pub models_topic: String,
    pub results_topic: String,
    pub errors_topic: String,
    pub threads: usize,
    /// stdout and stderr of the server go here.
    pub log: PathBuf,
}

impl ServerSpec {
    pub fn args(&self) -> Vec<String> {
        let mut args = match &self.kind {
            ServerKind::KsServer(store) => vec![
                ("--store", store.clone()),
                ("--application-id", self.application_id.clone()),
                ("--threads", self.threads.to_string()),
                ("--port", self.port.to_string()),
            ],
            ServerKind::AsServer(mode) => vec![
                ("--mode", mode.clone()),
                ("--group-id", self.application_id.clone()),
                ("--port", self.port.to_string()),
            ],
            // No HTTP: the peer serves no queries.
            ServerKind::KStreams => vec![
                ("--application-id", self.application_id.clone()),
                ("--threads", self.threads.to_string()),
            ],
        };
        args.extend([
            ("--brokers", self.brokers.clone()),
            ("--state-dir", self.state_dir.display().to_string()),
            ("--data-topic", self.data_topic.clone()),
            ("--models-topic", self.models_topic.clone()),
            ("--results-topic", self.results_topic.clone()),
            ("--errors-topic", self.errors_topic.clone()),
            // The local broker's first group join takes about half the session timeout.
            ("--session-timeout-ms", "6000".to_string()),
        ]);
        self.launcher_args
            .iter()
            .cloned()
            .chain(args.into_iter().flat_map(|(k, v)| [k.to_string(), v]))
            .collect()
    }
}

/// A running server (`ks-server`, `as-server` or the Kafka Streams peer). Killed on drop if not
/// stopped.
pub struct ServerProcess {
    child: Child,
    pub http_addr: String,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts the server and waits until it is up: ks-server's "running" line, which it prints
    /// once the engine has started (global stores bootstrapped, so a model published now is
    /// seen); as-server's "listening" line, then `/health` answering 200 (its models consumer
    /// reads from the beginning or a fresh group at `earliest`, so a model published now is seen).
    pub fn start(spec: &ServerSpec) -> Result<ServerProcess> {
        let stderr = File::create(&spec.log)
            .with_context(|| format!("cannot create {}", spec.log.display()))?;
        let mut stdout_log = stderr.try_clone()?;
        let mut child = Command::new(&spec.binary)
            .args(spec.args())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("cannot start {}", spec.binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from {}", spec.kind.binary_name()))?;
        let (tx, rx) = mpsc::channel::<String>();
        let kind = spec.kind.clone();
        // Drains stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = writeln!(stdout_log, "{line}");
                if kind.is_ready_line(&line) {
                    let _ = tx.send(line);
                }
            }
        });
        let mut server = ServerProcess {
            child,
            http_addr: String::new(),
            log: spec.log.clone(),
        };
        let name = spec.kind.binary_name();
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                server.http_addr = match spec.kind {
                    ServerKind::KStreams => "none".into(),
                    _ => http_addr_of(&line).unwrap_or_else(|| format!("127.0.0.1:{}", spec.port)),
                };
            }
            Err(_) => bail!(
                "{name} did not report running within 120 s ({}); log: {}",
                server.exit_status().unwrap_or_else(|| "still up".into()),
                spec.log.display()
            ),
        }
        if matches!(spec.kind, ServerKind::AsServer(_)) {
            server.wait_healthy(Duration::from_secs(60))?;
        }
        Ok(server)
    }

    /// Polls `GET /health` until it answers 200.
    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut client = crate::http::Client::new(&self.http_addr);
        loop {
            if matches!(client.get("/health"), Ok(200)) {
                return Ok(());
            }
            if let Some(status) = self.exit_status() {
                bail!("server exited ({status}); log: {}", self.log.display());
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "no 200 from http://{}/health within {} s; log: {}",
                    self.http_addr,
                    timeout.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the server has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Peak resident set of the server so far (VmHWM), MiB. Read before stopping it: an exited
    /// process has no memory figures.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        vm_hwm_kib(&status).map(|kib| kib as f64 / 1024.0)
    }

    /// CPU time (user + system) the server has used so far, seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(&self.pid().to_string())
    }

    /// SIGTERM (the server commits and closes), SIGKILL if it is not gone in 15 s.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..150 {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `host:port` in ks-server's "running: http://HOST:PORT/state/value ..." line or
/// as-server's "listening on http://HOST:PORT" line.
pub fn http_addr_of(line: &str) -> Option<String> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let end = rest
        .find(|c: char| c == '/' || c.is_whitespace())
        .unwrap_or(rest.len());
    let addr = &rest[..end];
    (!addr.is_empty()).then(|| addr.to_string())
}

/// CPU time (user + system) of process `pid` (or `self`) so far, seconds.
pub fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    cpu_ticks(&stat).map(|t| t as f64 / ticks.max(1) as f64)
}

/// The local tansu broker serving `bootstrap` (a process whose command line names tansu and
/// the address), so its CPU can be reported next to the server's. `None` for a remote broker.
pub fn find_broker_pid(bootstrap: &str) -> Option<String> {
    let addr = bootstrap.split(',').next()?.trim();
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{name}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        let mut args = cmdline.split('\0');
        let is_tansu = args.next().is_some_and(|a| a.ends_with("tansu"));
        (is_tansu && args.any(|a| a.contains(addr))).then_some(name)
    })
}

/// utime + stime (clock ticks) of a `/proc/<pid>/stat` line. Fields are counted after the
/// command name's closing parenthesis, since the name itself may hold spaces.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3 of the line, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `perf record` attached to one process until [`Profiler::stop`].
pub struct Profiler {
    child: Child,
}

impl Profiler {
    /// Samples `pid` at 999 Hz into `out` (flat profile: the release build has no frame
    /// pointers, and DWARF call graphs would be too heavy for a two-core machine).
    pub fn attach(pid: u32, out: &Path) -> Result<Profiler> {
        let child = Command::new("perf")
            .args(["record", "-q", "-F", "999", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run perf (install linux-perf)")?;
        Ok(Profiler { child })
    }

    /// SIGINT makes perf write its data and exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `VmHWM:` figure (kB) of a `/proc/<pid>/status` text.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `args` carries every flag of `present` (with its value) and none of `absent`.
    fn assert_flags(args: &[String], present: &[&str], absent: &[&str]) {
        let joined = args.join(" ");
        for flag in present {
            assert!(joined.contains(flag), "{flag} in {joined}");
        }
        for flag in absent {
            assert!(!args.iter().any(|a| a == flag), "{flag} in {joined}");
        }
    }

    #[test]
    fn reads_vm_hwm() {
        let status =
            "Name:\tks-server\nVmPeak:\t  900000 kB\nVmHWM:\t   41234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(41234));
        assert_eq!(vm_hwm_kib("Name: x\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_past_a_name_with_spaces() {
        let stat = "42 (ks server) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("42 (x) S 1"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&own).is_some());
    }

    #[test]
    fn own_peak_rss_is_readable() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_hwm_kib(&status).unwrap() > 0);
    }

    #[test]
    fn finds_the_http_address() {
        let line = "ks-server (memory) running: http://127.0.0.1:4321/state/value  http://127.0.0.1:4321/models";
        assert_eq!(http_addr_of(line).as_deref(), Some("127.0.0.1:4321"));
        assert_eq!(http_addr_of("nothing here"), None);
        let line = "as-server (Actor) listening on http://127.0.0.1:5501";
        assert_eq!(http_addr_of(line).as_deref(), Some("127.0.0.1:5501"));
        assert_eq!(http_addr_of("listening on http://"), None);
    }

    #[test]
    fn modes_choose_their_server() {
        assert_eq!(
            ServerKind::for_mode("standard"),
            Some(ServerKind::KsServer("standard".into()))
        );
        assert_eq!(
            ServerKind::for_mode("as-stage"),
            Some(ServerKind::AsServer("stage".into()))
        );
        assert_eq!(
            ServerKind::for_mode("as-actor"),
            Some(ServerKind::AsServer("actor".into()))
        );
        assert_eq!(ServerKind::for_mode("kstreams"), Some(ServerKind::KStreams));
        for mode in [
            "passthrough",
            "state_value",
            "steady",
            "as-turbo",
            "kafka-streams",
        ] {
            assert_eq!(ServerKind::for_mode(mode), None, "{mode}");
        }
        assert_eq!(
            ServerKind::AsServer("stage".into()).binary_name(),
            "as-server"
        );
        assert_eq!(
            ServerKind::KsServer("memory".into()).binary_name(),
            "ks-server"
        );
    }

    #[test]
    fn ready_lines_differ_per_server() {
        let ks = ServerKind::KsServer("memory".into());
        let r#as = ServerKind::AsServer("stage".into());
        let running = "ks-server (memory) running: http://127.0.0.1:1/state/value";
        let listening = "as-server (Stage) listening on http://127.0.0.1:1";
        assert!(ks.is_ready_line(running) && !ks.is_ready_line(listening));
        assert!(r#as.is_ready_line(listening) && !r#as.is_ready_line(running));
    }

    #[test]
    fn as_server_args_use_its_flags() {
        let spec = ServerSpec {
            binary: "as-server".into(),
            launcher_args: Vec::new(),
            kind: ServerKind::AsServer("actor".into()),
            brokers: "127.0.0.1:1".into(),
            application_id: "grp".into(),
            port: 0,
            state_dir: "/tmp/s".into(),
            data_topic: "d".into(),
            models_topic: "m".into(),
            results_topic: "r".into(),
            errors_topic: "e".into(),
            threads: 2,
            log: "/tmp/l".into(),
        };
        let args = spec.args();
        assert!(args.join(" ").starts_with("--mode actor --group-id grp "));
        assert_flags(
            &args,
            &[
                "--brokers 127.0.0.1:1",
                "--port 0",
                "--state-dir /tmp/s",
                "--data-topic d",
                "--models-topic m",
                "--results-topic r",
                "--errors-topic e",
                "--session-timeout-ms 6000",
            ],
            &["--store", "--application-id", "--threads"],
        );
    }

    #[test]
    fn args_pass_every_topic_and_the_short_session() {
        let spec = ServerSpec {
            binary: "ks-server".into(),
            launcher_args: Vec::new(),
            kind: ServerKind::KsServer("custom".into()),
            brokers: "127.0.0.1:1".into(),
            application_id: "app".into(),
            port: 7,
            state_dir: "/tmp/s".into(),
            data_topic: "d".into(),
            models_topic: "m".into(),
            results_topic: "r".into(),
            errors_topic: "e".into(),
            threads: 2,
            log: "/tmp/l".into(),
        };
        let args = spec.args().join(" ");
        assert!(args.contains("--store custom"));
        assert!(args.contains("--results-topic r"));
        assert!(args.contains("--threads 2"));
        assert!(args.contains("--session-timeout-ms 6000"));
    }

    #[test]
    fn kstreams_ready_line_is_the_peers_own() {
        let k = ServerKind::KStreams;
        let peer = "ks-kstreams-peer (standard) running: application.id=a threads=1";
        assert!(k.is_ready_line(peer));
        assert!(!k.is_ready_line("ks-server (standard) running: http://127.0.0.1:1/state/value"));
        assert!(!k.is_ready_line("[main] WARN ks-kstreams-peer is running: no"));
        assert_eq!(http_addr_of(peer), None);
    }

    #[test]
    fn kstreams_args_are_jvm_options_then_the_peers_flags() {
        let spec = ServerSpec {
            binary: "/usr/bin/java".into(),
            launcher_args: kstreams_launcher_args("/x/peer.jar:/x/libs/*", 256),
            kind: ServerKind::KStreams,
            brokers: "127.0.0.1:1".into(),
            application_id: "ksb-1-kstreams".into(),
            port: 7,
            state_dir: "/tmp/s".into(),
            data_topic: "d".into(),
            models_topic: "m".into(),
            results_topic: "r".into(),
            errors_topic: "e".into(),
            threads: 2,
            log: "/tmp/l".into(),
        };
        let args = spec.args();
        assert_eq!(
            args[..4],
            [
                "-Xmx256m",
                "-cp",
                "/x/peer.jar:/x/libs/*",
                KSTREAMS_MAIN_CLASS
            ]
        );
        assert_flags(
            &args,
            &[
                "--application-id ksb-1-kstreams",
                "--threads 2",
                "--brokers 127.0.0.1:1",
                "--state-dir /tmp/s",
                "--data-topic d",
                "--models-topic m",
                "--results-topic r",
                "--errors-topic e",
                "--session-timeout-ms 6000",
            ],
            &["--store", "--port", "--group-id"],
        );
    }

    #[test]
    fn the_build_scripts_last_line_is_the_classpath() {
        assert_eq!(
            last_line("resolving...\n/a.jar:/l/*\n\n"),
            Some("/a.jar:/l/*")
        );
        assert_eq!(last_line(" \n"), None);
        assert_eq!(
            kstreams_classpath(Some("/given.jar")).unwrap(),
            "/given.jar"
        );
        assert!(kstreams_build_script().ends_with("benches/peers/kafka-streams/build.sh"));
        assert!(kstreams_build_script().is_file());
        assert_eq!(
            java_binary(Some(Path::new("/opt/java"))),
            PathBuf::from("/opt/java")
        );
        assert!(java_binary(None).ends_with("java"));
    }
}
