//! The model server's HTTP API, written against [`ServingQueries`] so it is the same for the
//! real server and for a test fake.
//!
//! | method | path                      | answer                                              |
//! | ------ | ------------------------- | --------------------------------------------------- |
//! | GET    | `/state/value`            | serving statistics of data type `wine`, merged      |
//! | GET    | `/state/value/{dataType}` | serving statistics of `dataType`, merged            |
//! |        | `…?local=true`            | the same from this instance only (what peers ask)   |
//! | GET    | `/state/instances`        | JSON array of [`InstanceInfo`]                      |
//! | GET    | `/models`                 | JSON array of [`ModelInfo`]                         |
//! | GET    | `/health`                 | [`Health`]; 200 when healthy, 503 when not          |
//! | GET    | `/metrics`                | Prometheus text exposition format 0.0.4             |
//!
//! Errors are JSON `{"error": "...", "path": "..."}`: 400 for a bad data type segment (bad
//! percent-encoding, empty, over [`MAX_DATA_TYPE_LEN`] bytes), 404 for an unknown path or a data
//! type no instance has statistics for, 405 for a known path with a method other than GET.
//!
//! Statistics are kept per partition, so one instance only holds part of a data type's. Without
//! `local=true`, `/state/value` merges its own with those of every other live instance, asked
//! over HTTP with `local=true` (so a peer never forwards in turn). A peer that fails or does not
//! answer within [`PEER_TIMEOUT`] is left out and named in `"unreachable": ["host:port", …]`,
//! which is present only when the answer is partial.
//!
//! Layout: this module binds and serves (one warp filter into [`Route`]s, the style both
//! servers share); `routes` parses request lines into the closed set of [`Route`]s, `peers`
//! forwards `/state/value` to the other instances (with [`get`], a ureq client), `metrics`
//! renders `/metrics` ([`render_metrics`]).
//!
//! [`InstanceInfo`]: crate::queries::InstanceInfo
//! [`ModelInfo`]: crate::queries::ModelInfo
//! [`Health`]: crate::queries::Health

mod metrics;
mod peers;
mod routes;

pub use metrics::render_metrics;
pub use peers::{get, GET_TIMEOUT};
pub use routes::{Route, RouteError};

use crate::queries::ServingQueries;
use crate::{Error, Result};
use ks_serving::ServingStats;
use routes::route_path;
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use warp::http::{header, HeaderValue, Method, Response, StatusCode};
use warp::Filter;

pub use ks_serving::DEFAULT_DATA_TYPE;
/// Longest data type accepted in a path, in bytes after percent-decoding: data types are
/// store keys, and a bound keeps a hostile path from reaching the stores and every peer.
pub const MAX_DATA_TYPE_LEN: usize = 256;
/// How long one peer gets to answer a forwarded `/state/value`, connect included.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// The content type Prometheus expects for the text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

const JSON_CONTENT_TYPE: &str = "application/json";

/// Binds `addr` (port 0 picks a free port) and returns the listener with the address actually
/// bound. Bound here rather than by warp, which panics when it cannot bind.
pub async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Binds `addr` (port 0 picks a free port) and serves the API until `shutdown` completes;
/// connections in flight then finish before the returned task ends. Returns the address
/// actually bound.
pub async fn serve(
    queries: Arc<dyn ServingQueries>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let (listener, bound) = bind(addr).await?;
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let api = warp::method().and(warp::path::full()).and(query).then(
        move |method: Method, path: warp::path::FullPath, query: String| {
            let queries = Arc::clone(&queries);
            async move {
                let query = (!query.is_empty()).then_some(query.as_str());
                answer(queries, method.as_str(), path.as_str(), query)
                    .await
                    .into_response()
            }
        },
    );
    let server = warp::serve(api).incoming(listener).graceful(shutdown);
    Ok((bound, tokio::spawn(server.run())))
}

