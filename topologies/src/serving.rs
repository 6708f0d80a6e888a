//! The data processor: decode a WineRecord, swap in its data type's newest model if the task
//! is not serving it yet, score, keep the serving statistics, and emit a result.
//!
//! Statistics live in the task's `serving` store (changelogged for standard and custom). They
//! are updated in memory per record and written to the store on a one-second wall-clock
//! punctuation, on a model swap and on close: one store write (and changelog record) per second
//! per data type instead of one per scored record.
//!
//! Beside the served model, a data type's challenger (if any) scores the same record in shadow:
//! its prediction goes in the result's `challenger` field and into the registry's agreement
//! figures, never into the served prediction; a challenger that fails is counted, the record is
//! served regardless. Every scored record's inputs feed the registry's drift figures.
//!
//! Scores also go into tumbling one-minute windows by the record's event time
//! ([`ks_serving::windows`]): per data type, window and model, count, numeric predictions and
//! scoring time, kept in the task's `score-windows` window store (changelogged like `serving`,
//! [`SCORE_WINDOWS_RETENTION_MS`] of retention) and written with the statistics, once a second.

use ks_engine::stores::{ReadOnlyWindowStore, WindowStore, WindowStoreConfig};
use ks_engine::{Error, Processor, ProcessorContext, PunctuationType, Record, Result, Upcoming};
use ks_proto::WINE_FEATURES;
use ks_proto::{Message, WineRecord};
use ks_serving::challenger::Shadow;
use ks_serving::control::ControlSink;
use ks_serving::windows::{window_start, ScoreWindow, WINDOW_MS};
use ks_serving::{now_ms, ModelRegistry, ResultJson, ServedModel, ServingStats, ShadowPrediction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The task store holding the serving statistics per data type.
pub const SERVING_STORE: &str = "serving";

/// The task's window store of scores per data type and minute ([`ScoreWindow`] as JSON).
pub const SCORE_WINDOWS_STORE: &str = "score-windows";

/// How long score windows are kept, in event time: a day.
pub const SCORE_WINDOWS_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// Upper bounds (seconds) of the scoring-latency histogram.
pub const LATENCY_BOUNDS: [f64; 12] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 1e-1,
];

/// Process-wide serving counters.
#[derive(Default)]
pub struct ServerMetrics {
    /// Data records processed.
    pub records: AtomicU64,
    /// Records scored by a model.
    pub scores: AtomicU64,
    /// Records that found no model.
    pub no_model: AtomicU64,
    /// Records scored ahead with the rest of their poll batch (models that batch, see
    /// [`ks_models::Model::prefers_batches`]): one graph run per batch instead of per record.
    pub batched: AtomicU64,
    /// Records a model could not score.
    pub model_errors: AtomicU64,
    /// Per bound in [`LATENCY_BOUNDS`], then +Inf (not cumulative).
    buckets: [AtomicU64; 13],
    /// Total scoring time in nanoseconds.
    latency_nanos: AtomicU64,
}

impl ServerMetrics {
    /// Counts one scoring that took `seconds`.
    pub fn observe(&self, seconds: f64) {
        let i = LATENCY_BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// Cumulative (bound, count) pairs ending with +Inf, the sum in seconds, and the count.
    pub fn histogram(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut out = Vec::with_capacity(13);
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            out.push((
                LATENCY_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY),
                total,
            ));
        }
        (
            out,
            self.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            total,
        )
    }
}

struct Serving {
    stats: Option<ServingStats>,
    dirty: bool,
}

/// A window being counted: its scores so far and whether the store is behind them.
struct OpenWindow {
    scores: ScoreWindow,
    dirty: bool,
}

/// The model-serving processor (one per task).
pub struct ModelServing {
    registry: Arc<ModelRegistry>,
    metrics: Arc<ServerMetrics>,
    states: HashMap<String, Serving>,
    control: Option<Arc<dyn ControlSink>>,
    /// Windows touched since they were last left behind, by data type, then start (looked up
    /// by `&str`: no key allocated per record).
    windows: HashMap<String, HashMap<i64, OpenWindow>>,
    window_store: Option<WindowStore>,
    /// Records of the coming poll batch scored together by [`Processor::prepare`] (models
    /// that batch, see [`ks_models::Model::prefers_batches`]), by partition and offset.
    prepared: HashMap<(i32, i64), Prepared>,
}

