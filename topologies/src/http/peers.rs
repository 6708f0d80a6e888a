//! Peer forwarding: `/state/value` merges this instance's statistics with every other live
//! instance's, asked over HTTP (ureq, off the async workers) with `local=true`.

use super::routes::percent_encode_segment;
use super::{Answer, PEER_TIMEOUT};
use crate::{Error, Result};
use ks_serving::windows::{
    from_reports, merge_windows, reports, ScoreWindow, WindowReport, WINDOW_MS,
};
use ks_serving::ServingStats;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Cap on what [`get`] buffers.
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// The longest a [`get`] takes, connect included.
pub const GET_TIMEOUT: Duration = Duration::from_secs(30);

/// `host:port`, with an IPv6 literal bracketed so the port stays separable.
pub(super) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Set once the API serves TLS: the peers serve it too (one application, one configuration),
/// so they are asked over https, their certificates checked against these roots. Process-wide
/// because the forwarding paths (statistics, dashboard, windows) all end in [`get_with_token`].
static PEER_TLS: OnceLock<ureq::tls::TlsConfig> = OnceLock::new();

/// Ask the peers over https, checking their certificates against the PEM certificates in
/// `roots`. The first call wins: a process serves one API.
pub(super) fn use_https(roots: &Path) -> Result<()> {
    let tls_error = |reason: String| {
        Error::InvalidConfig(format!(
            "TLS roots for the peers {}: {reason}",
            roots.display()
        ))
    };
    let pem = std::fs::read(roots).map_err(|e| tls_error(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| tls_error(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(tls_error("no PEM CERTIFICATE block in the file".into()));
    }
    let config = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build();
    // Already set: an earlier server of this process decided, and they share the roots.
    let _ = PEER_TLS.set(config);
    Ok(())
}

pub(super) async fn state_value(
    data_type: &str,
    mine: Option<ServingStats>,
    peers: Vec<String>,
    path: &str,
    token: Option<String>,
) -> Answer {
    let peer_path = format!(
        "/state/value/{}?local=true",
        percent_encode_segment(data_type)
    );
    let mut merged = mine;
    let mut unreachable = Vec::new();
    // Merged in instance order, so the same cluster state always gives the same answer.
    for (peer, answer) in ask_all::<ServingStats>(peers, &peer_path, token).await {
        match answer {
            PeerAnswer::Found(theirs) => {
                merged = Some(match merged {
                    Some(ours) => ours.merge(&theirs),
                    None => theirs,
                });
            }
            PeerAnswer::NotFound => {}
            PeerAnswer::Unreachable => unreachable.push(peer),
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

/// Asks every peer for `path` at once (the slowest bounds the answer, not their sum); the
/// answers in the peers' order.
async fn ask_all<T: serde::de::DeserializeOwned + Send + 'static>(
    peers: Vec<String>,
    path: &str,
    token: Option<String>,
) -> Vec<(String, PeerAnswer<T>)> {
    let asks: Vec<(String, JoinHandle<PeerAnswer<T>>)> = peers
        .into_iter()
        .map(|peer| {
            let (p, path, token) = (peer.clone(), path.to_string(), token.clone());
            let ask = tokio::spawn(async move { ask_peer_for(&p, &path, token.as_deref()).await });
            (peer, ask)
        })
        .collect();
    let mut answers = Vec::with_capacity(asks.len());
    for (peer, ask) in asks {
        answers.push((peer, ask.await.unwrap_or(PeerAnswer::Unreachable)));
    }
    answers
}

/// What a peer answered a forwarded query with.
enum PeerAnswer<T> {
    Found(T),
    /// 404: the peer has nothing for it, not a failure.
    NotFound,
    Unreachable,
}

/// Asks `peer` for `path` within [`PEER_TIMEOUT`] and decodes a 200's body as `T`.
async fn ask_peer_for<T: serde::de::DeserializeOwned>(
    peer: &str,
    path: &str,
    token: Option<&str>,
) -> PeerAnswer<T> {
    let ask = get_with_token(peer, path, token);
    let answer = match tokio::time::timeout(PEER_TIMEOUT, ask).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            log::warn!("peer {peer}: {e}");
            return PeerAnswer::Unreachable;
        }
        Err(_) => {
            log::warn!("peer {peer}: no answer within {PEER_TIMEOUT:?}");
            return PeerAnswer::Unreachable;
        }
    };
    match answer {
        (200, body) => match serde_json::from_str::<T>(&body) {
            Ok(v) => PeerAnswer::Found(v),
            Err(e) => {
                log::warn!("peer {peer}: undecodable answer to {path}: {e}");
                PeerAnswer::Unreachable
            }
        },
        (404, _) => PeerAnswer::NotFound,
        (status, _) => {
            log::warn!("peer {peer}: status {status} for {path}");
            PeerAnswer::Unreachable
        }
    }
}

/// `/state/windows/{dataType}` as answered: the query's bounds and the windows, oldest first.
#[derive(serde::Serialize, serde::Deserialize)]
struct WindowsAnswer {
    data_type: String,
    window_ms: i64,
    from: i64,
    to: i64,
    windows: Vec<WindowReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unreachable: Vec<String>,
}

/// Merges this instance's score windows with every peer's (asked with `local=true`).
pub(super) async fn state_windows(
    data_type: &str,
    (from, to): (i64, i64),
    mine: BTreeMap<i64, ScoreWindow>,
    peers: Vec<String>,
    token: Option<String>,
) -> Answer {
    let peer_path = format!(
        "/state/windows/{}?from={from}&to={to}&local=true",
        percent_encode_segment(data_type)
    );
    let mut merged = mine;
    let mut unreachable = Vec::new();
    for (peer, answer) in ask_all::<WindowsAnswer>(peers, &peer_path, token).await {
        match answer {
            PeerAnswer::Found(theirs) => merge_windows(&mut merged, &from_reports(&theirs.windows)),
            PeerAnswer::NotFound => {}
            PeerAnswer::Unreachable => unreachable.push(peer),
        }
    }
    let answer = WindowsAnswer {
        data_type: data_type.to_string(),
        window_ms: WINDOW_MS,
        from,
        to,
        windows: reports(&merged),
        unreachable,
    };
    Answer::serialized(
        answer,
        &format!("/state/windows/{}", percent_encode_segment(data_type)),
    )
}

/// One GET with ureq (run off the async workers), returning the status and the body whatever
/// the status. The body is capped at `MAX_RESPONSE_BYTES` so a misbehaving peer cannot make us
/// allocate without bound; the whole request is bounded by [`GET_TIMEOUT`] (callers that need
/// less bound it themselves). A redirect is never followed: its status is the answer, so a
/// peer cannot send the request (and its token) elsewhere.
pub async fn get(addr: impl Display, path: &str) -> Result<(u16, String)> {
    get_with_token(addr, path, None).await
}

/// [`get`] with `Authorization: Bearer <token>` when `token` is given (peers forwarding to a
/// server that guards its reads).
pub async fn get_with_token(
    addr: impl Display,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String)> {
    let authority = addr.to_string();
    let http_error = |reason: String| Error::Http {
        authority: authority.clone(),
        path: path.to_string(),
        reason,
    };
    // The path goes into the request line verbatim, so anything that could end it is refused.
    if !path.starts_with('/')
        || path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(http_error("invalid request path".into()));
    }
    let tls = PEER_TLS.get().cloned();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{authority}{path}");
    let bearer = token.map(|t| format!("Bearer {t}"));
    let fetched = tokio::task::spawn_blocking(move || -> std::result::Result<_, ureq::Error> {
        let mut config = ureq::Agent::config_builder();
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        let agent: ureq::Agent = config
            .http_status_as_error(false)
            .timeout_global(Some(GET_TIMEOUT))
            .timeout_connect(Some(GET_TIMEOUT.min(Duration::from_secs(5))))
            .max_redirects(0)
            .build()
            .into();
        let mut request = agent.get(&url);
        if let Some(b) = &bearer {
            request = request.header("Authorization", b.as_str());
        }
        let mut response = request.call()?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()?;
        Ok((status, body))
    })
    .await
    .map_err(|e| http_error(format!("the request task failed: {e}")))?;
    fetched.map_err(|e| http_error(e.to_string()))
}
