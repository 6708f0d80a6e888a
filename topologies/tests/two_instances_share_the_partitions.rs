//! Two ks-server instances on different ports over 4 data partitions: the partitions split,
//! both score, each lists both; stop one and the other takes every partition (restoring the
//! stopped one's statistics from the changelog) and keeps scoring.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod common;

use common::*;
use ks_topologies::topology::StoreVariant;
use std::time::Duration;

fn local_usage(s: &ks_topologies::server::Server) -> u64 {
    http_get(s, "/state/value?local=true").1["usage"]
        .as_u64()
        .unwrap_or(0)
}

/// Records counted over every window and model of a `/state/windows` answer.
fn window_count(v: serde_json::Value) -> u64 {
    v["windows"].as_array().map_or(0, |ws| {
        ws.iter()
            .filter_map(|w| w["models"].as_object())
            .flat_map(|m| m.values())
            .filter_map(|m| m["count"].as_u64())
            .sum()
    })
}

fn partitions_of(v: &serde_json::Value) -> usize {
    v["partitions"].as_array().map_or(0, Vec::len)
}

#[test]
fn two_instances_split_score_and_hand_over() {
    let env = Env::new();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = env.start(StoreVariant::Standard, dir_a.path());
    assert!(a
        .with_streams(|s| s.wait_for_assignment(Duration::from_secs(30), |p| p.len() == 4))
        .unwrap());
    let b = env.start(StoreVariant::Standard, dir_b.path());

    // Both list both, with the partitions split between them.
    for server in [&a, &b] {
        let split = wait_until(Duration::from_secs(60), || {
            let (_, list) = http_get(server, "/state/instances");
            let list = list.as_array().cloned().unwrap_or_default();
            list.len() == 2
                && list.iter().all(|i| partitions_of(i) > 0)
                && list.iter().map(partitions_of).sum::<usize>() == 4
        });
        assert!(split, "{:?}", http_get(server, "/state/instances"));
    }
    let ports: Vec<u64> = http_get(&a, "/state/instances")
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["port"].as_u64().unwrap())
        .collect();
    assert!(
        ports.contains(&(a.http_addr().port() as u64))
            && ports.contains(&(b.http_addr().port() as u64))
    );

    let name = env.publish_model("winequalityDesisionTreeRegression.pmml");
    for server in [&a, &b] {
        assert!(wait_until(Duration::from_secs(30), || {
            http_get(server, "/models")
                .1
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["name"] == name.as_str()))
        }));
    }
    // Keyless records spread over the partitions in producer batches: publish in several
    // batches so that both instances get some.
    for i in 0..8 {
        env.publish_records(i * 25, 25);
        std::thread::sleep(Duration::from_millis(50));
    }
    let results = env.wait_results(200, Duration::from_secs(60));
    assert_eq!(results.iter().filter(|r| r.model.is_some()).count(), 200);

    // Both scored: each has local statistics; either answers the merged total.
    assert!(wait_until(Duration::from_secs(10), || local_usage(&a)
        + local_usage(&b)
        == 200));
    assert!(
        local_usage(&a) > 0 && local_usage(&b) > 0,
        "a {} b {}",
        local_usage(&a),
        local_usage(&b)
    );
    assert_eq!(http_get(&a, "/state/value").1["usage"], 200);
    assert_eq!(http_get(&b, "/state/value").1["usage"], 200);
    // The score windows too: each instance holds part, either answers the whole.
    let local_windows = |s| window_count(http_get(s, "/state/windows/wine?local=true").1);
    assert!(wait_until(Duration::from_secs(10), || local_windows(&a)
        + local_windows(&b)
        == 200));
    assert!(local_windows(&a) > 0 && local_windows(&b) > 0);
    for s in [&a, &b] {
        let (status, v) = http_get(s, "/state/windows/wine");
        assert_eq!(status, 200, "{v}");
        assert!(v.get("unreachable").is_none(), "{v}");
        assert_eq!(window_count(v), 200);
    }

    // Stop A: B takes every partition, restores A's statistics and keeps scoring.
    a.shutdown().unwrap();
    assert!(b
        .with_streams(|s| s.wait_for_assignment(Duration::from_secs(60), |p| p.len() == 4))
        .unwrap());
    env.publish_records(200, 50);
    assert!(
        wait_until(Duration::from_secs(60), || local_usage(&b) == 250),
        "b usage {}",
        local_usage(&b)
    );
    let (_, list) = http_get(&b, "/state/instances");
    assert!(
        wait_until(Duration::from_secs(30), || http_get(&b, "/state/instances")
            .1
            .as_array()
            .map(Vec::len)
            == Some(1)),
        "{list:?}"
    );
    b.shutdown().unwrap();
}
