//! `stage` mode: the tutorial's custom GraphStage as one tokio task with two inlets (models,
//! data) and one outlet (results, in read order). Per data type it keeps the current model and
//! a pending one; a pending model is swapped in when the next record of its type arrives (so a
//! model is never replaced half-way through a record). [`StageState`] is shared with the HTTP
//! API, which reads it while the stage runs.

use crate::kafka::{DataIn, ModelIn};
use crate::scoring::{self, Output};
use dashmap::DashMap;
use ks_serving::{ServedModel, ServingStats};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the stage shows the outside: the statistics of each data type's current model (a
/// `DashMap`: the HTTP API reads while the stage writes, and no lock can be poisoned).
#[derive(Default)]
pub struct StageState {
    stats: DashMap<String, ServingStats>,
}

impl StageState {
    /// The statistics of `data_type`'s current model.
    pub fn stats(&self, data_type: &str) -> Option<ServingStats> {
        self.stats.get(data_type).map(|s| s.clone())
    }

    /// Data types with a current model, sorted.
    pub fn data_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.stats.iter().map(|e| e.key().clone()).collect();
        v.sort();
        v
    }
}

struct Slot {
    current: Option<Arc<ServedModel>>,
    pending: Option<Arc<ServedModel>>,
}

/// Runs the stage until the data inlet closes. `slow`: a test hook that makes every scoring
/// take at least that long.
pub async fn run(
    mut models: mpsc::Receiver<ModelIn>,
    mut data: mpsc::Receiver<DataIn>,
    out: mpsc::Sender<oneshot::Receiver<Output>>,
    state: Arc<StageState>,
    slow: Option<Duration>,
) {
    let mut slots: HashMap<String, Slot> = HashMap::new();
    let mut models_open = true;
    loop {
        tokio::select! {
            // Models first: one published before a record is pending when the record comes.
            biased;
            m = models.recv(), if models_open => match m {
                Some(ModelIn { built, ack }) => {
                    let slot = slots.entry(built.served.data_type.clone()).or_insert(Slot {
                        current: None,
                        pending: None,
                    });
                    slot.pending = Some(built.served);
                    let _ = ack.send(());
                }
                None => models_open = false,
            },
            d = data.recv() => {
                let Some(DataIn { payload, origin, key }) = d else { return };
                let output = match scoring::decode(payload.as_deref(), &origin) {
                    Err(bad) => bad,
                    Ok(wine) => {
                        let slot = slots.get_mut(&wine.data_type);
                        let model = match slot {
                            Some(slot) => {
                                if let Some(p) = slot.pending.take() {
                                    // The swap: fresh statistics for the new model.
                                    state
                                        .stats
                                        .insert(wine.data_type.clone(), scoring::fresh_stats(&p));
                                    slot.current = Some(p);
                                }
                                slot.current.clone()
                            }
                            None => None,
                        };
                        if let (Some(d), Some(_)) = (slow, &model) {
                            tokio::time::sleep(d).await;
                        }
                        let mut stats = state.stats.get_mut(&wine.data_type);
                        scoring::score(model.as_deref(), stats.as_deref_mut(), &wine, origin, key)
                    }
                };
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(output);
                if out.send(rx).await.is_err() {
                    return;
                }
            }
        }
    }
}
