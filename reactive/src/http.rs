//! The HTTP API (warp).
//!
//! | path                 | stage mode                          | actor mode                      |
//! | -------------------- | ----------------------------------- | ------------------------------- |
//! | `/state`             | statistics of `wine`'s current model | the same, asked of its actor    |
//! | `/state/{dataType}`  | statistics of that data type         | the same, asked of its actor    |
//! | `/models`            | data types with a current model      | data types with an actor        |
//! | `/health`            | ks-serving's `Health`, as ks-server  | the same                        |
//!
//! Statistics are ks-topologies' `ServingStats` JSON, as ks-server's `/state/value`; in actor
//! mode a `restore_error` field is added (to the statistics or the 404) when the actor's state
//! file was rejected at start. Errors are `{"error": "...", "path": "..."}`, as ks-server's: 404 for
//! no statistics or an unknown path, 405 (with `Allow: GET`) for a known path with another method,
//! 504 when an actor does not answer within the ask timeout.
//!
//! The dashboard's figures: records answered and errors (with the latest reasons) as the sink
//! and the model reader count them ([`Activity`]); scorings and scoring time are those of the
//! current models' statistics (they start over when a model is swapped in); the one instance
//! is this process, with the data partitions its consumer is assigned.

use crate::actor::Actors;
pub use crate::kafka::Activity;
use crate::stage::StageState;
use crate::{Error, Result};
use ks_serving::dashboard::{Counters, DashboardData, DashboardInstance, DashboardModel};
use ks_serving::{Health, ServingStats, DEFAULT_DATA_TYPE};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use warp::http::{Method, StatusCode};
use warp::path::FullPath;
use warp::{Filter, Reply};

/// What the API reads.
#[derive(Clone)]
pub enum Queries {
    /// Stage mode: the stage's shared state.
    Stage(Arc<StageState>),
    /// Actor mode: the actors, asked with a timeout.
    Actor {
        /// The actors by data type.
        actors: Actors,
        /// How long an actor gets to answer.
        ask_timeout: Duration,
    },
}

/// The checked-in OpenAPI 3 document of this API (`reactive/api/openapi.json`), served at
/// `/openapi.json`; `tests/openapi_matches_routes.rs` fails when it and the routes disagree.
pub const OPENAPI_JSON: &str = include_str!("../api/openapi.json");

/// Every path template the API serves, as the OpenAPI document names them.
pub const ROUTE_TEMPLATES: &[&str] = &[
    "/state",
    "/state/{dataType}",
    "/models",
    "/health",
    "/",
    "/dashboard/data",
    "/openapi.json",
];

/// What the dashboard shows beyond the statistics.
#[derive(Clone, Default)]
pub struct DashboardContext {
    /// The application shown (the data consumer group).
    pub application: String,
    /// What the pipeline did.
    pub activity: Arc<Activity>,
    /// The data consumer, once made (for the assigned partitions).
    pub data_consumer: Arc<OnceLock<Arc<StreamConsumer>>>,
}

fn reply(status: StatusCode, body: Value) -> warp::reply::WithStatus<warp::reply::Json> {
    warp::reply::with_status(warp::reply::json(&body), status)
}

async fn state(q: Queries, data_type: String) -> warp::reply::WithStatus<warp::reply::Json> {
    let path = format!("/state/{data_type}");
    let not_found = |extra: Option<String>| {
        let mut body = json!({
            "error": format!("no statistics for {data_type}"),
            "path": path,
        });
        if let Some(e) = extra {
            body["restore_error"] = Value::String(e);
        }
        reply(StatusCode::NOT_FOUND, body)
    };
    match q {
        Queries::Stage(s) => match s.stats(&data_type) {
            Some(stats) => reply(StatusCode::OK, json!(stats)),
            None => not_found(None),
        },
        Queries::Actor {
            actors,
            ask_timeout,
        } => {
            let actor = actors.get(&data_type).map(|a| a.clone());
            let Some(actor) = actor else {
                return not_found(None);
            };
            match actor.ask(ask_timeout).await {
                Ok(st) => match st.stats {
                    Some(stats) => {
                        let mut body = json!(stats);
                        // Statistics started over because their file was rejected: say so.
                        if let Some(e) = st.restore_error {
                            body["restore_error"] = Value::String(e);
                        }
                        reply(StatusCode::OK, body)
                    }
                    None => not_found(st.restore_error),
                },
                Err(e @ Error::AskTimeout { .. }) => reply(
                    StatusCode::GATEWAY_TIMEOUT,
                    json!({"error": e.to_string(), "path": path}),
                ),
                Err(e) => reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": e.to_string(), "path": path}),
                ),
            }
        }
    }
}

/// What a request no route takes is answered with, in ks-server's shape: 404
/// `{"error", "path"}` for an unknown path, 405 with `Allow: GET` for a known path with another
/// method.
fn fallback(method: &Method, path: &str) -> warp::reply::Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let known = matches!(
        segments.as_slice(),
        ["state"]
            | ["state", _]
            | ["models"]
            | ["health"]
            | [""]
            | ["dashboard", "data"]
            | ["openapi.json"]
    );
    if known && method != Method::GET {
        let body = json!({
            "error": format!("method {method} not allowed; use GET"),
            "path": path,
        });
        warp::reply::with_header(reply(StatusCode::METHOD_NOT_ALLOWED, body), "allow", "GET")
            .into_response()
    } else {
        reply(
            StatusCode::NOT_FOUND,
            json!({"error": "no such path", "path": path}),
        )
        .into_response()
    }
}

