//! A torn write of the file store's log (a crash mid-append: the file cut short, or garbage at
//! its end) is detected on open, never read as data; the store starts empty, says its state is
//! not to be trusted, and the changelog rebuilds it — even though a checkpoint exists.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;

use common::*;
use ks_stores::*;

fn log_path(ctx: &StoreContext, store: &str) -> std::path::PathBuf {
    ctx.store_dir("file", store).unwrap().join("data.log")
}

#[test]
fn truncated_log_is_detected_and_restored_from_the_changelog() {
    let broker = ks_broker::Broker::tansu().unwrap();
    let bootstrap = broker.bootstrap_servers();
    let sink = Arc::new(KafkaChangelogSink::new(bootstrap).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 0);
    let spec = StoreSpec::new(unique("torn"), StoreKind::File);
    let topic = ctx.changelog_topic(&spec.name);
    create_changelog(bootstrap, &topic, 1);

    let opened = spec.open(&ctx, Some(sink.clone())).unwrap();
    for i in 0..300 {
        opened.store.put(&key(i), &value(i, 0)).unwrap();
    }
    for i in 0..300 {
        if i % 2 == 0 {
            opened.store.delete(&key(i)).unwrap();
        }
    }
    opened.store.flush().unwrap();
    let acked = sink.flush().unwrap()[&(topic.clone(), 0)];
    let mut checkpoint = Checkpoint::new();
    checkpoint.set(topic.clone(), 0, acked);
    checkpoint.write(ctx.checkpoint_path().unwrap()).unwrap();
    let expected = opened.store.all().unwrap();
    drop(opened);

    // The crash: the last write reached the disk only in part.
    let path = log_path(&ctx, &spec.name);
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let reopened = spec.open(&ctx, Some(sink.clone())).unwrap();
    assert!(
        matches!(&reopened.local_state, LocalState::Recovered { reason } if reason.contains("torn")),
        "{:?}",
        reopened.local_state
    );
    assert_eq!(
        reopened.store.all().unwrap(),
        vec![],
        "garbage was read as data"
    );
    // The checkpoint is not honoured for a recovered store: everything is replayed.
    assert_eq!(reopened.restore_after(&checkpoint), None);
    let stats = reopened
        .restore(&RestoreConfig::new(bootstrap), &checkpoint)
        .unwrap()
        .unwrap();
    assert_eq!(stats.records, 450);
    assert_eq!(reopened.store.all().unwrap(), expected);
    // The damaged file is kept aside for inspection, and the restored state is persistent.
    assert!(path.with_extension("log.corrupt").is_file());
    drop(reopened);
    let again = spec.open(&ctx, Some(sink)).unwrap();
    assert_eq!(again.local_state, LocalState::Reopened);
    assert_eq!(again.store.all().unwrap(), expected);
}

#[test]
fn every_cut_and_trailing_garbage_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(dir.path(), 0);
    let spec = StoreSpec::new("cuts", StoreKind::File).with_logging(false);
    let opened = spec.open(&ctx, None).unwrap();
    for i in 0..3 {
        opened.store.put(&key(i), &value(i, 0)).unwrap();
    }
    drop(opened);
    let path = log_path(&ctx, "cuts");
    let whole = std::fs::read(&path).unwrap();
    let record = (whole.len() - 8) / 3;
    let boundaries: Vec<usize> = (0..=3).map(|n| 8 + n * record).collect();

    for cut in 0..whole.len() {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let opened = spec.open(&ctx, None).unwrap();
        let entries = opened.store.all().unwrap();
        if boundaries.contains(&cut) {
            // A cut exactly between records looks like a shorter, valid log.
            assert_eq!(opened.local_state, LocalState::Reopened, "cut {cut}");
            assert_eq!(entries.len(), (cut - 8) / record, "cut {cut}");
        } else {
            assert!(!opened.local_state.is_trusted(), "cut {cut} was trusted");
            assert_eq!(entries, vec![], "cut {cut} was read as data");
        }
    }

    std::fs::write(&path, &whole).unwrap();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"\x10\0\0\0garbage")
        .unwrap();
    let opened = spec.open(&ctx, None).unwrap();
    assert!(matches!(opened.local_state, LocalState::Recovered { .. }));
    assert_eq!(opened.store.all().unwrap(), vec![]);
}