/// What one request is answered with, before it becomes an HTTP response.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Answer {
        // Serializing a `Value` cannot fail (its map keys are strings), but a 500 beats a panic.
        match serde_json::to_string(value) {
            Ok(body) => Answer {
                status,
                content_type: JSON_CONTENT_TYPE,
                body,
            },
            Err(e) => Answer {
                status: 500,
                content_type: JSON_CONTENT_TYPE,
                body: format!("{{\"error\":{:?}}}", e.to_string()),
            },
        }
    }

    fn error(status: u16, message: &str, path: &str) -> Answer {
        Answer::json(status, &json!({ "error": message, "path": path }))
    }

    fn serialized(value: impl serde::Serialize, path: &str) -> Answer {
        match serde_json::to_value(value) {
            Ok(v) => Answer::json(200, &v),
            Err(e) => Answer::error(500, &format!("cannot encode the answer: {e}"), path),
        }
    }

    fn into_response(self) -> Response<String> {
        let allow_get = self.status == 405;
        let mut response = Response::new(self.body);
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if allow_get {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        response
    }
}

async fn answer(
    queries: Arc<dyn ServingQueries>,
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Answer {
    let route = match Route::parse(method, path, query) {
        Ok(route) => route,
        Err(e) => return Answer::error(e.status, &e.message, path),
    };
    // The queries are synchronous and may take store locks, so they run off the async workers;
    // that also turns a panicking implementation into a 500 instead of a dropped connection.
    let blocking = {
        let queries = Arc::clone(&queries);
        let route = route.clone();
        tokio::task::spawn_blocking(move || local_answer(&*queries, &route))
    };
    let local = match blocking.await {
        Ok(local) => local,
        Err(e) => return Answer::error(500, &format!("query failed: {e}"), path),
    };
    match (route, local) {
        (Route::StateValue { data_type, .. }, Local::Stats { mine, peers }) => {
            peers::state_value(&data_type, mine, peers, path).await
        }
        (_, Local::Done(answer)) => answer,
        (_, Local::Stats { .. }) => Answer::error(500, "internal routing error", path),
    }
}

/// What the synchronous part of a request produced.
enum Local {
    Done(Answer),
    /// This instance's statistics and the `host:port` of the peers still to ask.
    Stats {
        mine: Option<ServingStats>,
        peers: Vec<String>,
    },
}

fn local_answer(queries: &dyn ServingQueries, route: &Route) -> Local {
    let path = route_path(route);
    match route {
        Route::StateValue {
            data_type,
            local_only,
            max_lag,
        } => {
            // A stale read is answered here from active stores and standby copies, also
            // while this instance rebalances or restores: that is what it is for.
            if let Some(max_lag) = max_lag {
                if let Some(stats) = queries.stale_stats(data_type, *max_lag) {
                    return Local::Stats {
                        mine: stats,
                        peers: Vec::new(),
                    };
                }
            }
            if !queries.queryable() {
                // No partial answer: a peer asking us counts us as unreachable instead.
                return Local::Done(Answer::error(
                    503,
                    "this instance is rebalancing or restoring its state; ask again shortly",
                    &path,
                ));
            }
            let mine = queries.local_stats(data_type);
            let mut peers = Vec::new();
            if !local_only {
                for instance in queries.instances() {
                    if instance.local || instance.host.is_empty() || instance.port == 0 {
                        continue;
                    }
                    let authority = peers::authority(&instance.host, instance.port);
                    // A peer listed twice must not be counted twice.
                    if !peers.contains(&authority) {
                        peers.push(authority);
                    }
                }
            }
            Local::Stats { mine, peers }
        }
        Route::Instances => Local::Done(Answer::serialized(queries.instances(), &path)),
        Route::Models => Local::Done(Answer::serialized(queries.models(), &path)),
        Route::Health => {
            let health = queries.health();
            let status = if health.healthy { 200 } else { 503 };
            Local::Done(match serde_json::to_value(&health) {
                Ok(v) => Answer::json(status, &v),
                Err(e) => Answer::error(500, &format!("cannot encode the answer: {e}"), &path),
            })
        }
        Route::Metrics => Local::Done(Answer {
            status: 200,
            content_type: METRICS_CONTENT_TYPE,
            body: render_metrics(&queries.metrics()),
        }),
    }
}
