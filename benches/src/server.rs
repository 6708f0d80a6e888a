//! `ks-server` as a child process, so its peak RSS is its own and not the harness's.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the release `ks-server` is: `--server-bin`, else next to this executable (the README's
/// command builds both into the same target directory).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot locate the ks-bench executable")?;
    let candidate = exe.with_file_name("ks-server");
    if candidate.is_file() {
        Ok(candidate)
    } else {
        bail!(
            "no ks-server next to {} (build both: cargo build --release -p ks-bench -p ks-topologies, \
             or pass --server-bin)",
            exe.display()
        )
    }
}

/// How to start one server.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub binary: PathBuf,
    pub store: String,
    pub brokers: String,
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
        [
            ("--store", self.store.clone()),
            ("--brokers", self.brokers.clone()),
            ("--application-id", self.application_id.clone()),
            ("--port", self.port.to_string()),
            ("--state-dir", self.state_dir.display().to_string()),
            ("--data-topic", self.data_topic.clone()),
            ("--models-topic", self.models_topic.clone()),
            ("--results-topic", self.results_topic.clone()),
            ("--errors-topic", self.errors_topic.clone()),
            ("--threads", self.threads.to_string()),
            // The local broker's first group join takes about half the session timeout.
            ("--session-timeout-ms", "6000".to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }
}

/// A running `ks-server`. Killed on drop if not stopped.
pub struct ServerProcess {
    child: Child,
    pub http_addr: String,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts the server and waits for its "running" line, which it prints once the engine has
    /// started (global stores bootstrapped, so a model published now is seen).
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
            .ok_or_else(|| anyhow!("no stdout from ks-server"))?;
        let (tx, rx) = mpsc::channel::<String>();
        // Drains stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = writeln!(stdout_log, "{line}");
                if line.contains(" running: ") {
                    let _ = tx.send(line);
                }
            }
        });
        let mut server = ServerProcess {
            child,
            http_addr: String::new(),
            log: spec.log.clone(),
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                server.http_addr =
                    http_addr_of(&line).unwrap_or_else(|| format!("127.0.0.1:{}", spec.port));
                Ok(server)
            }
            Err(_) => bail!(
                "ks-server did not report running within 120 s ({}); log: {}",
                server.exit_status().unwrap_or_else(|| "still up".into()),
                spec.log.display()
            ),
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

/// The `host:port` in the server's "running: http://HOST:PORT/state/value ..." line.
pub fn http_addr_of(line: &str) -> Option<String> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let addr = &rest[..rest.find('/')?];
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
    }

    #[test]
    fn args_pass_every_topic_and_the_short_session() {
        let spec = ServerSpec {
            binary: "ks-server".into(),
            store: "custom".into(),
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
}