/// The statistics of `data_type`'s current model, `None` when it has none or its actor does
/// not answer in time.
async fn stats_of(q: &Queries, data_type: &str) -> Option<ServingStats> {
    match q {
        Queries::Stage(s) => s.stats(data_type),
        Queries::Actor {
            actors,
            ask_timeout,
        } => {
            let actor = actors.get(data_type).map(|a| a.clone())?;
            actor.ask(*ask_timeout).await.ok()?.stats
        }
    }
}

async fn dashboard_data(q: Queries, ctx: DashboardContext, addr: SocketAddr) -> DashboardData {
    let mut models = Vec::new();
    let mut scores = 0;
    let mut scoring_us = 0.0;
    for data_type in models_of(&q) {
        let Some(stats) = stats_of(&q, &data_type).await else {
            continue;
        };
        scores += stats.usage;
        scoring_us += stats.duration;
        models.push(DashboardModel {
            data_type,
            name: stats.name.clone(),
            model_type: stats.model_type.clone(),
            version: stats.version.clone(),
            since: stats.since,
            stats: Some(stats),
        });
    }
    let counters = Counters {
        records: ctx.activity.records.load(Ordering::Relaxed),
        scores,
        no_model: 0,
        errors: ctx.activity.errors.load(Ordering::Relaxed),
        latency_sum_seconds: scoring_us / 1e6,
        latency_count: scores,
        lag: None,
    };
    let partitions = ctx
        .data_consumer
        .get()
        .and_then(|c| c.assignment().ok())
        .map(|tpl| {
            let mut v: Vec<(String, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            v.sort();
            v.into_iter().map(|(t, p)| format!("{t}-{p}")).collect()
        })
        .unwrap_or_default();
    DashboardData {
        server: "as-server".into(),
        application: ctx.application.clone(),
        time_ms: ks_serving::now_ms(),
        models,
        totals: counters.clone(),
        instances: vec![DashboardInstance {
            instance_id: format!("{}@{addr}", ctx.application),
            host: addr.ip().to_string(),
            port: addr.port(),
            local: true,
            state: "Running".into(),
            partitions,
            standby_partitions: Vec::new(),
            counters: Some(counters),
        }],
        recent_errors: ctx.activity.recent.snapshot(),
        unreachable: Vec::new(),
    }
}

fn models_of(q: &Queries) -> Vec<String> {
    match q {
        Queries::Stage(s) => s.data_types(),
        Queries::Actor { actors, .. } => {
            let mut v: Vec<String> = actors.iter().map(|a| a.key().clone()).collect();
            v.sort();
            v
        }
    }
}

/// Binds `addr` and serves (over TLS with `tls`) until `shutdown` completes.
pub async fn serve(
    queries: Queries,
    dashboard: DashboardContext,
    addr: SocketAddr,
    tls: Option<ks_http::Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener = ks_http::bind(addr).await?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let q = warp::any().map(move || queries.clone());
    let page = warp::path::end().map(|| warp::reply::html(ks_serving::dashboard::DASHBOARD_HTML));
    let openapi = warp::path!("openapi.json")
        .map(|| warp::reply::with_header(OPENAPI_JSON, "content-type", "application/json"));
    let data = warp::path!("dashboard" / "data")
        .and(q.clone())
        .then(move |q: Queries| {
            let ctx = dashboard.clone();
            async move { warp::reply::json(&dashboard_data(q, ctx, bound).await) }
        });
    let state_default = warp::path!("state")
        .and(q.clone())
        .then(|q| state(q, DEFAULT_DATA_TYPE.to_string()));
    let state_of = warp::path!("state" / String)
        .and(q.clone())
        .then(|dt: String, q| state(q, dt));
    let models = warp::path!("models")
        .and(q)
        .map(|q: Queries| reply(StatusCode::OK, json!(models_of(&q))));
    // The pipeline runs while the server does: a failed one stops the process.
    let health = warp::path!("health").map(|| {
        let health = Health {
            healthy: true,
            state: "Running".into(),
            broker: "unknown".into(),
        };
        reply(StatusCode::OK, json!(health))
    });
    let json_routes = state_default
        .or(state_of)
        .unify()
        .or(models)
        .unify()
        .or(health)
        .unify()
        .map(Reply::into_response);
    let api = warp::get()
        .and(
            json_routes
                .or(data.map(Reply::into_response))
                .unify()
                .or(page.map(Reply::into_response))
                .unify()
                .or(openapi.map(Reply::into_response))
                .unify(),
        )
        .or(warp::method()
            .and(warp::path::full())
            .map(|method: Method, path: FullPath| fallback(&method, path.as_str())));
    Ok((bound, ks_http::serve(api, listener, tls, shutdown)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_and_methods_answer_like_ks_server() {
        let r = fallback(&Method::GET, "/nope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = fallback(&Method::POST, "/state/wine");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET")
        );
        assert_eq!(
            fallback(&Method::DELETE, "/a/b/c").status(),
            StatusCode::NOT_FOUND
        );
    }
}
