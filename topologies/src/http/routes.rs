//! The closed set of routes and how a request line maps onto one.

use super::{DEFAULT_DATA_TYPE, MAX_DATA_TYPE_LEN};
use std::fmt::Write as _;

/// Every request the API understands: a closed set, so adding a route means adding a variant
/// and the compiler points at every place that must answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Serving statistics of one data type; `local_only` skips asking the other instances.
    StateValue {
        /// The data type asked for.
        data_type: String,
        /// Whether to leave the other instances out (`local=true`).
        local_only: bool,
        /// `max_lag=N`: the answer may come from this instance's standby copies that are at
        /// most N changelog records behind (a stale read), without asking the others.
        max_lag: Option<u64>,
    },
    /// `/state/windows/{dataType}?from=&to=`: the data type's one-minute score windows
    /// starting in `from..=to` (ms since the epoch; default: every window kept), merged.
    StateWindows {
        /// The data type asked for.
        data_type: String,
        /// Earliest window start, inclusive.
        from: i64,
        /// Latest window start, inclusive.
        to: i64,
        /// Whether to leave the other instances out (`local=true`).
        local_only: bool,
    },
    /// `/state/instances`.
    Instances,
    /// `/models`.
    Models,
    /// `/health`.
    Health,
    /// `/metrics`.
    Metrics,
    /// `/openapi.json`: the API's OpenAPI 3 document ([`OPENAPI_JSON`]).
    OpenApi,
    /// `/models/{dataType}/versions|challenger|drift`: a data type's model lifecycle.
    ModelView {
        /// The data type asked for.
        data_type: String,
        /// Which view.
        view: ModelView,
    },
    /// `/`: the dashboard page (`super::dashboard`).
    Dashboard,
    /// `/dashboard/data`: what the page polls; `local_only` is this instance's part only.
    DashboardData {
        /// Whether to leave the other instances out (`local=true`).
        local_only: bool,
    },
}

/// The lifecycle views of a data type's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelView {
    /// `/models/{dataType}/versions`: the kept versions.
    Versions,
    /// `/models/{dataType}/challenger`: the champion/challenger figures.
    Challenger,
    /// `/models/{dataType}/drift`: the input drift.
    Drift,
}

impl ModelView {
    /// The path segment after the data type.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelView::Versions => "versions",
            ModelView::Challenger => "challenger",
            ModelView::Drift => "drift",
        }
    }
}

/// The checked-in OpenAPI 3 document of this API (`topologies/api/openapi.json`), served at
/// `/openapi.json`; `tests/openapi_matches_routes.rs` fails when it and the routes disagree.
pub const OPENAPI_JSON: &str = include_str!("../../api/openapi.json");

/// Every path template the API serves, as the OpenAPI document names them.
pub const ROUTE_TEMPLATES: &[&str] = &[
    "/state/value",
    "/state/value/{dataType}",
    "/state/windows/{dataType}",
    "/state/instances",
    "/models",
    "/health",
    "/metrics",
    "/openapi.json",
    "/models/{dataType}/versions",
    "/models/{dataType}/challenger",
    "/models/{dataType}/drift",
    "/",
    "/dashboard/data",
];

impl Route {
    /// The OpenAPI path template this route answers (exhaustive, so a new route must name one).
    pub fn template(&self) -> &'static str {
        match self {
            // `/state/value` is `/state/value/wine`: both parse to this route.
            Route::StateValue { .. } => "/state/value/{dataType}",
            Route::StateWindows { .. } => "/state/windows/{dataType}",
            Route::Instances => "/state/instances",
            Route::Models => "/models",
            Route::Health => "/health",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::ModelView { view, .. } => match view {
                ModelView::Versions => "/models/{dataType}/versions",
                ModelView::Challenger => "/models/{dataType}/challenger",
                ModelView::Drift => "/models/{dataType}/drift",
            },
            Route::Dashboard => "/",
            Route::DashboardData { .. } => "/dashboard/data",
        }
    }
}

/// Why a request matched no [`Route`]: the status to answer with and a message for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// The HTTP status to answer with.
    pub status: u16,
    /// What was wrong.
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
                max_lag: max_lag(query)?,
            },
            ["state", "value", raw] => Route::StateValue {
                data_type: decode_data_type(raw)?,
                local_only: local_only(query),
                max_lag: max_lag(query)?,
            },
            ["state", "windows", raw] => {
                let from = time_param(query, "from")?.unwrap_or(i64::MIN);
                let to = time_param(query, "to")?.unwrap_or(i64::MAX);
                if from > to {
                    return Err(RouteError::new(
                        400,
                        format!("from ({from}) is after to ({to})"),
                    ));
                }
                Route::StateWindows {
                    data_type: decode_data_type(raw)?,
                    from,
                    to,
                    local_only: local_only(query),
                }
            }
            ["state", "instances"] => Route::Instances,
            ["models"] => Route::Models,
            ["health"] => Route::Health,
            ["metrics"] => Route::Metrics,
            ["openapi.json"] => Route::OpenApi,
            [""] => Route::Dashboard,
            ["dashboard", "data"] => Route::DashboardData {
                local_only: local_only(query),
            },
            ["models", raw, view] => Route::ModelView {
                view: match *view {
                    "versions" => ModelView::Versions,
                    "challenger" => ModelView::Challenger,
                    "drift" => ModelView::Drift,
                    _ => return Err(RouteError::new(404, "no such path")),
                },
                data_type: decode_data_type(raw)?,
            },
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

/// The raw value of the query's first `name=…` pair.
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query.unwrap_or("").split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

fn max_lag(query: Option<&str>) -> std::result::Result<Option<u64>, RouteError> {
    let Some(raw) = param(query, "max_lag") else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| {
        RouteError::new(
            400,
            format!("max_lag must be a whole number of records, not {raw:?}"),
        )
    })
}

/// `name=<ms since the epoch>` from the query, if given.
fn time_param(query: Option<&str>, name: &str) -> std::result::Result<Option<i64>, RouteError> {
    let Some(raw) = param(query, name) else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| {
        RouteError::new(
            400,
            format!("{name} must be a time in ms since the epoch (a whole number), not {raw:?}"),
        )
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
pub(crate) fn percent_encode_segment(s: &str) -> String {
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

pub(crate) fn route_path(route: &Route) -> String {
    match route {
        Route::StateValue { data_type, .. } => {
            format!("/state/value/{}", percent_encode_segment(data_type))
        }
        Route::StateWindows { data_type, .. } => {
            format!("/state/windows/{}", percent_encode_segment(data_type))
        }
        Route::Instances => "/state/instances".into(),
        Route::Models => "/models".into(),
        Route::Health => "/health".into(),
        Route::Metrics => "/metrics".into(),
        Route::OpenApi => "/openapi.json".into(),
        Route::ModelView { data_type, view } => format!(
            "/models/{}/{}",
            percent_encode_segment(data_type),
            view.as_str()
        ),
        Route::Dashboard | Route::DashboardData { .. } => route.template().into(),
    }
}
