//! Interactive queries over window stores ([`WindowStoreView`], what
//! `KafkaStreams::window_store` returns): one key over a time range, every key over a time
//! range, on each backend; written, closed, reopened and read again. The same for session
//! stores ([`SessionStoreView`], what `KafkaStreams::session_store` returns).
#![allow(clippy::unwrap_used)]

use ks_engine::runtime::{SessionStoreView, WindowStoreView};
use ks_engine::stores::{
    self, ReadOnlySessionStore, ReadOnlyWindowStore, SessionStore, StoreContext, StoreKind,
    StoreSpec, WindowStore, WindowStoreConfig,
};

fn write(kind: StoreKind, ctx: &StoreContext) {
    let opened = StoreSpec::new("w", kind)
        .with_logging(false)
        .open(ctx, None)
        .unwrap();
    let store = WindowStore::new(
        opened.store.clone(),
        opened.inner.clone(),
        WindowStoreConfig::new(3_600_000, false),
    )
    .unwrap();
    store.put(b"a", 0, Some(b"a0")).unwrap();
    store.put(b"a", 60_000, Some(b"a1")).unwrap();
    store.put(b"a", 120_000, Some(b"a2")).unwrap();
    // "ab" shares a's prefix: a fetch of "a" must not return it.
    store.put(b"ab", 60_000, Some(b"ab1")).unwrap();
    store.put(b"b", 60_000, Some(b"b1")).unwrap();
    store.put(b"b", 0, Some(b"gone")).unwrap();
    store.put(b"b", 0, None).unwrap();
    opened.store.flush().unwrap();
    opened.store.close().unwrap();
}

fn check(view: &WindowStoreView, kind: StoreKind) {
    assert_eq!(
        view.fetch_range(b"a", 0, 60_000).unwrap(),
        vec![(0, b"a0".to_vec()), (60_000, b"a1".to_vec())],
        "{kind}"
    );
    assert_eq!(view.fetch(b"a", 120_000).unwrap(), Some(b"a2".to_vec()));
    assert_eq!(view.fetch(b"b", 0).unwrap(), None, "{kind}: deleted window");
    assert!(view.fetch_range(b"a", 60_001, 119_999).unwrap().is_empty());
    assert!(view.fetch_range(b"a", 10, 0).unwrap().is_empty());
    assert_eq!(
        view.fetch_all(60_000, 60_000).unwrap(),
        vec![
            (b"a".to_vec(), 60_000, b"a1".to_vec()),
            (b"ab".to_vec(), 60_000, b"ab1".to_vec()),
            (b"b".to_vec(), 60_000, b"b1".to_vec()),
        ],
        "{kind}"
    );
    assert_eq!(view.fetch_all(0, i64::MAX).unwrap().len(), 5, "{kind}");
}

#[test]
fn window_queries_by_key_and_time_range_on_every_backend_after_a_reopen() {
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let dir = tempfile::tempdir().unwrap();
        let ctx = StoreContext::new(dir.path(), "app", "0_0", 0);
        write(kind, &ctx);
        let opened = StoreSpec::new("w", kind)
            .with_logging(false)
            .open(&ctx, None)
            .unwrap();
        let view = WindowStoreView::new(stores::read_only(opened.store.clone()));
        if kind == StoreKind::InMemory {
            // Nothing survives a reopen in memory (the changelog restores it): query the
            // store as written instead.
            assert!(view.fetch_all(0, i64::MAX).unwrap().is_empty());
            let opened_again = StoreSpec::new("w2", kind)
                .with_logging(false)
                .open(&ctx, None)
                .unwrap();
            let store = WindowStore::new(
                opened_again.store.clone(),
                opened_again.inner.clone(),
                WindowStoreConfig::new(3_600_000, false),
            )
            .unwrap();
            for (k, t, v) in [
                (&b"a"[..], 0, &b"a0"[..]),
                (b"a", 60_000, b"a1"),
                (b"a", 120_000, b"a2"),
                (b"ab", 60_000, b"ab1"),
                (b"b", 60_000, b"b1"),
            ] {
                store.put(k, t, Some(v)).unwrap();
            }
            check(
                &WindowStoreView::new(stores::read_only(opened_again.store.clone())),
                kind,
            );
            continue;
        }
        check(&view, kind);
    }
}

#[test]
fn session_queries_by_key_and_time_range_on_every_backend_after_a_reopen() {
    for kind in [StoreKind::InMemory, StoreKind::RocksDb, StoreKind::File] {
        let dir = tempfile::tempdir().unwrap();
        let ctx = StoreContext::new(dir.path(), "app", "0_0", 0);
        let open = || {
            StoreSpec::new("s", kind)
                .with_logging(false)
                .open(&ctx, None)
                .unwrap()
        };
        let opened = open();
        let store = SessionStore::new(
            opened.store.clone(),
            opened.inner.clone(),
            WindowStoreConfig::new(3_600_000, false),
        )
        .unwrap();
        store.put(b"a", 1_000, 4_000, b"a1").unwrap();
        store.put(b"a", 10_000, 12_000, b"a2").unwrap();
        store.put(b"ab", 2_000, 3_000, b"ab1").unwrap();
        store.put(b"b", 5_000, 5_000, b"b1").unwrap();
        store.put(b"b", 6_000, 9_000, b"gone").unwrap();
        store.remove(b"b", 6_000, 9_000).unwrap();
        opened.store.flush().unwrap();
        // Persistent backends are read after a reopen; in memory, as written.
        let kv = if kind == StoreKind::InMemory {
            opened.store.clone()
        } else {
            opened.store.close().unwrap();
            open().store
        };
        let view = SessionStoreView::new(stores::read_only(kv));
        // Sessions overlapping [3 000, 11 000]: ends at or after 3 000, starts at or before 11 000.
        assert_eq!(
            view.find_sessions(b"a", 3_000, 11_000).unwrap(),
            vec![
                (b"a".to_vec(), 1_000, 4_000, b"a1".to_vec()),
                (b"a".to_vec(), 10_000, 12_000, b"a2".to_vec()),
            ],
            "{kind}"
        );
        assert!(
            view.find_sessions(b"a", 4_001, 9_999).unwrap().is_empty(),
            "{kind}"
        );
        assert_eq!(
            view.fetch_session(b"a", 10_000, 12_000).unwrap(),
            Some(b"a2".to_vec())
        );
        assert_eq!(
            view.fetch_session(b"b", 6_000, 9_000).unwrap(),
            None,
            "{kind}: removed"
        );
        let all: Vec<_> = view
            .find_all_sessions(0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, s, e, _)| (k, s, e))
            .collect();
        assert_eq!(all.len(), 4, "{kind}: {all:?}");
        assert!(all.contains(&(b"ab".to_vec(), 2_000, 3_000)));
    }
}
