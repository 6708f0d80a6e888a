//! Key-value aggregates behind the task's record cache ([`crate::cache`]): the processors of
//! `KGroupedStream` and `KGroupedTable` aggregates read their current aggregate through
//! [`CachedKv`] and put the next one into it; the cache writes the store and forwards
//! `(new, old)` when it flushes (on commit, on close) or evicts. With the cache off (0 bytes)
//! every put is written and forwarded at once, as before there was a cache.

use super::derive;
use super::table_ops::set_old;
use crate::cache::{CachedEntry, RecordCache};
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::{Header, Record};
use crate::Result;
use std::sync::Arc;

/// One task's view of an aggregate store behind its record cache.
pub(crate) struct CachedKv {
    store: String,
    cache: Option<RecordCache>,
}

impl CachedKv {
    fn new(store: String) -> CachedKv {
        CachedKv { store, cache: None }
    }

    // The cache, made from the task's budget on first use.
    fn cache(&mut self, ctx: &ProcessorContext<'_>) -> &mut RecordCache {
        self.cache.get_or_insert_with(|| ctx.record_cache())
    }

    /// The current bytes of `key`: its dirty entry, else the store's.
    pub(crate) fn get(
        &mut self,
        ctx: &ProcessorContext<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        if let Some(e) = self.cache(ctx).get(key) {
            return Ok(e.value.clone());
        }
        Ok(ctx.store(&self.store)?.get(key)?)
    }

    /// Makes `value` the aggregate of `key` (`prior`: what [`CachedKv::get`] returned), to be
    /// forwarded with `timestamp` and `headers` now (no cache, or evicted) or at the next flush.
    pub(crate) fn put(
        &mut self,
        ctx: &mut ProcessorContext<'_>,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        prior: Option<Vec<u8>>,
        timestamp: i64,
        headers: Vec<Header>,
    ) -> Result<()> {
        let entry = CachedEntry {
            value,
            old: prior,
            timestamp,
            headers,
        };
        let cache = self.cache(ctx);
        let cached = cache.enabled();
        let out = cache.put(key, entry);
        self.emit(ctx, out, cached)
    }

    /// Writes and forwards every dirty entry, oldest first.
    pub(crate) fn flush(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        let Some(cache) = self.cache.as_mut() else {
            return Ok(());
        };
        if cache.is_empty() {
            return Ok(());
        }
        let out = cache.drain();
        self.emit(ctx, out, true)
    }

    fn emit(
        &self,
        ctx: &mut ProcessorContext<'_>,
        entries: Vec<(Vec<u8>, CachedEntry)>,
        cached: bool,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let store = ctx.store(&self.store)?;
        for (key, e) in entries {
            match &e.value {
                Some(v) => store.put(&key, v)?,
                None => {
                    store.delete(&key)?;
                }
            }
            // Kafka Streams' cache flush forwards nothing for a key that was absent and still
            // is; without a cache every update is forwarded.
            if cached && e.value.is_none() && e.old.is_none() {
                continue;
            }
            let template = Record {
                key: None,
                value: None,
                timestamp: e.timestamp,
                headers: e.headers,
            };
            let mut out = derive(&template, Some(key), e.value);
            set_old(&mut out, e.old);
            ctx.forward(out);
        }
        Ok(())
    }
}

type CachedFn =
    dyn Fn(&mut ProcessorContext<'_>, Record, &mut CachedKv) -> Result<()> + Send + Sync;

struct CachedProcessor {
    f: Arc<CachedFn>,
    kv: CachedKv,
}

impl Processor for CachedProcessor {
    fn process(&mut self, ctx: &mut ProcessorContext<'_>, record: Record) -> Result<()> {
        (self.f)(ctx, record, &mut self.kv)
    }

    fn flush(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.kv.flush(ctx)
    }

    fn close(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<()> {
        self.kv.flush(ctx)
    }
}

/// A supplier of processors running `f` over `store` behind a record cache of their own.
pub(crate) fn cached_supplier(
    store: String,
    f: impl Fn(&mut ProcessorContext<'_>, Record, &mut CachedKv) -> Result<()> + Send + Sync + 'static,
) -> ProcessorSupplier {
    let f: Arc<CachedFn> = Arc::new(f);
    Arc::new(move || {
        Box::new(CachedProcessor {
            f: f.clone(),
            kv: CachedKv::new(store.clone()),
        }) as Box<dyn Processor>
    })
}
