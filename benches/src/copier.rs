//! The passthrough copier as a child process: `ks-bench --copy-from A --copy-to B` runs
//! [`crate::kafka::passthrough`] alone and prints what it used, so the copy's CPU and peak RSS
//! are its own and are measured as the servers' are (a process's CPU over its life), instead of
//! hiding in the harness's with the reader's.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let copier = ks_bench::copier::Copier::start("127.0.0.1:9092", "in", "out", 1000)?;
//! let report = copier.finish(std::time::Duration::from_secs(60))?;
//! println!("{} records, {:.2} s of CPU", report.copied, report.cpu_s);
//! # Ok(()) }
//! ```

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the copier process reports on its last stdout line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Records copied.
    pub copied: u64,
    /// The copier's CPU time (user + system) over its whole life, seconds.
    pub cpu_s: f64,
    /// Its peak resident set (VmHWM), MiB.
    pub rss_mb: Option<f64>,
}

impl CopyReport {
    /// The report of this process, after `copied` records: what the child prints.
    pub fn of_self(copied: u64) -> CopyReport {
        let rss_mb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| crate::server::vm_hwm_kib(&s))
            .map(|kib| kib as f64 / 1024.0);
        CopyReport {
            copied,
            cpu_s: crate::server::process_cpu_seconds("self").unwrap_or(f64::NAN),
            rss_mb,
        }
    }

    /// The report in the copier's last non-empty stdout line.
    pub fn parse(stdout: &str) -> Result<CopyReport> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| anyhow!("the copier printed nothing"))?;
        serde_json::from_str(line).with_context(|| format!("the copier's report {line:?}"))
    }
}

/// A running copier process.
pub struct Copier {
    child: Child,
}

impl Copier {
    /// Starts `ks-bench --copy-from from --copy-to to --copy-expected expected` (this very
    /// executable), its stderr going to ours.
    pub fn start(brokers: &str, from: &str, to: &str, expected: u64) -> Result<Copier> {
        let exe = std::env::current_exe().context("cannot locate ks-bench itself")?;
        let child = Command::new(exe)
            .args(["--brokers", brokers, "--copy-from", from, "--copy-to", to])
            .args(["--copy-expected", &expected.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the passthrough copier")?;
        Ok(Copier { child })
    }

    /// Whether the copier has exited.
    pub fn is_finished(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the copier to finish and returns its report; kills it and
    /// fails past the timeout or when it fails.
    pub fn finish(mut self, timeout: Duration) -> Result<CopyReport> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the passthrough copier did not finish within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_string(&mut out)?;
        }
        if !status.success() {
            bail!("the passthrough copier failed ({status})");
        }
        CopyReport::parse(&out)
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child's side: copy, then print the report as one JSON line.
pub fn run_child(brokers: &str, from: &str, to: &str, expected: u64) -> Result<()> {
    let copied = crate::kafka::passthrough(brokers, from, to, expected)?;
    println!("{}", serde_json::to_string(&CopyReport::of_self(copied))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_the_last_line() {
        let r =
            CopyReport::parse("noise\n{\"copied\":5,\"cpu_s\":0.5,\"rss_mb\":12.0}\n\n").unwrap();
        assert_eq!(r.copied, 5);
        assert_eq!(r.rss_mb, Some(12.0));
        assert!(CopyReport::parse("").is_err());
        assert!(CopyReport::parse("copied 5").is_err());
    }

    #[test]
    fn own_report_has_cpu_and_memory() {
        let r = CopyReport::of_self(3);
        assert_eq!(r.copied, 3);
        assert!(r.cpu_s >= 0.0);
        assert!(r.rss_mb.is_some_and(|m| m > 0.0));
        let back = CopyReport::parse(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.copied, 3);
    }
}
