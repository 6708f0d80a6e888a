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
    /// Test hook: make every scoring take at least this long (back-pressure tests; built with
    /// the `test-hooks` feature only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true)]
    slow_score_ms: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let a = Args::parse();
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
    #[cfg(feature = "test-hooks")]
    {
        config.slow_score = a.slow_score_ms.map(Duration::from_millis);
    }
    let mode = config.mode;
    let mut server = Server::start(config).context("cannot start as-server")?;
    // Tests and scripts read this line to find a port picked with --port 0.
    println!(
        "as-server ({mode:?}) listening on http://{}",
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
