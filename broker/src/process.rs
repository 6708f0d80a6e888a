//! One broker process: spawn with its output in a log file, wait until it is ready, stop it
//! gracefully (SIGTERM, then SIGKILL after a grace period) or kill it outright.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process of ours that is killed if the thread that started it dies.
#[derive(Debug)]
pub(crate) struct Process {
    child: Option<Child>,
    log: PathBuf,
    what: String,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut cmd: Command, log: &Path, what: &str) -> Result<Process> {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
        };
        let spawn_err = |source| Error::Spawn {
            what: what.to_string(),
            log: log.to_path_buf(),
            source,
        };
        let out = open().map_err(spawn_err)?;
        let err = open().map_err(spawn_err)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        kill_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(spawn_err)?;
        Ok(Process {
            child: Some(child),
            log: log.to_path_buf(),
            what: what.to_string(),
        })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (reaping it if it has exited).
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Polls `ready` until it holds, failing if the process exits or `timeout` passes.
    pub(crate) fn wait_ready(
        &mut self,
        address: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(Error::Exited {
                        what: self.what.clone(),
                        address: address.to_string(),
                        status: status.to_string(),
                        log: self.log.clone(),
                    });
                }
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(Error::NotReady {
                    what: self.what.clone(),
                    address: address.to_string(),
                    seconds: timeout.as_secs(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then SIGKILL if the process has not exited after `grace`.
    pub(crate) fn terminate(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Blocks until the process exits.
    pub(crate) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self.child.take() {
            Some(mut child) => child.wait(),
            None => Err(std::io::Error::other(format!(
                "{} is not running",
                self.what
            ))),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
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
