//! as-server: the tutorial's Akka Streams model servers (stage or actor mode) on tokio.

use anyhow::Context;
use clap::Parser;
use ks_reactive::server::{Config, Mode, Server};
use ks_serving::Topics;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "as-server",
    about = "Streaming model server: a custom stream stage (--mode stage) or a router with one actor per data type (--mode actor)"
)]
struct Args {
    /// A properties file: bootstrap.servers, session.timeout.ms, commit.interval.ms,
    /// state.dir, ks.group.id, ks.http.host, ks.http.port, ks.topic.{data,models,results,errors}
    /// and client properties passed through to librdkafka (security.protocol, sasl.*, ssl.*;
    /// consumer.*/producer.* for one kind). Flags override the file; an unknown key is an error.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log lines as `text` or `json` (one object a line: ts, level, target, msg).
    #[arg(long, env = "KS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[arg(long, value_enum, default_value = "stage")]
    mode: Mode,
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// HTTP port (0: any free port; the bound address is printed).
    #[arg(long, default_value_t = 5500)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Where actor mode keeps each actor's model and statistics.
    #[arg(long, default_value = "as-state")]
    state_dir: PathBuf,
    #[arg(long, default_value = "models_data")]
    data_topic: String,
    #[arg(long, default_value = "models_models")]
    models_topic: String,
    #[arg(long, default_value = "models_results")]
    results_topic: String,
    #[arg(long, default_value = "models_errors")]
    errors_topic: String,
    /// Consumer group of the data topic (actor mode reads models as `<group>-models`).
    #[arg(long, default_value = "as-server")]
    group_id: String,
    #[arg(long, default_value_t = 45000)]
    session_timeout_ms: u64,
    #[arg(long, default_value_t = 1000)]
    commit_interval_ms: u64,
    /// How long /state/{dataType} waits for an actor before answering 504.
    #[arg(long, default_value_t = 2000)]
    ask_timeout_ms: u64,
    /// Worker threads of the runtime (pipeline and HTTP API). One is fastest: the pipeline's
    /// hand-offs then never wake another thread. File key ks.worker.threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: u16,
    /// Serve the HTTP API over TLS with this PEM certificate chain (with --tls-key). File key
    /// ks.http.tls.cert.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert. File key ks.http.tls.key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Test hook: make every scoring take at least this long (back-pressure tests; built with
    /// the `test-hooks` feature only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true)]
    slow_score_ms: Option<u64>,
}

/// The properties-file keys as-server reads itself; any other key goes to the Kafka clients.
const OWN_KEYS: &[&str] = &[
    "bootstrap.servers",
    "session.timeout.ms",
    "commit.interval.ms",
    "state.dir",
    "ks.group.id",
    "ks.http.host",
    "ks.http.port",
    "ks.topic.data",
    "ks.topic.models",
    "ks.topic.results",
    "ks.topic.errors",
    "ks.http.tls.cert",
    "ks.http.tls.key",
    "ks.worker.threads",
];

fn main() -> anyhow::Result<()> {
    let matches = <Args as clap::CommandFactory>::command().get_matches();
    let format = match matches.get_one::<String>("log_format").map(String::as_str) {
        Some("json") => ks_logging::LogFormat::Json,
        _ => ks_logging::LogFormat::Text,
    };
    ks_logging::init(format, "info")?;
    let mut a = <Args as clap::FromArgMatches>::from_arg_matches(&matches)?;
    if let Some(path) = a.config.clone() {
        let s = ks_kafka::Settings::load(&path, OWN_KEYS)?;
        s.fill(&matches, "brokers", "bootstrap.servers", &mut a.brokers)?;
        s.fill(
            &matches,
            "session_timeout_ms",
            "session.timeout.ms",
            &mut a.session_timeout_ms,
        )?;
        s.fill(
            &matches,
            "commit_interval_ms",
            "commit.interval.ms",
            &mut a.commit_interval_ms,
        )?;
        s.fill(&matches, "state_dir", "state.dir", &mut a.state_dir)?;
        s.fill(
            &matches,
            "worker_threads",
            "ks.worker.threads",
            &mut a.worker_threads,
        )?;
        s.fill(&matches, "group_id", "ks.group.id", &mut a.group_id)?;
        s.fill(&matches, "host", "ks.http.host", &mut a.host)?;
        s.fill(&matches, "port", "ks.http.port", &mut a.port)?;
        s.fill(&matches, "data_topic", "ks.topic.data", &mut a.data_topic)?;
        s.fill(
            &matches,
            "models_topic",
            "ks.topic.models",
            &mut a.models_topic,
        )?;
        s.fill(
            &matches,
            "results_topic",
            "ks.topic.results",
            &mut a.results_topic,
        )?;
        s.fill(
            &matches,
            "errors_topic",
            "ks.topic.errors",
            &mut a.errors_topic,
        )?;
        for (field, key) in [
            (&mut a.tls_cert, "ks.http.tls.cert"),
            (&mut a.tls_key, "ks.http.tls.key"),
        ] {
            if field.is_none() {
                *field = s.get::<String>(key)?.map(PathBuf::from);
            }
        }
        let check = !s.clients.is_empty();
        ks_kafka::set_process_properties(s.clients);
        if check {
            // Wrong credentials fail here, with the broker's reason, not in a retry loop.
            ks_kafka::check_brokers(
                &ks_kafka::client_config_for(ks_kafka::ClientKind::Admin, &a.brokers),
                Duration::from_secs(15),
            )
            .context("cannot start as-server")?;
        }
    }
    let mut config = Config::new(a.mode, &a.brokers);
    config.host = a.host;
    config.port = a.port;
    config.state_dir = a.state_dir;
    config.topics = Topics {
        data: a.data_topic,
        models: a.models_topic,
        results: a.results_topic,
        errors: a.errors_topic,
    };
    config.group_id = a.group_id;
    config.session_timeout = Duration::from_millis(a.session_timeout_ms);
    config.commit_interval = Duration::from_millis(a.commit_interval_ms);
    config.ask_timeout = Duration::from_millis(a.ask_timeout_ms);
    config.worker_threads = usize::from(a.worker_threads.max(1));
    config.tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(ks_http::Tls::from_pem_files(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert, --tls-key)"),
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    #[cfg(feature = "test-hooks")]
    {
        config.slow_score = a.slow_score_ms.map(Duration::from_millis);
    }
    let mode = config.mode;
    let mut server = Server::start(config).context("cannot start as-server")?;
    // Tests and scripts read this line to find a port picked with --port 0.
    println!(
        "as-server ({mode:?}) listening on {scheme}://{}",
        server.http_addr()
    );
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .context("as-server stopped")?;
    server.stop().context("as-server shutdown")?;
    Ok(())
}
