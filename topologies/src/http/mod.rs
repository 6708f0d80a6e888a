//! The model server's HTTP API, written against [`ServingQueries`] so it is the same for the
//! real server and for a test fake.
//!
//! | method | path                      | answer                                              |
//! | ------ | ------------------------- | --------------------------------------------------- |
//! | GET    | `/state/value`            | serving statistics of data type `wine`, merged      |
//! | GET    | `/state/value/{dataType}` | serving statistics of `dataType`, merged            |
//! |        | `…?local=true`            | the same from this instance only (what peers ask)   |
//! | GET    | `/state/windows/{dataType}` | one-minute score windows, `?from=&to=` (ms), merged |
//! | GET    | `/state/instances`        | JSON array of [`InstanceInfo`]                      |
//! | GET    | `/models`                 | JSON array of [`ModelInfo`]                         |
//! | GET    | `/health`                 | [`Health`]; 200 when healthy, 503 when not          |
//! | GET    | `/metrics`                | Prometheus text exposition format 0.0.4             |
//! | GET    | `/openapi.json`           | this API's OpenAPI 3 document ([`OPENAPI_JSON`])    |
//! | GET    | `/models/{dataType}/versions` | the kept versions ([`VersionsReport`])          |
//! | GET    | `/models/{dataType}/challenger` | shadow-scoring figures, this instance's       |
//! | GET    | `/models/{dataType}/drift` | input drift per field, this instance's             |
//! | GET    | `/`                       | the dashboard page (HTML, embedded, no CDN)         |
//! | GET    | `/dashboard/data`         | what the page polls: ks-serving's `DashboardData`   |
//! |        | `…?local=true`            | this instance's part only (what peers ask)          |
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
//! Locked doors ([`HttpOptions`]): with an admin token, every request whose method is not
//! GET or HEAD (every state-changing endpoint, whatever its path, checked before routing) needs
//! `Authorization: Bearer <token>` (or `X-Admin-Token: <token>`) and answers 401 without it,
//! before anything runs; `guard_reads` extends that to every read but `/health` (peers send the
//! token when they forward). Requests declaring a body over `max_request_bytes` answer 413, and
//! over `rate_limit_per_s` (a token bucket with a one-second burst) 429.
//!
//! Layout: this module binds and serves (one warp filter into [`Route`]s, the style both
//! servers share); `routes` parses request lines into the closed set of [`Route`]s, `peers`
//! forwards `/state/value` to the other instances (with [`get`], a ureq client), `metrics`
//! renders `/metrics` ([`render_metrics`]), `dashboard` serves `/` and `/dashboard/data`.
//!
//! [`InstanceInfo`]: crate::queries::InstanceInfo
//! [`ModelInfo`]: crate::queries::ModelInfo
//! [`Health`]: crate::queries::Health
//! [`VersionsReport`]: crate::queries::VersionsReport

mod dashboard;
mod metrics;
mod peers;
mod routes;

pub use metrics::{render_lifecycle, render_metrics};
pub use peers::{get, get_with_token, GET_TIMEOUT};
pub use routes::{ModelView, Route, RouteError, OPENAPI_JSON, ROUTE_TEMPLATES};

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
/// The 503 of a state query while this instance's statistics would be partial.
const NOT_QUERYABLE: &str =
    "this instance is rebalancing or restoring its state; ask again shortly";

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

/// The HTTP API's protections.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// When set, required on every request that is not GET or HEAD (and on reads with
    /// `guard_reads`).
    pub admin_token: Option<String>,
    /// Require the token on reads as well (all but `/health`).
    pub guard_reads: bool,
    /// Largest request body accepted (by its `Content-Length`), in bytes.
    pub max_request_bytes: u64,
    /// Requests a second accepted by the whole API (`None`: no limit).
    pub rate_limit_per_s: Option<u32>,
    /// Serve over TLS (and ask the peers over TLS).
    pub tls: Option<HttpTls>,
}

/// TLS for the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpTls {
    /// The server's certificate chain and key.
    pub server: ks_http::Tls,
    /// PEM certificates the peers' certificates are checked against when this instance
    /// forwards a query (the instances' own certificate when self-signed, or their CA).
    pub peer_roots: std::path::PathBuf,
}

impl HttpTls {
    /// The server's certificate and key files; peers are checked against `ca`, or against the
    /// server's own certificate when `ca` is `None` (every instance serving the same one).
    pub fn from_pem_files(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: Option<&std::path::Path>,
    ) -> Result<HttpTls> {
        Ok(HttpTls {
            server: ks_http::Tls::from_pem_files(cert, key)?,
            peer_roots: ca.unwrap_or(cert).to_path_buf(),
        })
    }
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            admin_token: None,
            guard_reads: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            rate_limit_per_s: None,
            tls: None,
        }
    }
}

