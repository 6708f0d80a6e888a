//! Actor mode, kill -9 and restart: the actor comes back with its model and statistics from
//! its files before any model is sent again (the model topic is read with a committed group,
//! so old models are not replayed); a truncated state file is reported, not loaded.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use std::time::Duration;

#[test]
fn killed_actor_restores_model_and_stats_and_rejects_a_truncated_file() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = env.spawn("actor", dir.path(), &[]);
    let tree = env.publish_model(TREE);
    assert!(wait_until(Duration::from_secs(20), || http_get(
        &addr,
        "/state/wine"
    )
    .0 == 200));
    env.publish_records(0, 30);
    assert_eq!(env.wait_results(30, Duration::from_secs(25)).len(), 30);
    // Statistics are written at most a second after the records that changed them.
    let stats_file = ks_reactive::actor::actor_dir(dir.path(), "wine").join("stats.bin");
    assert!(wait_until(Duration::from_secs(5), || {
        let (_, body) = http_get(&addr, "/state/wine");
        body["usage"] == 30 && stats_file.is_file()
    }));
    std::thread::sleep(Duration::from_millis(1500));
    let (_, before) = http_get(&addr, "/state/wine");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, addr) = env.spawn("actor", dir.path(), &[]);
    // Right away: before the model group has even joined, so from the files alone.
    assert_eq!(http_get(&addr, "/models").1, serde_json::json!(["wine"]));
    let (status, after) = http_get(&addr, "/state/wine");
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["name"], tree.as_str());
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["usage"], 30);
    assert_eq!(after, before);
    // And it serves with the restored model.
    env.publish_records(30, 5);
    let results = env.wait_results(35, Duration::from_secs(20));
    assert!(results.len() >= 35);
    assert!(results
        .iter()
        .all(|r| r.model.as_deref() == Some(tree.as_str())));
    env.check_results(&results, TREE);
    child.kill().unwrap();
    child.wait().unwrap();

    // Truncate the statistics file: the restart reports it and does not load it.
    let bytes = std::fs::read(&stats_file).unwrap();
    std::fs::write(&stats_file, &bytes[..bytes.len() / 2]).unwrap();
    let (mut child, addr) = env.spawn("actor", dir.path(), &[]);
    let (status, body) = http_get(&addr, "/state/wine");
    assert_eq!(status, 200, "{body}");
    // The model is intact and serves; its statistics start over instead of being garbage.
    assert_eq!(body["name"], tree.as_str());
    assert_eq!(body["usage"], 0);
    let reason = body["restore_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("truncated") && reason.contains("stats.bin"),
        "{body}"
    );
    // Truncate the model file too: nothing is loaded and the reason is reported.
    child.kill().unwrap();
    child.wait().unwrap();
    let model_file = ks_reactive::actor::actor_dir(dir.path(), "wine").join("model.bin");
    let bytes = std::fs::read(&model_file).unwrap();
    std::fs::write(&model_file, &bytes[..bytes.len() - 10]).unwrap();
    let (mut child, addr) = env.spawn("actor", dir.path(), &[]);
    let (status, body) = http_get(&addr, "/state/wine");
    assert_eq!(status, 404, "{body}");
    let reason = body["restore_error"].as_str().unwrap_or_default();
    assert!(reason.contains("truncated"), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
}
