//! `ks-server`: the streaming model server (memory, standard or custom variant).

use anyhow::Context;
use clap::Parser;
use ks_engine::ProcessingGuarantee;
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
                  /state/instances, /models, /health, /metrics."
)]
struct Cli {
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
    /// Commit interval in ms (default: 30000 at-least-once, 100 exactly-once).
    #[arg(long, env = "KS_COMMIT_INTERVAL_MS")]
    commit_interval_ms: Option<u64>,
    /// Consumer group session timeout in ms.
    #[arg(long, env = "KS_SESSION_TIMEOUT_MS", default_value_t = 10000)]
    session_timeout_ms: u64,
    /// Warm standby copies of each task kept on other instances (`num.standby.replicas`).
    #[arg(long, env = "KS_NUM_STANDBY_REPLICAS", default_value_t = 0)]
    num_standby_replicas: usize,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,librdkafka=warn,rdkafka=warn"),
    )
    .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
    config.commit_interval = cli.commit_interval_ms.map(Duration::from_millis);
    config.session_timeout = Duration::from_millis(cli.session_timeout_ms);
    config.num_standby_replicas = cli.num_standby_replicas;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let server = Server::start(config).context("cannot start")?;
    println!(
        "ks-server ({store}) running: http://{addr}/state/value  http://{addr}/state/instances  http://{addr}/models",
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
