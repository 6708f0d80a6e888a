//! The processors the DSL operators compile to: each operator is a closure over its codecs and
//! the user's function, run by one generic [`Processor`].

use super::serdes::Codec;
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::Record;
use crate::{Error, Result};
use std::sync::Arc;

type ProcessFn = dyn Fn(&mut ProcessorContext<'_>, Record) -> Result<()> + Send + Sync;

struct FnProcessor(Arc<ProcessFn>);

impl Processor for FnProcessor {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        (self.0)(ctx, record)
    }
}

/// A supplier whose processors all share `f`: the DSL's operators keep their state in stores,
/// never in the processor.
pub(crate) fn supplier(
    f: impl Fn(&mut ProcessorContext<'_>, Record) -> Result<()> + Send + Sync + 'static,
) -> ProcessorSupplier {
    let f: Arc<ProcessFn> = Arc::new(f);
    Arc::new(move || Box::new(FnProcessor(f.clone())) as Box<dyn Processor>)
}

pub(crate) fn pass_through() -> ProcessorSupplier {
    supplier(|ctx, r| {
        ctx.forward(r);
        Ok(())
    })
}

/// A decoding failure as the runtime's deserialization handler expects it: where the source
/// record came from (nothing during punctuation) and which node could not read it.
pub(crate) fn deserialization(
    ctx: &ProcessorContext<'_>,
    what: &str,
    e: ks_stores::Error,
) -> Error {
    undecodable(ctx, format_args!("could not read the {what}: {e}"))
}

/// A record this node cannot read, `problem` saying why (after the node's name).
pub(crate) fn undecodable(ctx: &ProcessorContext<'_>, problem: std::fmt::Arguments<'_>) -> Error {
    let meta = ctx.record_metadata();
    Error::Deserialization {
        topic: meta.map(|m| m.topic.clone()).unwrap_or_default(),
        partition: meta.map_or(-1, |m| m.partition),
        offset: meta.map_or(-1, |m| m.offset),
        reason: format!("{} {problem}", ctx.processor_name()),
    }
}

pub(crate) fn decode<T: 'static>(
    ctx: &ProcessorContext<'_>,
    codec: &Codec<T>,
    bytes: Option<&[u8]>,
    what: &str,
) -> Result<T> {
    codec
        .decode(bytes)
        .map_err(|e| deserialization(ctx, what, e))
}

/// Encoding the user's own output failed: a processing error of this node, not bad input.
pub(crate) fn encode<T: 'static>(
    ctx: &ProcessorContext<'_>,
    codec: &Codec<T>,
    item: &T,
    what: &str,
) -> Result<Option<Vec<u8>>> {
    codec.encode(item).map_err(|e| {
        Error::processing(
            ctx.processor_name(),
            format!("cannot encode the {what}: {e}"),
        )
    })
}
