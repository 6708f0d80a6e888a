//! Command line of `ks-bench`.

use anyhow::{bail, Result};
use clap::Parser;
use std::path::PathBuf;

/// The modes, in the order they run (passthrough first: the others are relative to it).
pub const ALL_MODES: [&str; 11] = [
    "passthrough",
    "memory",
    "standard",
    "custom",
    "kstreams",
    "as-stage",
    "as-actor",
    "state_value",
    "steady_passthrough",
    "steady",
    "swap",
];

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ks-bench",
    version,
    about = "End-to-end throughput, latency and memory of ks-server against the broker's own limit",
    long_about = "Preloads --records wine records into a 4-partition data topic, then measures, one \
                  JSON line per mode on stdout: passthrough (a bare consumer->producer copy: the \
                  broker's practical limit), memory/standard/custom (ks-server scoring the same \
                  records from offset 0), kstreams (the same job on Apache Kafka Streams: the Java \
                  peer in benches/peers/kafka-streams, built on first use), as-stage/as-actor (as-server --mode stage|actor scoring the \
                  same records from offset 0), state_value (/state/value latency under HTTP load while \
                  the server scores at full rate) and steady_passthrough/steady (end-to-end latency \
                  of a copy and of the server at a fixed input rate), swap (ks-server scoring a backlog at full \
                  rate while a new model is published every second of alternate phases: records/s \
                  during swaps over records/s in the steady phases between them). Needs the release ks-server \
                  and as-server next to this binary (or --server-bin, --as-server-bin)."
)]
pub struct Options {
    /// Kafka bootstrap servers; without it a local broker is started for the run.
    #[arg(long, env = "KS_BROKERS")]
    pub brokers: Option<String>,
    /// The local broker started without --brokers: tansu (in-memory, milliseconds to start) or
    /// kafka (Apache Kafka 4.1.1, KRaft, the project's install).
    #[arg(long, default_value = "tansu")]
    pub broker: String,
    /// Records to preload into the data topic.
    #[arg(long, default_value_t = 500_000)]
    pub records: u64,
    /// The model to serve: a PMML file or the TensorFlow graph (.pb).
    /// Default: the decision-tree regression in the checkout's data/.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Comma-separated modes to run (of passthrough, memory, standard, custom, kstreams,
    /// as-stage, as-actor, state_value, steady_passthrough, steady, swap).
    #[arg(long, value_delimiter = ',', default_values_t = ALL_MODES.map(String::from))]
    pub modes: Vec<String>,
    /// The ks-server binary (default: next to this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// The as-server binary of as-stage/as-actor (default: next to this executable).
    #[arg(long)]
    pub as_server_bin: Option<PathBuf>,
    /// The classpath of the Kafka Streams peer (kstreams). Default: what
    /// benches/peers/kafka-streams/build.sh builds (and prints), run before the first mode.
    #[arg(long)]
    pub kstreams_classpath: Option<String>,
    /// The java of the Kafka Streams peer (default: $JAVA_HOME/bin/java, else java on PATH).
    #[arg(long)]
    pub java: Option<PathBuf>,
    /// Maximum heap of the Kafka Streams peer's JVM (-Xmx), MiB.
    #[arg(long, default_value_t = 256)]
    pub kstreams_heap_mb: u32,
    /// The directory with winequality_red.csv (default: the checkout's data/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The records' dataType.
    #[arg(long, default_value = "wine")]
    pub data_type: String,
    /// Stream threads of each server (ks-server --threads).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Store of the server under HTTP load (state_value).
    #[arg(long, default_value = "standard")]
    pub http_store: String,
    /// Concurrent HTTP clients (keep-alive connections) in state_value.
    #[arg(long, default_value_t = 4)]
    pub http_clients: usize,
    /// Total /state/value requests per second in state_value (0: each client back to back).
    #[arg(long, default_value_t = 1000.0)]
    pub http_rate: f64,
    /// Store of the server in steady.
    #[arg(long, default_value = "standard")]
    pub steady_store: String,
    /// Input rate (records/s) in steady.
    #[arg(long, default_value_t = 2000)]
    pub steady_rate: u64,
    /// Duration of the steady input, seconds.
    #[arg(long, default_value_t = 10)]
    pub steady_seconds: u64,
    /// Store of the server in swap.
    #[arg(long, default_value = "standard")]
    pub swap_store: String,
    /// Records of swap's own backlog (it needs several phase pairs at full rate: ~150k records/s
    /// on two cores).
    #[arg(long, default_value_t = 2_000_000)]
    pub swap_records: u64,
    /// Length of each steady and each swapping phase of swap, whole seconds (a swapping phase
    /// publishes a model at each of its seconds).
    #[arg(long, default_value_t = 2)]
    pub swap_phase_s: u64,
    /// Give up on a mode after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// Profile each server with `perf record` into this directory (<mode>.perf.data).
    #[arg(long)]
    pub perf: Option<PathBuf>,
    /// Keep the servers' logs and state directories (always kept when a mode fails).
    #[arg(long)]
    pub keep: bool,
    /// Run the selected modes this many times, interleaved (every mode once, then again), and
    /// print a summary line per mode: median, smallest and largest of each figure.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Internal: run only the passthrough copier from this topic (a child of ks-bench, so its
    /// CPU and memory are its own) and print its report.
    #[arg(long, hide = true, requires_all = ["copy_to", "copy_expected", "brokers"])]
    pub copy_from: Option<String>,
    /// Internal: the copier's output topic.
    #[arg(long, hide = true)]
    pub copy_to: Option<String>,
    /// Internal: the records the copier copies before it stops.
    #[arg(long, hide = true)]
    pub copy_expected: Option<u64>,
}

