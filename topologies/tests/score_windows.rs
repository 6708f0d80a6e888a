//! `GET /state/windows/{dataType}?from=&to=`: one-minute tumbling windows of scores by event
//! time, per model (count, mean prediction, mean scoring µs), kept in a window store per task,
//! merged over the tasks, bounded by `from`/`to`, kept across a restart and restored from the
//! changelog onto an empty state dir.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_proto::Message;
use ks_serving::windows::{window_start, WINDOW_MS};
use ks_topologies::server::Server;
use ks_topologies::topology::StoreVariant;
use std::collections::BTreeMap;
use std::time::Duration;

const MODEL: &str = "winequalityDesisionTreeRegression.pmml";

/// Window start → (records, sum of predictions).
type Expected = BTreeMap<i64, (u64, f64)>;

fn windows(server: &Server, query: &str) -> (u16, serde_json::Value) {
    http_get(server, &format!("/state/windows/wine{query}"))
}

fn total(v: &serde_json::Value) -> u64 {
    v["windows"].as_array().map_or(0, |ws| {
        ws.iter()
            .flat_map(|w| w["models"].as_object().unwrap().values())
            .map(|m| m["count"].as_u64().unwrap())
            .sum()
    })
}

fn assert_windows(v: &serde_json::Value, expected: &Expected, name: &str) {
    let ws = v["windows"].as_array().unwrap();
    let starts: Vec<i64> = ws.iter().map(|w| w["start"].as_i64().unwrap()).collect();
    assert_eq!(starts, expected.keys().copied().collect::<Vec<_>>(), "{v}");
    for w in ws {
        let start = w["start"].as_i64().unwrap();
        assert_eq!(w["end"].as_i64().unwrap(), start + WINDOW_MS);
        let (count, sum) = expected[&start];
        let m = &w["models"][name];
        assert_eq!(m["count"].as_u64(), Some(count), "{w}");
        assert_eq!(m["predicted"].as_u64(), Some(count), "{w}");
        let mean = m["mean_prediction"].as_f64().unwrap();
        let want = sum / count as f64;
        assert!(
            (mean - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{mean} vs {want}"
        );
        assert!(m["mean_duration_us"].as_f64().unwrap() > 0.0, "{w}");
    }
}

#[test]
fn score_windows_are_served_merged_bounded_and_survive_restart_and_restore() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let server = env.start(StoreVariant::Standard, dir.path());
    let name = env.publish_model(MODEL);
    assert!(wait_until(Duration::from_secs(60), || http_get(
        &server, "/models"
    )
    .1
    .to_string()
    .contains(&name)));

    // Records in three windows (the third after an empty one), spread over the 4 partitions,
    // so each window is counted by several tasks and the answer must add them up.
    let model = model(MODEL);
    let rows = wine_rows();
    let t0 = window_start(ks_serving::now_ms()) - 10 * WINDOW_MS;
    let mut expected = Expected::new();
    let mut i = 0usize;
    for (window, n) in [(0, 20), (1, 25), (3, 15)] {
        for j in 0..n {
            let ts = t0 + window * WINDOW_MS + j * 1_000;
            let row = &rows[i % rows.len()];
            env.publisher
                .send_at(
                    &env.topics.data,
                    (i % 4) as i32,
                    None,
                    &row.encode_to_vec(),
                    ts,
                )
                .unwrap();
            let p = expected_prediction(&model, row).as_f64().unwrap();
            let e = expected.entry(window_start(ts)).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += p;
            i += 1;
        }
    }
    env.publisher.flush(Duration::from_secs(10)).unwrap();

    let all = format!("?from={t0}&to={}", t0 + 3 * WINDOW_MS);
    assert!(
        wait_until(Duration::from_secs(60), || total(&windows(&server, &all).1)
            == 60),
        "{}",
        windows(&server, &all).1
    );
    let (status, v) = windows(&server, &all);
    assert_eq!(status, 200);
    assert_eq!(v["window_ms"], WINDOW_MS);
    assert_windows(&v, &expected, &name);
    // No bounds: every window kept.
    assert_windows(&windows(&server, "").1, &expected, &name);
    // Bounds are on the window start, both inclusive.
    let one = format!("?from={}&to={}", t0 + WINDOW_MS, t0 + WINDOW_MS);
    let (_, v) = windows(&server, &one);
    assert_eq!(v["windows"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["windows"][0]["start"].as_i64(), Some(t0 + WINDOW_MS));
    let (_, v) = windows(&server, &format!("?to={}", t0 - 1));
    assert_eq!(v["windows"].as_array().unwrap().len(), 0, "{v}");
    // Bad bounds are the caller's error.
    for bad in [
        "?from=soon",
        "?to=1.5",
        &format!("?from={}&to={t0}", t0 + 1),
    ] {
        let (status, v) = windows(&server, bad);
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    server.shutdown().unwrap();

    // A server on `state_dir` serves the same windows once it is back.
    let served_again = |state_dir: &std::path::Path| {
        let server = env.start(StoreVariant::Standard, state_dir);
        assert!(
            wait_until(Duration::from_secs(60), || windows(&server, &all).0 == 200
                && total(&windows(&server, &all).1) == 60),
            "{}",
            windows(&server, &all).1
        );
        assert_windows(&windows(&server, &all).1, &expected, &name);
        server.shutdown().unwrap();
    };
    // Restarted on the same state dir: the windows are still there.
    served_again(dir.path());
    // On an empty state dir: restored from the changelog.
    let empty = tempfile::tempdir().unwrap();
    served_again(empty.path());
}
