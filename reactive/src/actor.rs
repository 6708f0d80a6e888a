//! `actor` mode: the tutorial's router pattern. The [`Manager`] routes every model and record
//! by data type to that type's model-serving actor: a task with a bounded mailbox
//! ([`MAILBOX`]), created on first use. Each actor keeps its model and statistics in
//! `<state-dir>/actors/<hex(dataType)>/{model,stats}.bin` (framed, CRC-checked, written
//! crash-safely by [`crate::framed`]):
//!
//! - the model is written when it arrives, before the model topic's offset is stored;
//! - the statistics are written on a model swap, then at most once a second while records
//!   flow, and when the actor stops. A kill -9 loses at most the last second of counts (and the
//!   records behind them are read again: at-least-once).
//!
//! On start the manager spawns an actor for every directory under `actors/` before anything is
//! read, and each actor restores its files before it handles its mailbox, so a restarted server
//! serves (and reports) its models without the model topic being replayed. A file that fails
//! its checks is logged, reported by `/state/{dataType}`, and not loaded.
//!
//! Files are written on the actor's task itself: a write is a few hundred bytes (statistics) or
//! one model, at most once a second per actor, and doing it inline keeps "persisted, then
//! acknowledged" a plain sequence. A restore builds the model, so it runs on the blocking pool.

use crate::kafka::{DataIn, ModelIn};
use crate::model::{self, Origin};
use crate::scoring::{self, Output};
use crate::{framed, Error, Result};
use dashmap::DashMap;
use ks_proto::WineRecord;
use ks_serving::{ServedModel, ServingStats};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages an actor's mailbox holds at most; a full mailbox makes the manager wait.
pub const MAILBOX: usize = 64;
/// How often dirty statistics are written.
pub const STATS_FLUSH: Duration = Duration::from_secs(1);

/// What an actor is sent.
pub enum ActorMsg {
    /// A new model: persist it, then serve it.
    Model(ModelIn),
    /// A record to score, where it was read and its key; the output goes back on the sender.
    Record(WineRecord, Origin, Option<Vec<u8>>, oneshot::Sender<Output>),
    /// A query of the actor's state (for `/state/{dataType}`).
    State(oneshot::Sender<ActorState>),
}

/// What an actor answers a state ask with.
#[derive(Debug, Clone, Serialize)]
pub struct ActorState {
    /// The data type the actor serves.
    pub data_type: String,
    /// The statistics of its current model.
    pub stats: Option<ServingStats>,
    /// Why a state file could not be restored, if one could not.
    pub restore_error: Option<String>,
}

/// A handle on one actor.
#[derive(Clone)]
pub struct ActorRef {
    data_type: String,
    tx: mpsc::Sender<ActorMsg>,
}

impl ActorRef {
    /// Asks for the actor's state; a full mailbox or a busy actor gives
    /// [`Error::AskTimeout`] after `timeout` instead of a hang.
    pub async fn ask(&self, timeout: Duration) -> Result<ActorState> {
        let too_slow = || Error::AskTimeout {
            data_type: self.data_type.clone(),
            millis: timeout.as_millis() as u64,
        };
        let asked = async {
            let (tx, rx) = oneshot::channel();
            self.tx
                .send(ActorMsg::State(tx))
                .await
                .map_err(|_| Error::NoActor(self.data_type.clone()))?;
            rx.await.map_err(|_| Error::NoActor(self.data_type.clone()))
        };
        tokio::time::timeout(timeout, asked)
            .await
            .map_err(|_| too_slow())?
    }

    /// An actor reference whose mailbox nobody reads (to test asks that time out).
    pub fn detached(data_type: &str) -> (ActorRef, mpsc::Receiver<ActorMsg>) {
        let (tx, rx) = mpsc::channel(1);
        (
            ActorRef {
                data_type: data_type.to_string(),
                tx,
            },
            rx,
        )
    }
}

/// The actors by data type, shared with the HTTP API.
/// A `DashMap`: the router inserts while the HTTP API reads, and no lock can be poisoned.
pub type Actors = Arc<DashMap<String, ActorRef>>;

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = s
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [h, l] => {
                Some((char::from(*h).to_digit(16)? * 16 + char::from(*l).to_digit(16)?) as u8)
            }
            _ => None, // an odd length: not one of our directories
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Where the actor of `data_type` keeps its files.
pub fn actor_dir(state_dir: &Path, data_type: &str) -> PathBuf {
    state_dir.join("actors").join(hex(data_type))
}

