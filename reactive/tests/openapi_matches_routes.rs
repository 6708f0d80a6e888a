//! as-server's checked-in OpenAPI document (`reactive/api/openapi.json`) and its served routes
//! agree: the same paths, GET only, every answer's status declared, the served
//! `/openapi.json` is the checked-in file; and the dashboard's page and data are served.
#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use ks_reactive::http::{self, DashboardContext, Queries, OPENAPI_JSON, ROUTE_TEMPLATES};
use ks_reactive::stage::StageState;
use ks_serving::dashboard::DashboardData;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).unwrap()
}

fn concrete(template: &str) -> String {
    template.replace("{dataType}", "wine")
}

async fn start() -> SocketAddr {
    let (addr, _) = http::serve(
        Queries::Stage(Arc::new(StageState::default())),
        DashboardContext {
            application: "as-app".into(),
            ..DashboardContext::default()
        },
        "127.0.0.1:0".parse().unwrap(),
        None,
        std::future::pending::<()>(),
    )
    .await
    .unwrap();
    addr
}

/// One GET; the status, content type and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut r = agent.get(&url).call().unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (
            r.status().as_u16(),
            ct,
            r.body_mut().read_to_string().unwrap(),
        )
    })
    .await
    .unwrap()
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
        let methods: Vec<&String> = doc["paths"][*t].as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{t}: only GET is served");
    }
}

#[tokio::test]
async fn every_answer_is_declared_and_the_served_document_is_the_checked_in_one() {
    let addr = start().await;
    let doc = document();
    for t in ROUTE_TEMPLATES {
        let (status, content_type, body) = get(addr, &concrete(t)).await;
        assert_ne!(status, 405, "{t} is documented but not routed");
        let declared = &doc["paths"][*t]["get"]["responses"][status.to_string()];
        assert!(
            !declared.is_null(),
            "GET {t} answered {status}, not in the document"
        );
        let media = content_type.split(';').next().unwrap().trim();
        assert!(
            !declared["content"].is_object() || !declared["content"][media].is_null(),
            "GET {t} answered {media}, not declared for {status}"
        );
        match *t {
            "/openapi.json" => assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), doc),
            "/" => assert!(
                body.contains("/dashboard/data"),
                "not the dashboard: {body}"
            ),
            "/dashboard/data" => {
                let d: DashboardData = serde_json::from_str(&body).unwrap();
                assert_eq!(
                    (d.server.as_str(), d.application.as_str()),
                    ("as-server", "as-app")
                );
                assert_eq!(d.instances.len(), 1);
                assert_eq!(d.instances[0].port, addr.port());
            }
            _ => {}
        }
    }
    // A path outside the document is 404, another method on a documented one 405.
    assert_eq!(get(addr, "/nope").await.0, 404);
    let post = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .post(&format!("http://{addr}/dashboard/data"))
            .send_empty()
            .unwrap()
            .status()
            .as_u16()
    })
    .await
    .unwrap();
    assert_eq!(post, 405);
}
