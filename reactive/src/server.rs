//! A running as-server: its own tokio runtime, the Kafka readers, the stage or the manager,
//! the sink, and the HTTP API.
//!
//! ```text
//!  data topic ──read_data──► [DATA_BUFFER] ──► stage | manager ──► actors [MAILBOX]
//!  model topic ─read_models─► [4] ──────────┘          │
//!                                       [OUT_BUFFER] ◄──┘ (one oneshot per record, read order)
//!                                             └──► run_sink ──► results / errors topic
//!                                                        └──► store_offset (after delivery)
//! ```
//! Every buffer is bounded, so a slow scorer fills them and the data reader stops polling.
//! The data reader starts once the model reader has read the model topic to its end.

use crate::actor::Manager;
use crate::http::{self, Queries};
use crate::kafka::{self};
use crate::stage::{self, StageState};
use crate::{Error, Result};
use ks_serving::Topics;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Records read ahead of the scorer.
pub const DATA_BUFFER: usize = 256;
/// Records scored ahead of the sink.
pub const OUT_BUFFER: usize = 256;

/// How as-server scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One custom stream stage (the tutorial's GraphStage).
    Stage,
    /// A router and one actor per data type (the tutorial's actor model server).
    Actor,
}

/// Everything as-server can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Stage or actor mode.
    pub mode: Mode,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// HTTP host to bind.
    pub host: String,
    /// HTTP port; 0 picks a free one.
    pub port: u16,
    /// Where actor mode keeps its state files.
    pub state_dir: PathBuf,
    /// The topics read and written.
    pub topics: Topics,
    /// Consumer group of the data topic (and, with `-models`, of the model topic in actor mode).
    pub group_id: String,
    /// Consumer group session timeout.
    pub session_timeout: Duration,
    /// How often stored offsets are committed.
    pub commit_interval: Duration,
    /// How long `/state/{dataType}` waits for an actor.
    pub ask_timeout: Duration,
    /// Serve the HTTP API over TLS.
    pub tls: Option<ks_http::Tls>,
    /// Worker threads of the runtime the pipeline and the HTTP API run on (at least 1). The
    /// pipeline's tasks hand each record on through channels: on one worker a hand-off is a
    /// queue push, on several it is often a wake-up of another thread (benches/README.md:
    /// 1 worker 282 000 records/s, 2 workers 234 000 in stage mode).
    pub worker_threads: usize,
    /// Test hook (feature `test-hooks`): every scoring takes at least this long.
    #[cfg(feature = "test-hooks")]
    pub slow_score: Option<Duration>,
}

impl Config {
    /// The defaults for `mode` on `brokers`.
    pub fn new(mode: Mode, brokers: &str) -> Config {
        Config {
            mode,
            brokers: brokers.to_string(),
            host: "127.0.0.1".into(),
            port: 5500,
            state_dir: PathBuf::from("as-state"),
            topics: Topics::default(),
            group_id: "as-server".into(),
            session_timeout: Duration::from_secs(45),
            commit_interval: Duration::from_secs(1),
            ask_timeout: Duration::from_secs(2),
            tls: None,
            worker_threads: 1,
            #[cfg(feature = "test-hooks")]
            slow_score: None,
        }
    }
}

/// A running as-server. Dropping it stops it.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    http_addr: SocketAddr,
    queries: Queries,
    shutdown: watch::Sender<bool>,
    done: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl Server {
    /// Starts everything; returns once the HTTP API listens (and, in actor mode, once the
    /// persisted actors have been spawned to restore).
    pub fn start(config: Config) -> Result<Server> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .enable_all()
            .thread_name("as-server")
            .build()
            .map_err(Error::io("tokio runtime"))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (http_addr, queries, done) = runtime.block_on(start(config, shutdown_rx))?;
        Ok(Server {
            runtime: Some(runtime),
            http_addr,
            queries,
            shutdown,
            done: Some(done),
        })
    }

    /// The address the HTTP API listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// What the HTTP API reads, for in-process callers.
    pub fn queries(&self) -> &Queries {
        &self.queries
    }

    /// Waits until the pipeline stops by itself (an error) or `stop` completes.
    pub fn run_until(&mut self, stop: impl std::future::Future<Output = ()>) -> Result<()> {
        let (Some(rt), Some(done)) = (&self.runtime, &mut self.done) else {
            return Ok(());
        };
        let finished = rt.block_on(async {
            tokio::select! {
                r = done => Some(r),
                _ = stop => None,
            }
        });
        match finished {
            Some(r) => {
                self.done = None;
                r.map_err(|e| Error::Stopped(e.to_string()))?
            }
            None => Ok(()),
        }
    }

    /// Stops reading, writes what is in flight, commits, and stops.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown_now()
    }

    fn shutdown_now(&mut self) -> Result<()> {
        let _ = self.shutdown.send(true);
        let result = match (&self.runtime, self.done.take()) {
            (Some(rt), Some(done)) => rt.block_on(async {
                match tokio::time::timeout(Duration::from_secs(15), done).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => Err(Error::Stopped(e.to_string())),
                    Err(_) => Err(Error::Stopped("shutdown took over 15 s".into())),
                }
            }),
            _ => Ok(()),
        };
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        result
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_now() {
            log::warn!("as-server shutdown: {e}");
        }
    }
}