/// A record decoded and scored ahead, in its poll batch.
struct Prepared {
    wine: WineRecord,
    /// The model that scored it: `process` uses the prediction only if that model still serves.
    model: Arc<ServedModel>,
    prediction: ks_models::Prediction,
    /// Its share of the batch's scoring time.
    elapsed: Duration,
}

impl ModelServing {
    /// A processor scoring with `registry`'s models, counting into `metrics`.
    pub fn new(registry: Arc<ModelRegistry>, metrics: Arc<ServerMetrics>) -> ModelServing {
        ModelServing {
            registry,
            metrics,
            states: HashMap::new(),
            control: None,
            windows: HashMap::new(),
            window_store: None,
            prepared: HashMap::new(),
        }
    }

    /// The record's WineRecord and what `prepare` made of it (the model that scored it, the
    /// prediction, its time), if it did; otherwise the record decoded, to be scored alone.
    fn take_prepared(
        &mut self,
        ctx: &ProcessorContext<'_>,
        bytes: &[u8],
    ) -> Result<(WineRecord, Option<Prepared>)> {
        if !self.prepared.is_empty() {
            if let Some(mut p) = ctx
                .record_metadata()
                .and_then(|m| self.prepared.remove(&(m.partition, m.offset)))
            {
                let wine = std::mem::take(&mut p.wine);
                return Ok((wine, Some(p)));
            }
        }
        let wine = WineRecord::decode(bytes)
            .map_err(|e| bad_record(ctx, format!("not a WineRecord: {e}")))?;
        Ok((wine, None))
    }

    /// Publishes the promotions the registry's policy asks for to `sink`.
    pub fn with_control(mut self, sink: Option<Arc<dyn ControlSink>>) -> ModelServing {
        self.control = sink;
        self
    }

    fn serving(&mut self, ctx: &ProcessorContext<'_>, data_type: &str) -> Result<&mut Serving> {
        if !self.states.contains_key(data_type) {
            let stats = match ctx.store(SERVING_STORE)?.get(data_type.as_bytes())? {
                Some(bytes) => match serde_json::from_slice::<ServingStats>(&bytes) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        log::warn!("discarding unreadable serving statistics of {data_type}: {e}");
                        None
                    }
                },
                None => None,
            };
            self.states.insert(
                data_type.to_string(),
                Serving {
                    stats,
                    dirty: false,
                },
            );
        }
        self.states
            .get_mut(data_type)
            .ok_or_else(|| Error::processing("serving", "state vanished"))
    }

    fn window_store(&mut self, ctx: &ProcessorContext<'_>) -> Result<&WindowStore> {
        if self.window_store.is_none() {
            let kv = ctx.store(SCORE_WINDOWS_STORE)?;
            let config = WindowStoreConfig::new(SCORE_WINDOWS_RETENTION_MS, false);
            self.window_store = Some(WindowStore::new(kv.clone(), kv, config)?);
        }
        self.window_store
            .as_ref()
            .ok_or_else(|| Error::UnknownStore(SCORE_WINDOWS_STORE.into()))
    }

    /// Counts a scored record in its window, loading the window's earlier counts from the
    /// store when it is first touched here (after a restart or a rebalance).
    fn count_in_window(
        &mut self,
        ctx: &ProcessorContext<'_>,
        data_type: &str,
        timestamp: i64,
        model: &str,
        prediction: Option<f64>,
        micros: f64,
    ) -> Result<()> {
        let start = window_start(timestamp);
        let open = self
            .windows
            .get(data_type)
            .is_some_and(|w| w.contains_key(&start));
        if !open {
            let stored = match self.window_store(ctx)?.fetch(data_type.as_bytes(), start)? {
                Some(bytes) => serde_json::from_slice::<ScoreWindow>(&bytes).unwrap_or_else(|e| {
                    log::warn!(
                        "discarding an unreadable score window of {data_type} at {start}: {e}"
                    );
                    ScoreWindow::default()
                }),
                None => ScoreWindow::default(),
            };
            self.windows
                .entry(data_type.to_string())
                .or_default()
                .insert(
                    start,
                    OpenWindow {
                        scores: stored,
                        dirty: false,
                    },
                );
        }
        if let Some(w) = self
            .windows
            .get_mut(data_type)
            .and_then(|w| w.get_mut(&start))
        {
            w.scores.record(model, prediction, micros);
            w.dirty = true;
        }
        Ok(())
    }

    /// Writes the windows counted since the last write; windows more than a window behind the
    /// newest are then left to the store (a late record reloads its window).
    fn write_windows(&mut self, ctx: &ProcessorContext<'_>) -> Result<()> {
        if self.windows.is_empty() {
            return Ok(());
        }
        let newest = self
            .windows
            .values()
            .flat_map(|w| w.keys().copied())
            .max()
            .unwrap_or(0);
        let mut writes = Vec::new();
        for (data_type, windows) in self.windows.iter_mut() {
            for (start, w) in windows.iter_mut().filter(|(_, w)| w.dirty) {
                let json =
                    serde_json::to_vec(&w.scores).map_err(|e| Error::processing("serving", e))?;
                writes.push((data_type.clone(), *start, json));
                w.dirty = false;
            }
        }
        let store = self.window_store(ctx)?;
        for (data_type, start, json) in writes {
            // Past retention (a record a day late) the store drops the write, by design.
            store.put(data_type.as_bytes(), start, Some(&json))?;
        }
        let keep_from = newest.saturating_sub(WINDOW_MS);
        for windows in self.windows.values_mut() {
            windows.retain(|start, _| *start >= keep_from);
        }
        self.windows.retain(|_, windows| !windows.is_empty());
        Ok(())
    }

    fn write_stats(&mut self, ctx: &ProcessorContext<'_>) -> Result<()> {
        self.write_windows(ctx)?;
        let store = ctx.store(SERVING_STORE)?;
        for (data_type, s) in self.states.iter_mut().filter(|(_, s)| s.dirty) {
            if let Some(stats) = &s.stats {
                let json =
                    serde_json::to_vec(stats).map_err(|e| Error::processing("serving", e))?;
                store.put(data_type.as_bytes(), &json)?;
            }
            s.dirty = false;
        }
        Ok(())
    }
}

