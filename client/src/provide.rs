//! `ks-client provide`: wine records at a steady pace, models in turn, the first one at once.

use crate::catalog::{self, ModelFile};
use crate::kafka::Publisher;
use crate::{Error, Result};
use ks_proto::{Message, ModelDescriptor};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to publish, where and how fast.
#[derive(Debug, Clone)]
pub struct ProvideOptions {
    pub data_topic: String,
    pub models_topic: String,
    /// Pause between records; zero publishes as fast as the producer takes them.
    pub interval: Duration,
    /// Stop after this many records (the file is replayed in a loop otherwise).
    pub count: Option<u64>,
    /// Pause between models; zero publishes every model once, at once.
    pub model_interval: Duration,
    pub data_file: PathBuf,
    pub models: Vec<ModelFile>,
    pub data_type: String,
    /// Print progress every this many records.
    pub progress_every: u64,
}

/// What a run published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProvideSummary {
    pub records: u64,
    pub models: u64,
}

/// The descriptor the provider publishes for a model file, carrying the file's bytes.
pub fn descriptor_for(model: &ModelFile, data_type: &str) -> Result<ModelDescriptor> {
    let data = std::fs::read(&model.path).map_err(|source| Error::ReadFile {
        path: model.path.clone(),
        source,
    })?;
    let description = format!(
        "{} model from {}",
        model.model_type.as_str_name(),
        model.path.display()
    );
    Ok(ModelDescriptor::with_data(
        &model.name(),
        &description,
        data_type,
        model.model_type,
        data,
    ))
}

/// Publishes until `count` records are out or `stop()` says so; then waits for every ack.
pub fn run(
    opts: &ProvideOptions,
    publisher: &Publisher,
    stop: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(&str),
) -> Result<ProvideSummary> {
    let records = catalog::wine_records(&opts.data_file, &opts.data_type)?;
    // Encode once: the loop replays the file and must not re-encode per send.
    let encoded: Vec<Vec<u8>> = records.iter().map(|r| r.encode_to_vec()).collect();
    let mut summary = ProvideSummary::default();
    let mut next_model = 0usize;
    let mut next_model_at = Instant::now();
    let mut next_record_at = Instant::now();
    let publish_model =
        |i: usize, summary: &mut ProvideSummary, progress: &mut dyn FnMut(&str)| -> Result<()> {
            let model = &opts.models[i % opts.models.len()];
            let md = descriptor_for(model, &opts.data_type)?;
            publisher.send(
                &opts.models_topic,
                Some(opts.data_type.as_bytes()),
                &md.encode_to_vec(),
            )?;
            summary.models += 1;
            progress(&format!(
                "published model {} ({})",
                model.name(),
                model.model_type.as_str_name()
            ));
            Ok(())
        };
    if opts.model_interval.is_zero() {
        for i in 0..opts.models.len() {
            publish_model(i, &mut summary, progress)?;
        }
    }
    loop {
        if stop() || opts.count.is_some_and(|c| summary.records >= c) {
            break;
        }
        let now = Instant::now();
        if !opts.model_interval.is_zero() && !opts.models.is_empty() && now >= next_model_at {
            publish_model(next_model, &mut summary, progress)?;
            next_model += 1;
            next_model_at = now + opts.model_interval;
        }
        if now < next_record_at {
            // Sleep in short steps so a stop request is seen promptly.
            std::thread::sleep((next_record_at - now).min(Duration::from_millis(100)));
            continue;
        }
        let i = (summary.records % encoded.len() as u64) as usize;
        publisher.send(&opts.data_topic, None, &encoded[i])?;
        summary.records += 1;
        if opts.progress_every > 0 && summary.records % opts.progress_every == 0 {
            progress(&format!("published {} records", summary.records));
        }
        next_record_at += opts.interval;
        if opts.interval.is_zero() {
            next_record_at = now;
        }
    }
    publisher.flush(Duration::from_secs(30))?;
    if opts.progress_every == 0 || summary.records % opts.progress_every != 0 {
        progress(&format!("published {} records", summary.records));
    }
    Ok(summary)
}