async fn start(
    config: Config,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, Queries, tokio::task::JoinHandle<Result<()>>)> {
    std::fs::create_dir_all(&config.state_dir).map_err(Error::io(&config.state_dir))?;
    #[cfg(feature = "test-hooks")]
    let slow_score = config.slow_score;
    #[cfg(not(feature = "test-hooks"))]
    let slow_score = None;
    let (data_tx, data_rx) = mpsc::channel(DATA_BUFFER);
    let (model_tx, model_rx) = mpsc::channel(4);
    let (out_tx, out_rx) = mpsc::channel(OUT_BUFFER);

    // Actors restore from their files before the model topic is even opened.
    let (queries, scorer): (Queries, tokio::task::JoinHandle<()>) = match config.mode {
        Mode::Stage => {
            let state = Arc::new(StageState::default());
            let task = tokio::spawn(stage::run(
                model_rx,
                data_rx,
                out_tx,
                Arc::clone(&state),
                slow_score,
            ));
            (Queries::Stage(state), task)
        }
        Mode::Actor => {
            let manager = Manager::new(&config.state_dir, slow_score);
            let actors = manager.actors();
            let task = tokio::spawn(manager.run(model_rx, data_rx, out_tx));
            (
                Queries::Actor {
                    actors,
                    ask_timeout: config.ask_timeout,
                },
                task,
            )
        }
    };

    let value = format!("{}:{}", config.host, config.port);
    let addr: SocketAddr = value.parse().map_err(|e| Error::BadAddress {
        reason: format!("{e}"),
        value: value.clone(),
    })?;
    let mut http_shutdown = shutdown.clone();
    let dashboard = http::DashboardContext {
        application: config.group_id.clone(),
        ..http::DashboardContext::default()
    };
    let activity = Arc::clone(&dashboard.activity);
    let data_consumer = Arc::clone(&dashboard.data_consumer);
    let (http_addr, http_task) = http::serve(
        queries.clone(),
        dashboard,
        addr,
        config.tls.clone(),
        async move {
            let _ = http_shutdown.changed().await;
        },
    )
    .await?;

    let producer = kafka::producer(&config.brokers)?;
    let data = Arc::new(kafka::data_consumer(
        &config.brokers,
        &config.group_id,
        config.session_timeout,
        config.commit_interval,
    )?);
    // Set once: the cell is new and only set here.
    let _ = data_consumer.set(Arc::clone(&data));
    use rdkafka::consumer::Consumer;
    data.subscribe(&[config.topics.data.as_str()])
        .map_err(Error::kafka("cannot subscribe to the data topic"))?;
    let model_group = format!("{}-models", config.group_id);
    let grouped = config.mode == Mode::Actor;
    let models = Arc::new(
        kafka::model_consumer(
            &config.brokers,
            &config.topics.models,
            grouped.then_some(model_group.as_str()),
            config.session_timeout,
            config.commit_interval,
        )
        .await?,
    );

    let (caught_up_tx, caught_up) = watch::channel(false);
    let model_reader = tokio::spawn(kafka::read_models(
        Arc::clone(&models),
        config.topics.models.clone(),
        grouped,
        model_tx,
        producer.clone(),
        config.topics.errors.clone(),
        caught_up_tx,
        shutdown.clone(),
        Arc::clone(&activity),
    ));
    let data_reader = tokio::spawn(kafka::read_data(
        Arc::clone(&data),
        data_tx,
        caught_up,
        shutdown,
    ));
    let sink = tokio::spawn(kafka::run_sink(
        out_rx,
        producer,
        Arc::clone(&data),
        config.topics.clone(),
        activity,
    ));
    let done = tokio::spawn(async move {
        // The sink ends after the data reader stops (shutdown) and everything read is written,
        // or early with a delivery error.
        let sunk = sink.await.map_err(|e| Error::Stopped(format!("sink: {e}")));
        // A reader that failed (the model topic never answered, the data reader gave up
        // waiting for it) is why the sink ended: its error is the server's.
        let mut failed = None;
        for reader in [data_reader, model_reader] {
            if reader.is_finished() {
                if let Ok(Err(e)) = reader.await {
                    log::error!("{e}");
                    failed.get_or_insert(e);
                }
            } else {
                reader.abort();
            }
        }
        let _ = scorer.await;
        // Commit what the sink stored, so a clean stop re-reads nothing.
        let committed = data
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .map_err(Error::kafka("cannot commit on shutdown"));
        if grouped {
            // Stored model offsets; one missed here is only a model read (and persisted) again.
            let _ = models.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
        }
        http_task.abort();
        sunk??;
        if let Some(e) = failed {
            return Err(e);
        }
        if let Err(e) = committed {
            log::warn!("{e}");
        }
        Ok(())
    });
    Ok((http_addr, queries, done))
}
