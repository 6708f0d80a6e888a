//! `ks-server`: the streaming model server (memory, standard or custom variant).

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use ks_engine::ProcessingGuarantee;
use ks_kafka::Settings;
use ks_topologies::server::{Server, ServerConfig};
use ks_topologies::topology::{StoreVariant, Topics};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ks-server",
    version,
    about = "Serves PMML and TensorFlow models on a stream of records, swapping models as they arrive",
    long_about = "Reads records from the data topic and models from the model topic (every instance \
                  reads every model), scores each record with its data type's current model and \
                  writes results to the results topic; bad records and bad models go to the errors \
                  topic. Instances with the same --application-id share the data partitions. \
                  Serving statistics are queryable over HTTP: /state/value[/{dataType}], \
                  /state/instances, /models, /models/{dataType}/versions|challenger|drift, /health, /metrics. \
                  Model-topic headers: ks.role=challenger scores a model in shadow; \
                  ks.action=rollback|promote acts on a data type's models."
)]
struct Cli {
    /// A properties file with Kafka Streams' names (application.id, bootstrap.servers,
    /// num.stream.threads, processing.guarantee, state.dir, commit.interval.ms,
    /// session.timeout.ms, num.standby.replicas, cache.max.bytes.buffering), ks's own
    /// (ks.store, ks.http.host, ks.http.port, ks.topic.{data,models,results,errors}) and client
    /// properties passed through to librdkafka: plain ones (security.protocol, sasl.*, ssl.*)
    /// to every client, consumer.*, producer.* and admin.* to that kind. Flags and environment
    /// override the file; an unknown key is an error.
    #[arg(long, env = "KS_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as `text` or `json` (one object a line: ts, level, target, msg, and `task`
    /// on every line of a task's work).
    #[arg(long, env = "KS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Where serving state lives: memory (Processor API, lost on restart), standard (DSL,
    /// RocksDB + changelog) or custom (DSL, custom file store + changelog).
    #[arg(long, env = "KS_STORE", default_value = "standard")]
    store: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KS_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// The consumer group and prefix of internal topics and state (default ks-model-server-<store>).
    #[arg(long, env = "KS_APPLICATION_ID")]
    application_id: Option<String>,
    /// HTTP host to bind and advertise to other instances.
    #[arg(long, env = "KS_HOST", default_value = "127.0.0.1")]
    host: String,
    /// HTTP port.
    #[arg(long, env = "KS_PORT", default_value_t = 8888)]
    port: u16,
    /// Where persistent stores and checkpoints live.
    #[arg(long, env = "KS_STATE_DIR", default_value = "/tmp/ks-server")]
    state_dir: PathBuf,
    #[arg(long, env = "KS_DATA_TOPIC", default_value = "models_data")]
    data_topic: String,
    #[arg(long, env = "KS_MODELS_TOPIC", default_value = "models_models")]
    models_topic: String,
    #[arg(long, env = "KS_RESULTS_TOPIC", default_value = "models_results")]
    results_topic: String,
    #[arg(long, env = "KS_ERRORS_TOPIC", default_value = "models_errors")]
    errors_topic: String,
    /// at_least_once or exactly_once.
    #[arg(long, env = "KS_PROCESSING_GUARANTEE", default_value = "at_least_once")]
    processing_guarantee: String,
    /// Stream threads.
    #[arg(long, env = "KS_THREADS", default_value_t = 1)]
    threads: usize,
    /// Niceness of the stream threads and their Kafka clients' threads (Linux): above 0 the
    /// processing yields a busy machine's cores to HTTP queries first. File key
    /// ks.stream.thread.nice.
    #[arg(long, env = "KS_STREAM_THREAD_NICE", default_value_t = 0)]
    stream_thread_nice: i32,
    /// Commit interval in ms (default: 30000 at-least-once, 100 exactly-once).
    #[arg(long, env = "KS_COMMIT_INTERVAL_MS")]
    commit_interval_ms: Option<u64>,
    /// Required (as `Authorization: Bearer TOKEN`) on every state-changing HTTP request, and on
    /// reads with --guard-reads. File key ks.admin.token.
    #[arg(long, env = "KS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Require the admin token on reads too (all but /health). File key ks.http.guard.reads.
    #[arg(long, env = "KS_GUARD_READS")]
    guard_reads: bool,
    /// Largest HTTP request body accepted, bytes. File key ks.http.max.request.bytes.
    #[arg(long, env = "KS_MAX_REQUEST_BYTES", default_value_t = ks_topologies::http::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: u64,
    /// HTTP requests a second the API accepts (429 beyond); 0: no limit. File key
    /// ks.http.rate.limit.
    #[arg(long, env = "KS_RATE_LIMIT", default_value_t = 0)]
    rate_limit: u32,
    /// Serve the HTTP API over TLS with this PEM certificate chain (with --tls-key). File key
    /// ks.http.tls.cert.
    #[arg(long, env = "KS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert. File key ks.http.tls.key.
    #[arg(long, env = "KS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates the other instances' certificates are checked against when a query is
    /// forwarded (default: --tls-cert itself, every instance serving the same one). File key
    /// ks.http.tls.ca.
    #[arg(long, env = "KS_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// Consumer group session timeout in ms.
    #[arg(long, env = "KS_SESSION_TIMEOUT_MS", default_value_t = 10000)]
    session_timeout_ms: u64,
    /// Warm standby copies of each task kept on other instances (`num.standby.replicas`).
    #[arg(long, env = "KS_NUM_STANDBY_REPLICAS")]
    num_standby_replicas: Option<usize>,
    /// Model versions kept per data type for rollback (the serving one included). File key
    /// ks.models.keep.versions.
    #[arg(long, env = "KS_KEEP_VERSIONS", default_value_t = ks_serving::registry::DEFAULT_KEEP_VERSIONS)]
    keep_versions: usize,
    /// Promote a challenger automatically after this many compared records when it agrees
    /// enough (0: only on a promote message). File key ks.promote.after.records.
    #[arg(long, env = "KS_PROMOTE_AFTER", default_value_t = 0)]
    promote_after: u64,
    /// Least share of equal labels for an automatic promotion (classification). File key
    /// ks.promote.min.agreement.
    #[arg(long, env = "KS_PROMOTE_MIN_AGREEMENT", default_value_t = 0.95)]
    promote_min_agreement: f64,
    /// Largest mean absolute difference for an automatic promotion (regression). File key
    /// ks.promote.max.mean.abs.diff.
    #[arg(long, env = "KS_PROMOTE_MAX_MEAN_ABS_DIFF", default_value_t = 0.1)]
    promote_max_mean_abs_diff: f64,
    /// Records in the drift baseline (the first ones after a model is installed). File key
    /// ks.drift.baseline.
    #[arg(long, env = "KS_DRIFT_BASELINE", default_value_t = 1000)]
    drift_baseline: usize,
    /// Records in the drift window (the latest ones). File key ks.drift.window.
    #[arg(long, env = "KS_DRIFT_WINDOW", default_value_t = 1000)]
    drift_window: usize,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let format = match matches.get_one::<String>("log_format").map(String::as_str) {
        Some("json") => ks_logging::LogFormat::Json,
        _ => ks_logging::LogFormat::Text,
    };
    if let Err(e) = ks_logging::init(format, "info,librdkafka=warn,rdkafka=warn") {
        eprintln!("ks-server: {e}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The properties-file keys ks-server reads itself; any other key goes to the Kafka clients.
const OWN_KEYS: &[&str] = &[
    "application.id",
    "bootstrap.servers",
    "num.stream.threads",
    "ks.stream.thread.nice",
    "processing.guarantee",
    "state.dir",
    "commit.interval.ms",
    "log.summary.interval.ms",
    "session.timeout.ms",
    "max.poll.records",
    "num.standby.replicas",
    "cache.max.bytes.buffering",
    "ks.store",
    "ks.http.host",
    "ks.http.port",
    "ks.topic.data",
    "ks.topic.models",
    "ks.topic.results",
    "ks.topic.errors",
    "ks.admin.token",
    "ks.http.guard.reads",
    "ks.http.max.request.bytes",
    "ks.http.rate.limit",
    "ks.http.tls.cert",
    "ks.http.tls.key",
    "ks.http.tls.ca",
    "ks.models.keep.versions",
    "ks.promote.after.records",
    "ks.promote.min.agreement",
    "ks.promote.max.mean.abs.diff",
    "ks.drift.baseline",
    "ks.drift.window",
];

fn run(mut cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    let settings = match &cli.config {
        Some(path) => Settings::load(path, OWN_KEYS)?,
        None => Settings::default(),
    };
    settings.fill(matches, "store", "ks.store", &mut cli.store)?;
    settings.fill(matches, "brokers", "bootstrap.servers", &mut cli.brokers)?;
    let mut app_id = cli.application_id.clone().unwrap_or_default();
    settings.fill(matches, "application_id", "application.id", &mut app_id)?;
    cli.application_id = (!app_id.is_empty()).then_some(app_id);
    settings.fill(matches, "host", "ks.http.host", &mut cli.host)?;
    settings.fill(matches, "port", "ks.http.port", &mut cli.port)?;
    settings.fill(matches, "state_dir", "state.dir", &mut cli.state_dir)?;
    settings.fill(matches, "data_topic", "ks.topic.data", &mut cli.data_topic)?;
    settings.fill(
        matches,
        "models_topic",
        "ks.topic.models",
        &mut cli.models_topic,
    )?;
    settings.fill(
        matches,
        "results_topic",
        "ks.topic.results",
        &mut cli.results_topic,
    )?;
    settings.fill(
        matches,
        "errors_topic",
        "ks.topic.errors",
        &mut cli.errors_topic,
    )?;
    settings.fill(
        matches,
        "processing_guarantee",
        "processing.guarantee",
        &mut cli.processing_guarantee,
    )?;
    settings.fill(matches, "threads", "num.stream.threads", &mut cli.threads)?;
    settings.fill(
        matches,
        "stream_thread_nice",
        "ks.stream.thread.nice",
        &mut cli.stream_thread_nice,
    )?;
    let mut commit = cli.commit_interval_ms.unwrap_or(0);
    settings.fill(
        matches,
        "commit_interval_ms",
        "commit.interval.ms",
        &mut commit,
    )?;
    cli.commit_interval_ms = (commit > 0).then_some(commit);
    if cli.admin_token.is_none() {
        cli.admin_token = settings.get::<String>("ks.admin.token")?;
    }
    for (field, key) in [
        (&mut cli.tls_cert, "ks.http.tls.cert"),
        (&mut cli.tls_key, "ks.http.tls.key"),
        (&mut cli.tls_ca, "ks.http.tls.ca"),
    ] {
        if field.is_none() {
            *field = settings.get::<String>(key)?.map(PathBuf::from);
        }
    }
    settings.fill(
        matches,
        "guard_reads",
        "ks.http.guard.reads",
        &mut cli.guard_reads,
    )?;
    settings.fill(
        matches,
        "max_request_bytes",
        "ks.http.max.request.bytes",
        &mut cli.max_request_bytes,
    )?;
    settings.fill(
        matches,
        "rate_limit",
        "ks.http.rate.limit",
        &mut cli.rate_limit,
    )?;
    settings.fill(
        matches,
        "session_timeout_ms",
        "session.timeout.ms",
        &mut cli.session_timeout_ms,
    )?;
    settings.fill(
        matches,
        "keep_versions",
        "ks.models.keep.versions",
        &mut cli.keep_versions,
    )?;
    settings.fill(
        matches,
        "promote_after",
        "ks.promote.after.records",
        &mut cli.promote_after,
    )?;
    settings.fill(
        matches,
        "promote_min_agreement",
        "ks.promote.min.agreement",
        &mut cli.promote_min_agreement,
    )?;
    settings.fill(
        matches,
        "promote_max_mean_abs_diff",
        "ks.promote.max.mean.abs.diff",
        &mut cli.promote_max_mean_abs_diff,
    )?;
    settings.fill(
        matches,
        "drift_baseline",
        "ks.drift.baseline",
        &mut cli.drift_baseline,
    )?;
    settings.fill(
        matches,
        "drift_window",
        "ks.drift.window",
        &mut cli.drift_window,
    )?;
    if cli.keep_versions == 0 {
        anyhow::bail!("--keep-versions must be at least 1 (the serving version)");
    }
    if cli.drift_baseline == 0 || cli.drift_window == 0 {
        anyhow::bail!("--drift-baseline and --drift-window must be at least 1");
    }
    if !(0.0..=1.0).contains(&cli.promote_min_agreement) {
        anyhow::bail!(
            "--promote-min-agreement {} is not a share between 0 and 1",
            cli.promote_min_agreement
        );
    }
    if cli.promote_max_mean_abs_diff.is_nan() || cli.promote_max_mean_abs_diff < 0.0 {
        anyhow::bail!(
            "--promote-max-mean-abs-diff {} must be a number at least 0",
            cli.promote_max_mean_abs_diff
        );
    }
    let store: StoreVariant = cli.store.parse()?;
    let guarantee: ProcessingGuarantee = cli.processing_guarantee.parse()?;
    let mut config = ServerConfig::new(store, &cli.brokers);
    if let Some(id) = cli.application_id {
        config.application_id = id;
    }
    config.host = cli.host;
    config.port = cli.port;
    config.state_dir = cli.state_dir;
    config.topics = Topics {
        data: cli.data_topic,
        models: cli.models_topic,
        results: cli.results_topic,
        errors: cli.errors_topic,
    };
    config.processing_guarantee = guarantee;
    config.threads = cli.threads;
    config.stream_thread_nice = cli.stream_thread_nice;
    config.commit_interval = cli.commit_interval_ms.map(Duration::from_millis);
    if let Some(ms) = settings.get::<u64>("log.summary.interval.ms")? {
        config.log_summary_interval = Some(Duration::from_millis(ms.max(1)));
    }
    config.session_timeout = Duration::from_millis(cli.session_timeout_ms);
    config.max_poll_records = settings.get::<usize>("max.poll.records")?;
    config.client_properties = settings.clients.clone();
    config.http = ks_topologies::http::HttpOptions {
        admin_token: cli.admin_token.filter(|t| !t.is_empty()),
        guard_reads: cli.guard_reads,
        max_request_bytes: cli.max_request_bytes,
        rate_limit_per_s: (cli.rate_limit > 0).then_some(cli.rate_limit),
        tls: match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(ks_topologies::http::HttpTls::from_pem_files(
                cert,
                key,
                cli.tls_ca.as_deref(),
            )?),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert, --tls-key)"),
        },
    };
    if config.http.guard_reads && config.http.admin_token.is_none() {
        anyhow::bail!("--guard-reads needs --admin-token (or ks.admin.token)");
    }
    // The flag (or its environment variable) wins over the file's key.
    config.num_standby_replicas = match cli.num_standby_replicas {
        Some(n) => n,
        None => settings
            .get::<u32>("num.standby.replicas")?
            .map_or(0, |n| n as usize),
    };
    config.cache_max_bytes_buffering = settings.get::<u64>("cache.max.bytes.buffering")?;
    config.lifecycle = ks_serving::LifecycleOptions {
        keep_versions: cli.keep_versions,
        promote_policy: (cli.promote_after > 0).then_some(ks_serving::challenger::PromotePolicy {
            after_records: cli.promote_after,
            min_agreement: cli.promote_min_agreement,
            max_mean_abs_diff: cli.promote_max_mean_abs_diff,
        }),
        drift: ks_serving::drift::DriftOptions {
            baseline: cli.drift_baseline,
            window: cli.drift_window,
        },
    };
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let scheme = if config.http.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = Server::start(config).context("cannot start")?;
    println!(
        "ks-server ({store}) running: {scheme}://{addr}/state/value  {scheme}://{addr}/state/instances  {scheme}://{addr}/models",
        store = store.as_str(),
        addr = server.http_addr()
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        let failed =
            server.with_streams(|s| matches!(s.state(), ks_engine::StreamsState::Error(_)));
        if failed == Some(true) {
            let state = server.with_streams(|s| s.state());
            server.shutdown().ok();
            anyhow::bail!("the engine stopped: {state:?}");
        }
    }
    println!("ks-server: stopping");
    server.shutdown()?;
    Ok(())
}