/// Default of [`HttpOptions::max_request_bytes`]: the API takes no large bodies.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// A token bucket refilled at `rate` a second, holding at most `rate`.
struct RateLimit {
    rate: f64,
    state: parking_lot::Mutex<(f64, std::time::Instant)>,
}

impl RateLimit {
    fn new(rate: u32) -> RateLimit {
        let rate = f64::from(rate.max(1));
        RateLimit {
            rate,
            state: parking_lot::Mutex::new((rate, std::time::Instant::now())),
        }
    }

    fn allow(&self) -> bool {
        let mut s = self.state.lock();
        let now = std::time::Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.rate);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much of a guess matched.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(!x);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The token a request carries: `Authorization: Bearer …` or `X-Admin-Token: …`.
fn presented_token(headers: &warp::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim());
        }
    }
    headers
        .get("x-admin-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// What the doors say before a request is routed: `None` lets it through.
fn doors(
    options: &HttpOptions,
    limit: Option<&RateLimit>,
    method: &Method,
    path: &str,
    headers: &warp::http::HeaderMap,
) -> Option<Answer> {
    if limit.is_some_and(|l| !l.allow()) {
        return Some(Answer::error(429, "too many requests; slow down", path));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if declared > options.max_request_bytes {
        return Some(Answer::error(
            413,
            &format!(
                "request body of {declared} bytes is over the limit of {}",
                options.max_request_bytes
            ),
            path,
        ));
    }
    let token = options.admin_token.as_deref()?;
    let read = *method == Method::GET || *method == Method::HEAD;
    let guarded = !read || (options.guard_reads && path != "/health");
    if guarded && !presented_token(headers).is_some_and(|t| same_secret(t, token)) {
        let mut a = Answer::error(401, "this request needs the admin token", path);
        a.unauthorized = true;
        return Some(a);
    }
    None
}

/// Binds `addr` (port 0 picks a free port) and serves the API until `shutdown` completes;
/// connections in flight then finish before the returned task ends. Returns the address
/// actually bound.
pub async fn serve(
    queries: Arc<dyn ServingQueries>,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    serve_with(queries, addr, HttpOptions::default(), shutdown).await
}

/// [`serve`] with the protections of `options`.
pub async fn serve_with(
    queries: Arc<dyn ServingQueries>,
    addr: SocketAddr,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let (listener, bound) = bind(addr).await?;
    let tls = match &options.tls {
        Some(t) => {
            peers::use_https(&t.peer_roots)?;
            Some(t.server.clone())
        }
        None => None,
    };
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let limit = options.rate_limit_per_s.map(RateLimit::new).map(Arc::new);
    let options = Arc::new(options);
    let api = warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap| {
                let queries = Arc::clone(&queries);
                let options = Arc::clone(&options);
                let limit = limit.clone();
                async move {
                    if let Some(refused) =
                        doors(&options, limit.as_deref(), &method, path.as_str(), &headers)
                    {
                        return refused.into_response();
                    }
                    let query = (!query.is_empty()).then_some(query.as_str());
                    let token = options
                        .guard_reads
                        .then(|| options.admin_token.clone())
                        .flatten();
                    answer(queries, method.as_str(), path.as_str(), query, token)
                        .await
                        .into_response()
                }
            },
        );
    Ok((bound, ks_http::serve(api, listener, tls, shutdown)))
}

/// What one request is answered with, before it becomes an HTTP response.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    /// A 401: say which scheme is expected.
    unauthorized: bool,
}

