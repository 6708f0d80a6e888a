//! Window and session stores over every backend: write → drop → reopen keeps the windows
//! (persistent kinds), the changelog alone rebuilds them (Kafka Streams' windowed key layout on
//! the wire), and retention keeps the store bounded over a long run.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::sync::Arc;

use common::*;
use ks_stores::*;

const HOUR: i64 = 3_600_000;

fn config() -> WindowStoreConfig {
    WindowStoreConfig::new(HOUR, false)
}

fn write_windows(w: &WindowStore) {
    for i in 0..50u32 {
        for win in 0..4i64 {
            w.put(&key(i), win * 10_000, Some(&value(i, win as u32)))
                .unwrap();
        }
    }
    // Removes and overwrites.
    for i in (0..50u32).step_by(5) {
        w.put(&key(i), 0, None).unwrap();
        w.put(&key(i), 10_000, Some(b"over")).unwrap();
    }
}

fn assert_windows(w: &WindowStore) {
    assert_eq!(w.fetch(&key(0), 0).unwrap(), None);
    assert_eq!(w.fetch(&key(0), 10_000).unwrap(), Some(b"over".to_vec()));
    assert_eq!(w.fetch(&key(1), 0).unwrap(), Some(value(1, 0)));
    let range = w.fetch_range(&key(7), 5_000, 30_000).unwrap();
    assert_eq!(
        range,
        vec![
            (10_000, value(7, 1)),
            (20_000, value(7, 2)),
            (30_000, value(7, 3))
        ]
    );
    let all = w.fetch_all(20_000, 20_000).unwrap();
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|p| p[0].0 < p[1].0), "not in key order");
}

fn write_sessions(s: &SessionStore) {
    for i in 0..30u32 {
        s.put(&key(i), 1_000, 5_000, b"first").unwrap();
        s.put(&key(i), 20_000, 20_000, b"second").unwrap();
    }
    // A merge: two sessions replaced by one.
    s.remove(&key(3), 1_000, 5_000).unwrap();
    s.remove(&key(3), 20_000, 20_000).unwrap();
    s.put(&key(3), 1_000, 20_000, b"merged").unwrap();
}

fn assert_sessions(s: &SessionStore) {
    let found = s.find_sessions(&key(3), 0, 30_000).unwrap();
    assert_eq!(found, vec![(key(3), 1_000, 20_000, b"merged".to_vec())]);
    let found = s.find_sessions(&key(4), 4_000, 10_000).unwrap();
    assert_eq!(found, vec![(key(4), 1_000, 5_000, b"first".to_vec())]);
    assert_eq!(
        s.fetch_session(&key(9), 20_000, 20_000).unwrap(),
        Some(b"second".to_vec())
    );
    assert_eq!(s.find_all_sessions(6_000, 30_000).unwrap().len(), 30);
}

#[test]
fn persistent_window_and_session_stores_keep_data_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 1);
    for kind in PERSISTENT {
        let wspec = StoreSpec::new(format!("win-{kind}"), kind).with_logging(false);
        let sspec = StoreSpec::new(format!("ses-{kind}"), kind).with_logging(false);
        {
            let w = wspec
                .open(&ctx, None)
                .unwrap()
                .window_store(config())
                .unwrap();
            write_windows(&w);
            assert_windows(&w);
            let s = sspec
                .open(&ctx, None)
                .unwrap()
                .session_store(config())
                .unwrap();
            write_sessions(&s);
            // Dropped without flush or close.
        }
        let opened = wspec.open(&ctx, None).unwrap();
        assert_eq!(opened.local_state, LocalState::Reopened, "{kind}");
        assert_windows(&opened.window_store(config()).unwrap());
        let opened = sspec.open(&ctx, None).unwrap();
        assert_eq!(opened.local_state, LocalState::Reopened, "{kind}");
        assert_sessions(&opened.session_store(config()).unwrap());
    }
}

#[test]
fn in_memory_window_store_starts_empty_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 0);
    let spec = StoreSpec::new("win-mem", StoreKind::InMemory).with_logging(false);
    write_windows(
        &spec
            .open(&ctx, None)
            .unwrap()
            .window_store(config())
            .unwrap(),
    );
    let w = spec
        .open(&ctx, None)
        .unwrap()
        .window_store(config())
        .unwrap();
    assert_eq!(w.fetch_all(0, i64::MAX).unwrap(), vec![]);
}

