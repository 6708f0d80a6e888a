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

use ks_engine::{Error, Processor, ProcessorContext, PunctuationType, Record, Result};
use ks_proto::WINE_FEATURES;
use ks_proto::{Message, WineRecord};
use ks_serving::challenger::Shadow;
use ks_serving::control::ControlSink;
use ks_serving::{now_ms, ModelRegistry, Origin, ScoreResult, ServingStats, ShadowPrediction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The task store holding the serving statistics per data type.
pub const SERVING_STORE: &str = "serving";

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

/// The model-serving processor (one per task).
pub struct ModelServing {
    registry: Arc<ModelRegistry>,
    metrics: Arc<ServerMetrics>,
    states: HashMap<String, Serving>,
    control: Option<Arc<dyn ControlSink>>,
}

impl ModelServing {
    /// A processor scoring with `registry`'s models, counting into `metrics`.
    pub fn new(registry: Arc<ModelRegistry>, metrics: Arc<ServerMetrics>) -> ModelServing {
        ModelServing {
            registry,
            metrics,
            states: HashMap::new(),
            control: None,
        }
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

    fn write_stats(&mut self, ctx: &ProcessorContext<'_>) -> Result<()> {
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

impl Processor for ModelServing {
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime)
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        self.metrics.records.fetch_add(1, Ordering::Relaxed);
        let Some(bytes) = record.value.as_deref() else {
            return Err(bad_record(ctx, "an empty data record".into()));
        };
        let wine = WineRecord::decode(bytes)
            .map_err(|e| bad_record(ctx, format!("not a WineRecord: {e}")))?;
        if wine.data_type.is_empty() {
            return Err(bad_record(ctx, "the record has no dataType".into()));
        }
        let meta = ctx.record_metadata().cloned().unwrap_or_default();
        let origin = Origin {
            topic: meta.topic,
            partition: meta.partition,
            offset: meta.offset,
        };
        let mut result = ScoreResult::unscored(&wine.data_type, &origin);
        match self.registry.get(&wine.data_type) {
            None => {
                self.metrics.no_model.fetch_add(1, Ordering::Relaxed);
                result.error = Some("no model".into());
            }
            Some(m) => {
                let serving = self.serving(ctx, &wine.data_type)?;
                let swapped = serving
                    .stats
                    .as_ref()
                    .is_none_or(|s| s.version != m.version);
                if swapped {
                    serving.stats = Some(m.fresh_stats(now_ms()));
                }
                let (scored, elapsed) = m.score_wine(&wine);
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
                result.scored_by(&m, &prediction, micros);
                let features = wine.features();
                self.registry.drift().observe(
                    &wine.data_type,
                    &m.version,
                    &WINE_FEATURES,
                    &features,
                );
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
                    result.challenger = Some(ShadowPrediction::of(&ch, &shadow, shadow_us));
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
            }
        }
        let json = serde_json::to_vec(&result).map_err(|e| Error::processing("serving", e))?;
        ctx.forward(Record {
            // The input's key (see `topology`: results spread as the input does).
            key: record.key,
            value: Some(json),
            timestamp: record.timestamp,
            headers: Vec::new(),
        });
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
