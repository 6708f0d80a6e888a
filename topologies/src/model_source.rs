//! The global processor of the model topic: every instance decodes every model message and
//! queues it for the builder. It also keeps the newest descriptor per data type in the global
//! `models` store (without the model bytes), for queries.

use ks_engine::{Error, Processor, ProcessorContext, Record, Result};
use ks_proto::Message;
use ks_serving::descriptor::{self, Rejected};
use ks_serving::{BuildFailures, BuildJob, FailureKind, FailureReport, Origin};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// The global store holding the newest descriptor per data type.
pub const MODELS_STORE: &str = "models";

/// The global processor of the model topic.
pub struct ModelSource {
    /// Where decoded models go to be built.
    pub builder: SyncSender<BuildJob>,
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
        // The descriptor without its bytes, for /models and for operators reading the store.
        ctx.store(MODELS_STORE)?
            .put(
                decoded.summary.data_type.as_bytes(),
                &decoded.summary.encode_to_vec(),
            )
            .map_err(Error::from)?;
        let job = BuildJob {
            update: decoded.update,
            origin,
        };
        self.builder
            .send(job)
            .map_err(|_| Error::processing("models", "the model builder has stopped"))
    }
}
