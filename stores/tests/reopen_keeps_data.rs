//! Persistent stores keep their data across drop -> reopen; the in-memory one starts empty.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::Arc;

use common::*;
use ks_stores::*;

fn write_some(store: &dyn KeyValueStore) {
    for i in 0..200 {
        store.put(&key(i), &value(i, 0)).unwrap();
    }
    for i in 0..200 {
        if i % 3 == 0 {
            store.delete(&key(i)).unwrap();
        } else if i % 3 == 1 {
            store.put(&key(i), &value(i, 1)).unwrap();
        }
    }
}

fn assert_written(store: &dyn ReadOnlyKeyValueStore) {
    for i in 0..200 {
        let expected = match i % 3 {
            0 => None,
            1 => Some(value(i, 1)),
            _ => Some(value(i, 0)),
        };
        assert_eq!(store.get(&key(i)).unwrap(), expected, "key {i}");
    }
    let all = store.all().unwrap();
    assert_eq!(all.len(), 133);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "not in key order");
    let range = store.range(Some(&key(10)), Some(&key(20))).unwrap();
    assert_eq!(range.first().map(|kv| kv.0.clone()), Some(key(10)));
    assert_eq!(range.last().map(|kv| kv.0.clone()), Some(key(20)));
}

#[test]
fn persistent_stores_keep_data_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 1);
    for kind in PERSISTENT {
        let spec = StoreSpec::new(format!("reopen-{kind}"), kind).with_logging(false);
        {
            let opened = spec.open(&ctx, None).unwrap();
            assert_eq!(opened.local_state, LocalState::Fresh, "{kind}");
            write_some(opened.store.as_ref());
            // Dropped without flush or close: drop must not lose what was written.
        }
        let opened = spec.open(&ctx, None).unwrap();
        assert_eq!(opened.local_state, LocalState::Reopened, "{kind}");
        assert_written(opened.read_only().as_ref());
    }
}

#[test]
fn persistent_stores_keep_data_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 2);
    for kind in PERSISTENT {
        let spec = StoreSpec::new(format!("close-{kind}"), kind).with_logging(false);
        let opened = spec.open(&ctx, None).unwrap();
        write_some(opened.store.as_ref());
        opened.store.flush().unwrap();
        opened.store.close().unwrap();
        assert!(matches!(
            opened.store.get(&key(1)),
            Err(Error::StoreClosed(_))
        ));
        // Reopening while the closed handle is still alive works: close released the files.
        let reopened = spec.open(&ctx, None).unwrap();
        assert_eq!(reopened.local_state, LocalState::Reopened, "{kind}");
        assert_written(reopened.store.as_ref());
    }
}

#[test]
fn in_memory_store_starts_empty_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 0);
    let spec = StoreSpec::new("mem", StoreKind::InMemory).with_logging(false);
    {
        let opened = spec.open(&ctx, None).unwrap();
        write_some(opened.store.as_ref());
        assert_written(opened.store.as_ref());
    }
    let opened = spec.open(&ctx, None).unwrap();
    assert_eq!(opened.local_state, LocalState::Fresh);
    assert!(!opened.local_state.is_trusted());
    assert_eq!(opened.store.approximate_num_entries().unwrap(), 0);
}

#[test]
fn wiped_store_reopens_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 3);
    for kind in PERSISTENT {
        let spec = StoreSpec::new(format!("wipe-{kind}"), kind).with_logging(false);
        write_some(spec.open(&ctx, None).unwrap().store.as_ref());
        spec.wipe(&ctx).unwrap();
        let opened = spec.open(&ctx, None).unwrap();
        assert_eq!(opened.local_state, LocalState::Fresh, "{kind}");
        assert_eq!(opened.store.all().unwrap(), vec![], "{kind}");
    }
}

#[test]
fn queries_read_while_the_task_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 4);
    for kind in KINDS {
        let spec = StoreSpec::new(format!("concurrent-{kind}"), kind).with_logging(false);
        let opened = spec.open(&ctx, None).unwrap();
        let writer: Arc<dyn KeyValueStore> = opened.store.clone();
        let view = opened.read_only();
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..2000 {
                    writer.put(&key(i), &value(i, 0)).unwrap();
                }
            });
            for _ in 0..2 {
                let view = view.clone();
                s.spawn(move || {
                    let mut last = 0;
                    while last < 2000 {
                        let n = view.all().unwrap().len();
                        assert!(n >= last, "{kind}: entries went from {last} to {n}");
                        last = n;
                    }
                });
            }
        });
    }
}