impl Answer {
    fn json(status: u16, value: &Value) -> Answer {
        // Serializing a `Value` cannot fail (its map keys are strings), but a 500 beats a panic.
        match serde_json::to_string(value) {
            Ok(body) => Answer {
                status,
                content_type: JSON_CONTENT_TYPE,
                body,
                unauthorized: false,
            },
            Err(e) => Answer {
                status: 500,
                content_type: JSON_CONTENT_TYPE,
                body: format!("{{\"error\":{:?}}}", e.to_string()),
                unauthorized: false,
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
        if self.unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ks\""),
            );
        }
        if self.status == 429 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

async fn answer(
    queries: Arc<dyn ServingQueries>,
    method: &str,
    path: &str,
    query: Option<&str>,
    peer_token: Option<String>,
) -> Answer {
    let route = match Route::parse(method, path, query) {
        Ok(route) => route,
        Err(e) => return Answer::error(e.status, &e.message, path),
    };
    if let Route::DashboardData { local_only } = route {
        return dashboard::data(queries, local_only, peer_token).await;
    }
    let local = if matches!(route, Route::StateValue { .. }) {
        // The hot query reads one key per task store (locks held for a lookup, never across
        // I/O): answered right here, as a hand-off to the blocking pool and back cost two
        // thread wake-ups, each a wait for a core on a busy machine (its p99). A panic is
        // still a 500.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            local_answer(&*queries, &route)
        })) {
            Ok(local) => local,
            Err(e) => {
                let why = e
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                return Answer::error(500, &format!("query failed: {why}"), path);
            }
        }
    } else {
        // The other queries may scan stores and take their locks for longer, so they run
        // off the async workers; that also turns a panicking implementation into a 500
        // instead of a dropped connection.
        let blocking = {
            let queries = Arc::clone(&queries);
            let route = route.clone();
            tokio::task::spawn_blocking(move || local_answer(&*queries, &route))
        };
        match blocking.await {
            Ok(local) => local,
            Err(e) => return Answer::error(500, &format!("query failed: {e}"), path),
        }
    };
    match (route, local) {
        (Route::StateValue { data_type, .. }, Local::Stats { mine, peers }) => {
            peers::state_value(&data_type, mine, peers, path, peer_token).await
        }
        (
            Route::StateWindows {
                data_type,
                from,
                to,
                ..
            },
            Local::Windows { mine, peers },
        ) => peers::state_windows(&data_type, (from, to), mine, peers, peer_token).await,
        (_, Local::Done(answer)) => answer,
        (_, Local::Stats { .. } | Local::Windows { .. }) => {
            Answer::error(500, "internal routing error", path)
        }
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
    /// This instance's score windows and the peers still to ask.
    Windows {
        mine: std::collections::BTreeMap<i64, ks_serving::windows::ScoreWindow>,
        peers: Vec<String>,
    },
}

/// The `host:port` of every other live instance, each once (what a merged answer asks).
fn peers_of(queries: &dyn ServingQueries) -> Vec<String> {
    let mut peers = Vec::new();
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
    peers
}

/// A lifecycle view of `data_type`: 404 naming what is missing when there is nothing to show.
fn model_view(
    queries: &dyn ServingQueries,
    data_type: &str,
    view: ModelView,
    path: &str,
) -> Answer {
    let missing = |what: &str| {
        Answer::json(
            404,
            &json!({ "error": format!("{what} for data type '{data_type}'"), "path": path, "data_type": data_type }),
        )
    };
    match view {
        ModelView::Versions => match queries.versions(data_type) {
            Some(v) => Answer::serialized(v, path),
            None => missing("no model versions"),
        },
        ModelView::Challenger => match queries.challenger(data_type) {
            Some(c) => Answer::serialized(c, path),
            None => missing("no challenger"),
        },
        ModelView::Drift => match queries.drift(data_type) {
            Some(d) => Answer::serialized(d, path),
            None => missing("no drift figures (no record scored)"),
        },
    }
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
                return Local::Done(Answer::error(503, NOT_QUERYABLE, &path));
            }
            let mine = queries.local_stats(data_type);
            let peers = if *local_only {
                Vec::new()
            } else {
                peers_of(queries)
            };
            Local::Stats { mine, peers }
        }
        Route::StateWindows {
            data_type,
            from,
            to,
            local_only,
        } => {
            if !queries.queryable() {
                return Local::Done(Answer::error(503, NOT_QUERYABLE, &path));
            }
            let mine = queries.local_windows(data_type, *from, *to);
            let peers = if *local_only {
                Vec::new()
            } else {
                peers_of(queries)
            };
            Local::Windows { mine, peers }
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
            body: render_metrics(&queries.metrics())
                + &render_lifecycle(&queries.challengers(), &queries.drifts()),
            unauthorized: false,
        }),
        Route::Dashboard => Local::Done(dashboard::page()),
        // Answered by `dashboard::data` before the synchronous part.
        Route::DashboardData { .. } => {
            Local::Done(Answer::error(500, "internal routing error", &path))
        }
        Route::ModelView { data_type, view } => {
            Local::Done(model_view(queries, data_type, *view, &path))
        }
        Route::OpenApi => Local::Done(Answer {
            status: 200,
            content_type: JSON_CONTENT_TYPE,
            body: OPENAPI_JSON.to_string(),
            unauthorized: false,
        }),
    }
}
