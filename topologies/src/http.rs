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
//! [`InstanceInfo`]: crate::queries::InstanceInfo
//! [`ModelInfo`]: crate::queries::ModelInfo
//! [`Health`]: crate::queries::Health

use crate::queries::{MetricsSnapshot, ServingQueries};
use crate::stats::ServingStats;
use crate::{Error, Result};
use serde_json::{json, Value};
use std::fmt::{Display, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use warp::http::{header, HeaderValue, Method, Response, StatusCode};
use warp::Filter;

/// The data type `/state/value` answers for without one in the path (the tutorial's default).
pub const DEFAULT_DATA_TYPE: &str = "wine";
/// Longest data type accepted in a path, in bytes after percent-decoding: data types are
/// store keys, and a bound keeps a hostile path from reaching the stores and every peer.
pub const MAX_DATA_TYPE_LEN: usize = 256;
/// How long one peer gets to answer a forwarded `/state/value`, connect included.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// The content type Prometheus expects for the text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

const JSON_CONTENT_TYPE: &str = "application/json";
/// Cap on what [`get`] buffers, so a misbehaving peer cannot make us allocate without bound.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Every request the API understands: a closed set, so adding a route means adding a variant
/// and the compiler points at every place that must answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serving statistics of one data type; `local_only` skips asking the other instances.
    StateValue {
        data_type: String,
        local_only: bool,
    },
    Instances,
    Models,
    Health,
    Metrics,
}

/// Why a request matched no [`Route`]: the status to answer with and a message for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub status: u16,
    pub message: String,
}

impl RouteError {
    fn new(status: u16, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            message: message.into(),
        }
    }
}

impl Route {
    /// Parses a request line's method, path (still percent-encoded, as sent) and raw query.
    pub fn parse(
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> std::result::Result<Route, RouteError> {
        let segments: Vec<&str> = match path.strip_prefix('/') {
            Some(rest) => rest.split('/').collect(),
            None => return Err(RouteError::new(404, "no such path")),
        };
        let route = match segments.as_slice() {
            ["state", "value"] => Route::StateValue {
                data_type: DEFAULT_DATA_TYPE.to_string(),
                local_only: local_only(query),
            },
            ["state", "value", raw] => Route::StateValue {
                data_type: decode_data_type(raw)?,
                local_only: local_only(query),
            },
            ["state", "instances"] => Route::Instances,
            ["models"] => Route::Models,
            ["health"] => Route::Health,
            ["metrics"] => Route::Metrics,
            _ => return Err(RouteError::new(404, "no such path")),
        };
        // The path is checked before the method so an unknown path is a 404 whatever the method.
        if method != "GET" {
            return Err(RouteError::new(
                405,
                format!("method {method} not allowed; use GET"),
            ));
        }
        Ok(route)
    }
}

fn local_only(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "local" && matches!(percent_decode(value).as_deref(), Some("true") | Some("1"))
    })
}

fn decode_data_type(raw: &str) -> std::result::Result<String, RouteError> {
    let decoded = percent_decode(raw)
        .ok_or_else(|| RouteError::new(400, "data type is not valid percent-encoded UTF-8"))?;
    if decoded.is_empty() {
        return Err(RouteError::new(400, "data type is empty"));
    }
    if decoded.len() > MAX_DATA_TYPE_LEN {
        return Err(RouteError::new(
            400,
            format!(
                "data type is {} bytes, over the limit of {MAX_DATA_TYPE_LEN}",
                decoded.len()
            ),
        ));
    }
    Ok(decoded)
}

