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

use crate::actor::Actors;
use crate::stage::StageState;
use crate::{Error, Result};
use ks_serving::{Health, DEFAULT_DATA_TYPE};
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
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
        ["state"] | ["state", _] | ["models"] | ["health"]
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

fn models(q: &Queries) -> Vec<String> {
    match q {
        Queries::Stage(s) => s.data_types(),
        Queries::Actor { actors, .. } => {
            let mut v: Vec<String> = actors.iter().map(|a| a.key().clone()).collect();
            v.sort();
            v
        }
    }
}

/// Binds `addr` and serves until `shutdown` completes.
pub async fn serve(
    queries: Queries,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    // Bound here rather than by warp, which panics when it cannot bind.
    let bind_error = |source| Error::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let q = warp::any().map(move || queries.clone());
    let state_default = warp::path!("state")
        .and(q.clone())
        .then(|q| state(q, DEFAULT_DATA_TYPE.to_string()));
    let state_of = warp::path!("state" / String)
        .and(q.clone())
        .then(|dt: String, q| state(q, dt));
    let models = warp::path!("models")
        .and(q)
        .map(|q: Queries| reply(StatusCode::OK, json!(models(&q))));
    // The pipeline runs while the server does: a failed one stops the process.
    let health = warp::path!("health").map(|| {
        let health = Health {
            healthy: true,
            state: "Running".into(),
            broker: "unknown".into(),
        };
        reply(StatusCode::OK, json!(health))
    });
    let api = warp::get()
        .and(
            state_default
                .or(state_of)
                .unify()
                .or(models)
                .unify()
                .or(health)
                .unify(),
        )
        .or(warp::method()
            .and(warp::path::full())
            .map(|method: Method, path: FullPath| fallback(&method, path.as_str())));
    let server = warp::serve(api).incoming(listener).graceful(shutdown);
    Ok((bound, tokio::spawn(server.run())))
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