#[test]
fn every_backend_restores_windows_and_sessions_from_the_changelog() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ctx(dir.path(), 2);
        let sink = Arc::new(MemoryChangelogSink::default());
        let wspec = StoreSpec::new("win", kind);
        let sspec = StoreSpec::new("ses", kind);
        let w = wspec
            .open(&ctx, Some(sink.clone()))
            .unwrap()
            .window_store(config())
            .unwrap();
        write_windows(&w);
        let s = sspec
            .open(&ctx, Some(sink.clone()))
            .unwrap()
            .session_store(config())
            .unwrap();
        write_sessions(&s);
        drop((w, s));

        let records = sink.records();
        // Kafka Streams' changelog keys: key + 8-byte start + 4-byte seqnum for windows.
        let (topic, partition, (k, v)) = &records[0];
        assert_eq!(topic, "storetest-win-changelog");
        assert_eq!(*partition, 2);
        assert_eq!(k, &window_store_key(&key(0), 0, 0));
        assert_eq!(v.as_deref(), Some(&value(0, 0)[..]));
        // Session: key + 8-byte end + 8-byte start; the merge's removals are tombstones.
        let merged = session_store_key(&key(3), 1_000, 20_000);
        assert_eq!(
            &merged[merged.len() - 16..merged.len() - 8],
            &20_000i64.to_be_bytes()
        );
        assert!(records
            .iter()
            .any(|(_, _, (k, v))| k == &session_store_key(&key(3), 1_000, 5_000) && v.is_none()));

        // Local state gone: rebuild from the changelog records alone.
        wspec.wipe(&ctx).unwrap();
        sspec.wipe(&ctx).unwrap();
        let wo = wspec.open(&ctx, Some(sink.clone())).unwrap();
        let so = sspec.open(&ctx, Some(sink.clone())).unwrap();
        let of = |t: &str| -> Vec<ChangelogRecord> {
            records
                .iter()
                .filter(|(topic, _, _)| topic == t)
                .map(|(_, _, r)| r.clone())
                .collect()
        };
        wo.inner
            .restore_batch(&of("storetest-win-changelog"))
            .unwrap();
        so.inner
            .restore_batch(&of("storetest-ses-changelog"))
            .unwrap();
        assert_windows(&wo.window_store(config()).unwrap());
        assert_sessions(&so.session_store(config()).unwrap());
    }
}

#[test]
fn windows_restore_from_a_kafka_changelog() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let sink = Arc::new(KafkaChangelogSink::new(bootstrap).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 0);
    let spec = StoreSpec::new(unique("win-kafka"), StoreKind::RocksDb);
    create_changelog(bootstrap, &ctx.changelog_topic(&spec.name), 1);
    let w = spec
        .open(&ctx, Some(sink.clone()))
        .unwrap()
        .window_store(config())
        .unwrap();
    write_windows(&w);
    w.store().flush().unwrap();
    sink.flush().unwrap();
    drop(w);
    spec.wipe(&ctx).unwrap();
    let opened = spec.open(&ctx, Some(sink.clone())).unwrap();
    let stats = opened
        .restore(&RestoreConfig::new(bootstrap), &Checkpoint::new())
        .unwrap()
        .unwrap();
    assert_eq!(stats.records, 220);
    assert_windows(&opened.window_store(config()).unwrap());
}

#[test]
fn retention_keeps_every_backend_bounded_over_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 3);
    for kind in KINDS {
        let spec = StoreSpec::new(format!("ret-{kind}"), kind).with_logging(false);
        let opened = spec.open(&ctx, None).unwrap();
        // 10 s windows kept 1 min, expired every 30 s of stream time.
        let cfg = WindowStoreConfig::new(60_000, false).with_segment_interval(30_000);
        let w = opened.window_store(cfg).unwrap();
        let ses = spec_session(&ctx, kind);
        let mut most = 0;
        for t in 0..2_000i64 {
            let start = t * 1_000 / 10_000 * 10_000;
            for k in 0..10u32 {
                w.put(&key(k), start, Some(b"v")).unwrap();
                ses.put(&key(k), t * 1_000, t * 1_000 + 500, b"s").unwrap();
            }
            most = most.max(opened.inner.all().unwrap().len());
        }
        // At most retention + one segment interval of windows: (60 + 30) / 10 + 1 per key.
        assert!(most <= 10 * 10, "{kind}: {most} entries");
        assert!(
            w.fetch_range(&key(0), 0, i64::MAX).unwrap().len() == 6,
            "{kind}"
        );
        // A write past retention is dropped, and said so.
        assert!(!w.put(&key(0), 0, Some(b"late")).unwrap(), "{kind}");
        let found = ses.find_sessions(&key(0), 0, i64::MAX).unwrap();
        assert!(found.len() <= 61, "{kind}: {} sessions", found.len());
        assert!(ses.store().all().unwrap().len() <= 10 * 91, "{kind}");
    }
}

fn spec_session(ctx: &StoreContext, kind: StoreKind) -> SessionStore {
    StoreSpec::new(format!("ret-ses-{kind}"), kind)
        .with_logging(false)
        .open(ctx, None)
        .unwrap()
        .session_store(WindowStoreConfig::new(60_000, false).with_segment_interval(30_000))
        .unwrap()
}