/// Data types with persisted state under `state_dir`.
pub fn persisted(state_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("actors")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .flatten()
        .filter_map(|e| unhex(&e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

struct Actor {
    data_type: String,
    dir: PathBuf,
    model: Option<Arc<ServedModel>>,
    stats: Option<ServingStats>,
    dirty: bool,
    restore_error: Option<String>,
    slow: Option<Duration>,
}

impl Actor {
    fn model_path(&self) -> PathBuf {
        self.dir.join("model.bin")
    }

    fn stats_path(&self) -> PathBuf {
        self.dir.join("stats.bin")
    }

    /// Loads the persisted model and statistics (blocking: builds the model).
    fn restore(&mut self) {
        let model = framed::read(&self.model_path()).and_then(|bytes| {
            bytes
                .map(|b| model::build(model::from_file_bytes(&b)?))
                .transpose()
        });
        match model {
            Ok(m) => self.model = m.map(|b| b.served),
            Err(e) => {
                log::error!("actor {}: {e}", self.data_type);
                self.restore_error = Some(e.to_string());
                return;
            }
        }
        let stats = framed::read(&self.stats_path()).and_then(|bytes| {
            bytes
                .map(|b| {
                    serde_json::from_slice::<ServingStats>(&b).map_err(|e| Error::CorruptState {
                        path: self.stats_path(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        });
        match (stats, &self.model) {
            (Ok(Some(s)), Some(m)) if s.version == m.version => self.stats = Some(s),
            // Statistics of another model (the model file was replaced after them): start over.
            (Ok(_), Some(m)) => self.stats = Some(scoring::fresh_stats(m)),
            (Ok(_), None) => {}
            (Err(e), m) => {
                log::error!("actor {}: {e}", self.data_type);
                self.restore_error = Some(e.to_string());
                self.stats = m.as_deref().map(scoring::fresh_stats);
            }
        }
        if let Some(m) = &self.model {
            log::info!(
                "actor {} restored model {} ({}), {} records scored",
                self.data_type,
                m.name,
                m.version,
                self.stats.as_ref().map_or(0, |s| s.usage)
            );
        }
    }

    fn flush_stats(&mut self) {
        if !self.dirty {
            return;
        }
        let Some(stats) = &self.stats else { return };
        let written = serde_json::to_vec(stats)
            .map_err(|e| Error::Stopped(e.to_string()))
            .and_then(|json| framed::write(&self.stats_path(), &json));
        match written {
            Ok(()) => self.dirty = false,
            Err(e) => log::error!("actor {}: cannot persist statistics: {e}", self.data_type),
        }
    }

    async fn handle(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Model(ModelIn { built, ack }) => {
                let persisted = model::to_file_bytes(&built.update)
                    .and_then(|bytes| framed::write(&self.model_path(), &bytes));
                if let Err(e) = persisted {
                    // Not acknowledged: the model's offset is not stored, so it comes again.
                    log::error!("actor {}: cannot persist model: {e}", self.data_type);
                    return;
                }
                self.stats = Some(scoring::fresh_stats(&built.served));
                self.model = Some(built.served);
                self.restore_error = None;
                self.dirty = true;
                self.flush_stats();
                let _ = ack.send(());
            }
            ActorMsg::Record(wine, origin, key, reply) => {
                if let (Some(d), Some(_)) = (self.slow, &self.model) {
                    tokio::time::sleep(d).await;
                }
                let out = scoring::score(
                    self.model.as_deref(),
                    self.stats.as_mut(),
                    &wine,
                    origin,
                    key,
                );
                self.dirty |= self.model.is_some();
                let _ = reply.send(out);
            }
            ActorMsg::State(reply) => {
                let _ = reply.send(ActorState {
                    data_type: self.data_type.clone(),
                    stats: self.stats.clone(),
                    restore_error: self.restore_error.clone(),
                });
            }
        }
    }
}

async fn run_actor(mut actor: Actor, mut mailbox: mpsc::Receiver<ActorMsg>) {
    if let Err(e) = std::fs::create_dir_all(&actor.dir) {
        log::error!(
            "actor {}: cannot create {}: {e}",
            actor.data_type,
            actor.dir.display()
        );
    }
    actor = match tokio::task::spawn_blocking(move || {
        actor.restore();
        actor
    })
    .await
    {
        Ok(a) => a,
        Err(e) => {
            log::error!("actor restore failed: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(STATS_FLUSH);
    loop {
        tokio::select! {
            m = mailbox.recv() => match m {
                Some(m) => actor.handle(m).await,
                None => break,
            },
            _ = tick.tick() => actor.flush_stats(),
        }
    }
    actor.flush_stats();
}

/// Routes models and records to the actors.
pub struct Manager {
    state_dir: PathBuf,
    actors: Actors,
    slow: Option<Duration>,
}

impl Manager {
    /// Creates the manager and an actor for every data type persisted under `state_dir`, so
    /// they restore before any model is read.
    pub fn new(state_dir: &Path, slow: Option<Duration>) -> Manager {
        let m = Manager {
            state_dir: state_dir.to_path_buf(),
            actors: Arc::default(),
            slow,
        };
        for data_type in persisted(state_dir) {
            m.actor(&data_type);
        }
        m
    }

    /// The actors, shared with the HTTP API.
    pub fn actors(&self) -> Actors {
        Arc::clone(&self.actors)
    }

    /// The actor of `data_type`, created on first use.
    fn actor(&self, data_type: &str) -> ActorRef {
        if let Some(a) = self.actors.get(data_type) {
            return a.clone();
        }
        self.actors
            .entry(data_type.to_string())
            .or_insert_with(|| self.spawn(data_type))
            .clone()
    }

    /// The mailbox of `data_type`'s actor from the router's list, filled from the shared map
    /// (which creates the actor) on first use.
    fn mailbox<'a>(
        &self,
        mailboxes: &'a mut HashMap<String, mpsc::Sender<ActorMsg>>,
        data_type: &str,
    ) -> &'a mpsc::Sender<ActorMsg> {
        if !mailboxes.contains_key(data_type) {
            mailboxes.insert(data_type.to_string(), self.actor(data_type).tx);
        }
        &mailboxes[data_type]
    }

    fn spawn(&self, data_type: &str) -> ActorRef {
        let (tx, rx) = mpsc::channel(MAILBOX);
        let actor = Actor {
            data_type: data_type.to_string(),
            dir: actor_dir(&self.state_dir, data_type),
            model: None,
            stats: None,
            dirty: false,
            restore_error: None,
            slow: self.slow,
        };
        tokio::spawn(run_actor(actor, rx));
        ActorRef {
            data_type: data_type.to_string(),
            tx,
        }
    }

    /// Routes until the data inlet closes; then drops every actor reference so the actors
    /// write their statistics and stop.
    pub async fn run(
        self,
        mut models: mpsc::Receiver<ModelIn>,
        mut data: mpsc::Receiver<DataIn>,
        out: mpsc::Sender<oneshot::Receiver<Output>>,
    ) {
        let mut models_open = true;
        // The router's own mailbox list: found by `&str`, used by reference (the shared map's
        // `ActorRef` clone cost a string and a sender, allocated and dropped, per record).
        let mut mailboxes: HashMap<String, mpsc::Sender<ActorMsg>> = HashMap::new();
        loop {
            tokio::select! {
                biased;
                m = models.recv(), if models_open => match m {
                    Some(m) => {
                        let actor = self.actor(&m.built.served.data_type);
                        // A closed mailbox drops the ack: the model's offset is not stored.
                        let _ = actor.tx.send(ActorMsg::Model(m)).await;
                    }
                    None => models_open = false,
                },
                d = data.recv() => {
                    let Some(DataIn { payload, origin, key }) = d else { break };
                    let (tx, rx) = oneshot::channel();
                    match scoring::decode(payload.as_deref(), &origin) {
                        Err(bad) => {
                            let _ = tx.send(bad);
                        }
                        Ok(wine) => {
                            let mailbox = self.mailbox(&mut mailboxes, &wine.data_type);
                            // Waiting on a full mailbox is the back pressure.
                            let _ = mailbox.send(ActorMsg::Record(wine, origin, key, tx)).await;
                        }
                    }
                    if out.send(rx).await.is_err() {
                        break;
                    }
                }
            }
        }
        self.actors.clear();
    }
}