fn bad_record(ctx: &ProcessorContext<'_>, reason: String) -> Error {
    let m = ctx.record_metadata().cloned().unwrap_or_default();
    Error::Deserialization {
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        reason,
    }
}

/// Forwards `json` as the result of `input`: with the input's key (see `topology`: results
/// spread as the input does) and timestamp.
fn forward(ctx: &mut ProcessorContext<'_>, input: Record, json: Vec<u8>) {
    ctx.forward(Record {
        key: input.key,
        value: Some(json),
        timestamp: input.timestamp,
        headers: Vec::new(),
    });
}

impl Processor for ModelServing {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime)
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        self.metrics.records.fetch_add(1, Ordering::Relaxed);
        let Some(bytes) = record.value.as_deref() else {
            return Err(bad_record(ctx, "an empty data record".into()));
        };
        let (wine, ahead) = self.take_prepared(ctx, bytes)?;
        if wine.data_type.is_empty() {
            return Err(bad_record(ctx, "the record has no dataType".into()));
        }
        // The input's topic, partition and offset, borrowed for the result (no copy a record).
        let no_meta = ks_engine::RecordMetadata::default();
        let Some(m) = self.registry.get(&wine.data_type) else {
            self.metrics.no_model.fetch_add(1, Ordering::Relaxed);
            let meta = ctx.record_metadata().unwrap_or(&no_meta);
            let json = ResultJson {
                error: Some("no model"),
                ..ResultJson::new(&wine.data_type, &meta.topic, meta.partition, meta.offset)
            }
            .to_vec()
            .map_err(|e| Error::processing("serving", e))?;
            forward(ctx, record, json);
            return Ok(());
        };
        // A prediction made ahead counts only if the model that made it still serves.
        let ahead = ahead.filter(|p| Arc::ptr_eq(&p.model, &m));
        if ahead.is_some() {
            self.metrics.batched.fetch_add(1, Ordering::Relaxed);
        }
        let (scored, elapsed) = match ahead {
            Some(p) => (Ok(p.prediction), p.elapsed),
            None => m.score_wine(&wine),
        };
        let serving = self.serving(ctx, &wine.data_type)?;
        let swapped = serving
            .stats
            .as_ref()
            .is_none_or(|s| s.version != m.version);
        if swapped {
            serving.stats = Some(m.fresh_stats(now_ms()));
        }
        let prediction = scored.map_err(|e| {
            Error::processing(
                "serving",
                format!("model {} cannot score this record: {e}", m.name),
            )
        })?;
        let micros = elapsed.as_nanos() as f64 / 1000.0;
        if let Some(stats) = serving.stats.as_mut() {
            stats.record(micros);
        }
        serving.dirty = true;
        self.metrics.scores.fetch_add(1, Ordering::Relaxed);
        self.metrics.observe(elapsed.as_secs_f64());
        self.count_in_window(
            ctx,
            &wine.data_type,
            record.timestamp,
            &m.name,
            prediction.value().as_f64(),
            micros,
        )?;
        let features = wine.features();
        self.registry
            .drift()
            .observe(&wine.data_type, &m.version, &WINE_FEATURES, &features);
        let mut challenger = None;
        if let Some(ch) = self.registry.challenger(&wine.data_type) {
            let (shadow, shadow_elapsed) = ch.score_wine(&wine);
            let shadow_us = shadow_elapsed.as_nanos() as f64 / 1000.0;
            let outcome = match &shadow {
                Ok(p) => Shadow::Scored {
                    champion: &prediction,
                    challenger: p,
                    champion_us: micros,
                    challenger_us: shadow_us,
                },
                Err(_) => Shadow::Failed,
            };
            let ask = self
                .registry
                .shadow()
                .observe(&wine.data_type, &m, &ch, outcome);
            challenger = Some(ShadowPrediction::of(&ch, &shadow, shadow_us));
            if let Some(action) = ask {
                log::info!(
                    "challenger {} ({}) of {} passes the promotion policy",
                    ch.name,
                    ch.version,
                    wine.data_type
                );
                match &self.control {
                    Some(sink) => sink.publish(&wine.data_type, &action),
                    None => log::warn!(
                        "no control sink: the promotion of {} is not published",
                        ch.version
                    ),
                }
            }
        }
        if swapped {
            // Queries see the new model at once, not at the next punctuation.
            self.write_stats(ctx)?;
        }
        let meta = ctx.record_metadata().unwrap_or(&no_meta);
        let json = ResultJson {
            scored: Some((&m, &prediction, micros)),
            challenger: challenger.as_ref(),
            ..ResultJson::new(&wine.data_type, &meta.topic, meta.partition, meta.offset)
        }
        .to_vec()
        .map_err(|e| Error::processing("serving", e))?;
        forward(ctx, record, json);
        Ok(())
    }

    /// Scores the batch's records together where their model gains from it (a graph run
    /// once over an [N, 11] tensor instead of N times): `process` then takes each record's
    /// prediction. Records that do not decode, lack a model or whose model scores row by
    /// row are left to `process` as they are.
    fn prepare(
        &mut self,
        _ctx: &mut ProcessorContext<'_>,
        upcoming: &[Upcoming<'_>],
    ) -> Result<()> {
        self.prepared.clear();
        // Only graphs gain: with none serving, every record would be decoded here for nothing
        // (and again in `process`).
        if !self.registry.any_batches() {
            return Ok(());
        }
        // By model: the records' keys and their decoded wines.
        type Group = (Arc<ServedModel>, Vec<(i32, i64)>, Vec<WineRecord>);
        let mut groups: Vec<Group> = Vec::new();
        for u in upcoming {
            let Some(wine) = u
                .record
                .value
                .as_deref()
                .and_then(|bytes| WineRecord::decode(bytes).ok())
            else {
                continue;
            };
            let Some(m) = self.registry.get(&wine.data_type) else {
                continue;
            };
            if !m.model.prefers_batches() {
                continue;
            }
            let key = (u.metadata.partition, u.metadata.offset);
            match groups.iter_mut().find(|(g, _, _)| Arc::ptr_eq(g, &m)) {
                Some((_, keys, wines)) => {
                    keys.push(key);
                    wines.push(wine);
                }
                None => groups.push((m, vec![key], vec![wine])),
            }
        }
        for (model, keys, wines) in groups {
            let refs: Vec<&WineRecord> = wines.iter().collect();
            let Some((predictions, elapsed)) = model.score_wines(&refs) else {
                continue;
            };
            let share = elapsed / u32::try_from(keys.len()).unwrap_or(u32::MAX).max(1);
            for ((key, wine), prediction) in keys.into_iter().zip(wines).zip(predictions) {
                self.prepared.insert(
                    key,
                    Prepared {
                        wine,
                        model: model.clone(),
                        prediction,
                        elapsed: share,
                    },
                );
            }
        }
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        _kind: PunctuationType,
        _ts: i64,
    ) -> Result<()> {
        self.write_stats(ctx)
    }

    /// Before every commit: the statistics of the records this commit covers go into the
    /// store, so a restore after a crash counts exactly the committed results.
    fn flush(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.write_stats(ctx)
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.write_stats(ctx)
    }
}
