//! The global processor of the model topic: every instance decodes every model message and
//! queues it for the builder. It also keeps the newest descriptor per data type in the global
//! `models` store (without the model bytes), for queries.
//!
//! The message's headers say what it asks for (ks-serving's `control`): a model to serve, a
//! challenger to score in shadow (`ks.role=challenger`), or a control action
//! (`ks.action=rollback|promote`). Control messages queue behind the models before them, so
//! every instance applies the same sequence in topic order.

use ks_engine::{Error, Processor, ProcessorContext, Record, Result};
use ks_proto::Message;
use ks_serving::control::{self, Intent, Role};
use ks_serving::descriptor::{self, Rejected};
use ks_serving::{BuildFailures, BuildJob, FailureKind, FailureReport, Job, Origin};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// The global store holding the newest descriptor per data type.
pub const MODELS_STORE: &str = "models";

/// The global processor of the model topic.
pub struct ModelSource {
    /// Where decoded models go to be built.
    pub builder: SyncSender<Job>,
    /// Where rejected model messages are reported.
    pub failures: Arc<dyn BuildFailures>,
}

impl Processor for ModelSource {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        let origin = Origin::new(
            ctx.topic().unwrap_or_default(),
            ctx.partition().unwrap_or(-1),
            ctx.offset().unwrap_or(-1),
        );
        let Some(bytes) = record.value.as_deref() else {
            return Ok(()); // a tombstone: nothing to build
        };
        let reject = |kind, data_type: String, reason: String| {
            self.failures.failed(&FailureReport {
                kind,
                origin: origin.clone(),
                data_type,
                name: String::new(),
                reason,
            });
        };
        let role = match control::intent(&record.headers) {
            Ok(Intent::Model(role)) => role,
            Ok(Intent::Control(action)) => {
                return match control::decode_control(bytes, action, &origin) {
                    Ok(c) => self.send(Job::Control(c)),
                    Err(e) => {
                        reject(FailureKind::Control, String::new(), e.to_string());
                        Ok(())
                    }
                };
            }
            Err(e) => {
                reject(FailureKind::Control, String::new(), e.to_string());
                return Ok(());
            }
        };
        let decoded = match descriptor::decode(bytes, &origin) {
            Ok(d) => d,
            Err(Rejected {
                data_type,
                name,
                error,
            }) => {
                self.failures.failed(&FailureReport {
                    kind: FailureKind::Model,
                    origin,
                    data_type,
                    name,
                    reason: error.to_string(),
                });
                return Ok(());
            }
        };
        if role == Role::Champion {
            // The descriptor without its bytes, for /models and for operators reading the store.
            ctx.store(MODELS_STORE)?
                .put(
                    decoded.summary.data_type.as_bytes(),
                    &decoded.summary.encode_to_vec(),
                )
                .map_err(Error::from)?;
        }
        self.send(Job::Build(BuildJob {
            update: decoded.update,
            origin,
            role,
        }))
    }
}

impl ModelSource {
    fn send(&self, job: Job) -> Result<()> {
        self.builder
            .send(job)
            .map_err(|_| Error::processing("models", "the model builder has stopped"))
    }
}
