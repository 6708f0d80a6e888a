//! The checked-in OpenAPI document (`topologies/api/openapi.json`) and the served routes agree:
//! the same paths, GET only, every answer's status declared, and the served `/openapi.json`
//! is the checked-in file.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_serving::ServingStats;
use ks_topologies::http::{self, Route, OPENAPI_JSON, ROUTE_TEMPLATES};
use ks_topologies::queries::{Health, InstanceInfo, MetricsSnapshot, ModelInfo, ServingQueries};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

struct Fake;

impl ServingQueries for Fake {
    fn local_stats(&self, _: &str) -> Option<ServingStats> {
        let mut s = ServingStats::new("tree", "d", "PMML", "0:1", 1);
        s.record(10.0);
        Some(s)
    }
    fn instances(&self) -> Vec<InstanceInfo> {
        Vec::new()
    }
    fn models(&self) -> Vec<ModelInfo> {
        Vec::new()
    }
    fn health(&self) -> Health {
        Health {
            healthy: true,
            state: "Running".into(),
            broker: "reachable".into(),
        }
    }
    fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot::default()
    }
}

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).unwrap()
}

fn concrete(template: &str) -> String {
    template.replace("{dataType}", "wine")
}

async fn start() -> SocketAddr {
    let (addr, _) = http::serve(Arc::new(Fake), "127.0.0.1:0".parse().unwrap(), async {
        std::future::pending::<()>().await
    })
    .await
    .unwrap();
    addr
}

#[test]
fn the_document_lists_exactly_the_routes() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = ROUTE_TEMPLATES.iter().copied().collect();
    assert_eq!(documented, served, "document and routes disagree");
    for t in ROUTE_TEMPLATES {
        let route = Route::parse("GET", &concrete(t), None)
            .unwrap_or_else(|e| panic!("{t} is documented but not routed: {e:?}"));
        if *t != "/state/value" {
            assert_eq!(route.template(), *t);
        }
        let methods: Vec<&String> = doc["paths"][*t].as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{t}: only GET is served");
    }
}

#[tokio::test]
async fn every_answer_is_declared_and_the_served_document_is_the_checked_in_one() {
    let addr = start().await;
    let doc = document();
    for t in ROUTE_TEMPLATES {
        let (status, body) = http::get(addr, &concrete(t)).await.unwrap();
        let declared = &doc["paths"][*t]["get"]["responses"][status.to_string()];
        assert!(
            !declared.is_null(),
            "GET {t} answered {status}, not in the document"
        );
        if *t == "/openapi.json" {
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), doc);
        }
    }
    // Paths outside the document are 404, and other methods 405 (undocumented, so refused).
    assert_eq!(http::get(addr, "/nope").await.unwrap().0, 404);
    assert_eq!(
        Route::parse("POST", "/models", None).unwrap_err().status,
        405
    );
}