/// `None` on a `%` not followed by two hex digits or on bytes that are not UTF-8. `+` stays a
/// `+`: it means a space only in form-encoded queries, not in paths.
fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = bytes.get(i + 1..i + 3)?;
            out.push((hex(pair[0])? << 4) | hex(pair[1])?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes all but RFC 3986's unreserved characters, so any data type survives as one segment.
fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Binds `addr` (port 0 picks a free port) and returns the listener with the address actually
/// bound. Bound here rather than by warp, which panics when it cannot bind.
pub async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Http(format!("cannot bind {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Http(format!("cannot read the bound address: {e}")))?;
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
            state_value(&data_type, mine, peers, path).await
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
        } => {
            let mine = queries.local_stats(data_type);
            let mut peers = Vec::new();
            if !local_only {
                for instance in queries.instances() {
                    if instance.local || instance.host.is_empty() || instance.port == 0 {
                        continue;
                    }
                    let authority = authority(&instance.host, instance.port);
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

fn route_path(route: &Route) -> String {
    match route {
        Route::StateValue { data_type, .. } => {
            format!("/state/value/{}", percent_encode_segment(data_type))
        }
        Route::Instances => "/state/instances".into(),
        Route::Models => "/models".into(),
        Route::Health => "/health".into(),
        Route::Metrics => "/metrics".into(),
    }
}

/// `host:port`, with an IPv6 literal bracketed so the port stays separable.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

enum PeerStats {
    Found(ServingStats),
    /// The peer answered and has no statistics for the data type: not a failure.
    None,
    Unreachable,
}

async fn state_value(
    data_type: &str,
    mine: Option<ServingStats>,
    peers: Vec<String>,
    path: &str,
) -> Answer {
    let peer_path = format!(
        "/state/value/{}?local=true",
        percent_encode_segment(data_type)
    );
    // Spawned so the peers are asked at once: the slowest bounds the answer, not their sum.
    let asks: Vec<(String, JoinHandle<PeerStats>)> = peers
        .into_iter()
        .map(|peer| {
            let ask = tokio::spawn(ask_peer(peer.clone(), peer_path.clone()));
            (peer, ask)
        })
        .collect();
    let mut merged = mine;
    let mut unreachable = Vec::new();
    // Merged in instance order, so the same cluster state always gives the same answer.
    for (peer, ask) in asks {
        match ask.await {
            Ok(PeerStats::Found(theirs)) => {
                merged = Some(match merged {
                    Some(ours) => ours.merge(&theirs),
                    None => theirs,
                });
            }
            Ok(PeerStats::None) => {}
            Ok(PeerStats::Unreachable) | Err(_) => unreachable.push(peer),
        }
    }
    let Some(stats) = merged else {
        let mut body = json!({
            "error": format!("no serving statistics for data type '{data_type}'"),
            "path": path,
            "data_type": data_type,
        });
        if !unreachable.is_empty() {
            body["unreachable"] = json!(unreachable);
        }
        return Answer::json(404, &body);
    };
    let mean = stats.mean();
    let mut body = match serde_json::to_value(&stats) {
        Ok(v) => v,
        Err(e) => return Answer::error(500, &format!("cannot encode the answer: {e}"), path),
    };
    if let Value::Object(fields) = &mut body {
        fields.insert("mean".into(), json!(mean));
        if !unreachable.is_empty() {
            fields.insert("unreachable".into(), json!(unreachable));
        }
    }
    Answer::json(200, &body)
}

async fn ask_peer(peer: String, path: String) -> PeerStats {
    let answer = match tokio::time::timeout(PEER_TIMEOUT, get(&peer, &path)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            log::warn!("peer {peer}: {e}");
            return PeerStats::Unreachable;
        }
        Err(_) => {
            log::warn!("peer {peer}: no answer within {PEER_TIMEOUT:?}");
            return PeerStats::Unreachable;
        }
    };
    match answer {
        (200, body) => match serde_json::from_str::<ServingStats>(&body) {
            Ok(stats) => PeerStats::Found(stats),
            Err(e) => {
                log::warn!("peer {peer}: undecodable statistics: {e}");
                PeerStats::Unreachable
            }
        },
        (404, _) => PeerStats::None,
        (status, _) => {
            log::warn!("peer {peer}: status {status} for {path}");
            PeerStats::Unreachable
        }
    }
}

/// A minimal HTTP/1.1 GET: one request per connection (`Connection: close`), the body read by
/// `Content-Length`, chunked encoding, or to the end. Returns the status and the body. Has no
/// timeout of its own; callers bound it.
pub async fn get(addr: impl Display, path: &str) -> Result<(u16, String)> {
    let authority = addr.to_string();
    // The path goes into the request line verbatim, so anything that could end it is refused.
    if !path.starts_with('/')
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(Error::Http(format!("invalid request path {path:?}")));
    }
    let mut stream = TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| Error::Http(format!("cannot connect to {authority}: {e}")))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::Http(format!("cannot send to {authority}: {e}")))?;

    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(Error::Http(format!(
                "{authority}: response head over {MAX_HEADER_BYTES} bytes"
            )));
        }
        if read_more(&mut stream, &mut buf, &authority).await? == 0 {
            return Err(Error::Http(format!(
                "{authority}: connection closed before the response head"
            )));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| Error::Http(format!("{authority}: response head is not UTF-8")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/1.") => status,
        _ => {
            return Err(Error::Http(format!(
                "{authority}: bad status line {status_line:?}"
            )))
        }
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .map_err(|_| Error::Http(format!("{authority}: bad Content-Length {value:?}")))?;
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = buf.split_off(head_end + 4);
    let body = if chunked {
        read_chunked(&mut stream, body, &authority).await?
    } else if let Some(len) = content_length {
        if len > MAX_RESPONSE_BYTES {
            return Err(Error::Http(format!(
                "{authority}: body of {len} bytes is too large"
            )));
        }
        while body.len() < len {
            if read_more(&mut stream, &mut body, &authority).await? == 0 {
                return Err(Error::Http(format!("{authority}: body cut short")));
            }
        }
        body.truncate(len);
        body
    } else {
        while read_more(&mut stream, &mut body, &authority).await? > 0 {}
        body
    };
    let body = String::from_utf8(body)
        .map_err(|_| Error::Http(format!("{authority}: body is not UTF-8")))?;
    Ok((status, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, authority: &str) -> Result<usize> {
    if buf.len() > MAX_RESPONSE_BYTES {
        return Err(Error::Http(format!(
            "{authority}: response over {MAX_RESPONSE_BYTES} bytes"
        )));
    }
    let mut chunk = [0u8; 8192];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|e| Error::Http(format!("cannot read from {authority}: {e}")))?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

async fn read_chunked(
    stream: &mut TcpStream,
    mut raw: Vec<u8>,
    authority: &str,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&raw[pos..], b"\r\n") {
                break pos + i;
            }
            if read_more(stream, &mut raw, authority).await? == 0 {
                return Err(Error::Http(format!("{authority}: chunked body cut short")));
            }
        };
        let size_line = std::str::from_utf8(&raw[pos..line_end]).unwrap_or("");
        // Chunk extensions (`;name=value`) carry nothing we need.
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| Error::Http(format!("{authority}: bad chunk size {size_line:?}")))?;
        if size == 0 {
            return Ok(body);
        }
        if size > MAX_RESPONSE_BYTES || body.len() + size > MAX_RESPONSE_BYTES {
            return Err(Error::Http(format!(
                "{authority}: response over {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        let data_start = line_end + 2;
        // The chunk's data and the CRLF after it.
        while raw.len() < data_start + size + 2 {
            if read_more(stream, &mut raw, authority).await? == 0 {
                return Err(Error::Http(format!("{authority}: chunked body cut short")));
            }
        }
        body.extend_from_slice(&raw[data_start..data_start + size]);
        pos = data_start + size + 2;
    }
}

/// Renders a snapshot in the Prometheus text exposition format 0.0.4.
pub fn render_metrics(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let counters = [
        (
            "ks_records_total",
            "Data records processed by this instance.",
            m.records,
        ),
        ("ks_scores_total", "Records scored by a model.", m.scores),
        (
            "ks_no_model_total",
            "Records that found no model for their data type.",
            m.no_model,
        ),
        (
            "ks_errors_total",
            "Bad records and bad models sent to the errors topic.",
            m.errors,
        ),
        (
            "ks_models_loaded_total",
            "Models built and swapped in.",
            m.models_loaded,
        ),
    ];
    for (name, help, value) in counters {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        );
    }

    let name = "ks_score_latency_seconds";
    let _ = write!(
        out,
        "# HELP {name} Time to score one record.\n# TYPE {name} histogram\n"
    );
    // Prometheus needs buckets in increasing `le` order ending in +Inf; the snapshot promises
    // that, but sorting and completing it here keeps a sloppy snapshot from breaking scrapes.
    let mut buckets: Vec<(f64, u64)> = m
        .latency_buckets
        .iter()
        .copied()
        .filter(|(le, _)| !le.is_nan())
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        let last = buckets.last().map_or(0, |b| b.1);
        buckets.push((f64::INFINITY, m.latency_count.max(last)));
    }
    for (le, count) in buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {count}", prom_float(le));
    }
    let _ = writeln!(out, "{name}_sum {}", prom_float(m.latency_sum_seconds));
    let _ = writeln!(out, "{name}_count {}", m.latency_count);

    if let Some(lag) = m.lag {
        let name = "ks_consumer_lag";
        let _ = write!(
            out,
            "# HELP {name} Records waiting in assigned partitions.\n\
             # TYPE {name} gauge\n{name} {lag}\n"
        );
    }
    out
}

/// Prometheus spells the infinities and NaN its own way; finite values print as Rust does,
/// which Prometheus' parser accepts.
fn prom_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}