impl Options {
    /// Validates the options and returns the modes to run, in run order.
    pub fn modes(&self) -> Result<Vec<&'static str>> {
        for m in &self.modes {
            if !ALL_MODES.contains(&m.as_str()) {
                bail!("unknown mode {m:?} (modes: {})", ALL_MODES.join(", "));
            }
        }
        if self.records == 0 {
            bail!("--records must be at least 1");
        }
        for store in [&self.http_store, &self.steady_store, &self.swap_store] {
            if !["memory", "standard", "custom"].contains(&store.as_str()) {
                bail!("unknown store {store:?} (memory, standard or custom)");
            }
        }
        if !["tansu", "kafka"].contains(&self.broker.as_str()) {
            bail!("unknown broker {:?} (tansu or kafka)", self.broker);
        }
        if self.brokers.is_some() && self.broker != "tansu" {
            bail!("--broker starts a local broker; it cannot go with --brokers");
        }
        if self.kstreams_heap_mb < 64 {
            bail!("--kstreams-heap-mb must be at least 64");
        }
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        if self.swap_records == 0 || self.swap_phase_s == 0 {
            bail!("--swap-records and --swap-phase-s must be at least 1");
        }
        if !self.http_rate.is_finite() || self.http_rate < 0.0 {
            bail!("--http-rate must be a rate >= 0");
        }
        if self.steady_rate == 0 || self.steady_seconds == 0 {
            bail!("--steady-rate and --steady-seconds must be at least 1");
        }
        Ok(ALL_MODES
            .into_iter()
            .filter(|m| self.modes.iter().any(|x| x == m))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("ks-bench").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_run_every_mode_on_500k_records() {
        let o = parse(&[]);
        assert_eq!(o.records, 500_000);
        assert_eq!(o.modes().unwrap(), ALL_MODES.to_vec());
        assert!(o.brokers.is_none() || std::env::var("KS_BROKERS").is_ok());
    }

    #[test]
    fn modes_run_in_canonical_order() {
        let o = parse(&["--records", "20000", "--modes", "custom,passthrough"]);
        assert_eq!(o.records, 20_000);
        assert_eq!(o.modes().unwrap(), vec!["passthrough", "custom"]);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--modes", "turbo"]).modes().is_err());
        assert!(parse(&["--records", "0"]).modes().is_err());
        assert!(parse(&["--http-store", "redis"]).modes().is_err());
        assert!(Options::try_parse_from(["ks-bench", "--records", "-5"]).is_err());
        assert!(parse(&["--modes", "as-turbo"]).modes().is_err());
        assert!(parse(&["--modes", "as_stage"]).modes().is_err());
        assert!(parse(&["--swap-phase-s", "0"]).modes().is_err());
        assert!(parse(&["--swap-store", "redis"]).modes().is_err());
    }

    #[test]
    fn kstreams_runs_after_the_stores_and_before_as_server() {
        let modes = parse(&[]).modes().unwrap();
        let at = |m: &str| modes.iter().position(|x| *x == m).unwrap();
        assert_eq!(at("kstreams"), at("custom") + 1);
        assert!(at("kstreams") < at("as-stage"));
        let o = parse(&["--modes", "kstreams,passthrough"]);
        assert_eq!(o.modes().unwrap(), vec!["passthrough", "kstreams"]);
        assert_eq!(parse(&["--broker", "kafka"]).broker, "kafka");
        assert_eq!(o.kstreams_heap_mb, 256);
        assert!(o.kstreams_classpath.is_none());
    }

    #[test]
    fn broker_choice_is_checked() {
        assert_eq!(parse(&[]).broker, "tansu");
        assert!(parse(&["--broker", "redpanda"]).modes().is_err());
        assert!(parse(&["--broker", "kafka", "--brokers", "127.0.0.1:9092"])
            .modes()
            .is_err());
        assert!(parse(&["--kstreams-heap-mb", "8"]).modes().is_err());
        let o = parse(&[
            "--kstreams-classpath",
            "/a.jar:/libs/*",
            "--java",
            "/opt/jdk/bin/java",
        ]);
        assert_eq!(o.kstreams_classpath.as_deref(), Some("/a.jar:/libs/*"));
        assert_eq!(
            o.java.as_deref(),
            Some(std::path::Path::new("/opt/jdk/bin/java"))
        );
    }

    #[test]
    fn repeat_and_the_copier_flags() {
        assert_eq!(parse(&[]).repeat, 1);
        assert_eq!(parse(&["--repeat", "3"]).repeat, 3);
        assert!(parse(&["--repeat", "0"]).modes().is_err());
        let o = parse(&[
            "--brokers",
            "b:1",
            "--copy-from",
            "a",
            "--copy-to",
            "c",
            "--copy-expected",
            "7",
        ]);
        assert_eq!(
            (
                o.copy_from.as_deref(),
                o.copy_to.as_deref(),
                o.copy_expected
            ),
            (Some("a"), Some("c"), Some(7))
        );
        assert!(Options::try_parse_from(["ks-bench", "--copy-from", "a"]).is_err());
    }

    #[test]
    fn as_server_modes_run_by_default_after_the_stores() {
        let modes = parse(&[]).modes().unwrap();
        let at = |m: &str| modes.iter().position(|x| *x == m).unwrap();
        assert!(at("custom") < at("as-stage"));
        assert!(at("as-stage") < at("as-actor"));
        assert!(at("as-actor") < at("state_value"));
    }

    #[test]
    fn as_server_modes_can_be_chosen_alone() {
        let o = parse(&[
            "--records",
            "100000",
            "--modes",
            "as-actor,standard,as-stage,passthrough",
            "--as-server-bin",
            "/opt/as-server",
        ]);
        assert_eq!(
            o.modes().unwrap(),
            vec!["passthrough", "standard", "as-stage", "as-actor"]
        );
        assert_eq!(
            o.as_server_bin.as_deref(),
            Some(std::path::Path::new("/opt/as-server"))
        );
        assert!(o.server_bin.is_none());
    }
}
