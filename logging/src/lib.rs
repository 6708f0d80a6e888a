//! Logging for the ks binaries: `tracing` events, and the `log` records of the engine and of
//! libraries (bridged in), written to stderr as text or as one JSON object a line.
//!
//! The fields of the spans an event happens in go on its line. The engine runs a task's work
//! (processing, punctuation, restore, commit) inside a `task` span, so every line of that work
//! names the task — the processors' own lines included: `task{task=0_1}: …` in text,
//! `"task":"0_1"` in JSON.
//!
//! Layout: [`LogFormat`] (the `--log-format` value), [`init`] (installs the subscriber),
//! the JSON layer in `json.rs`.
//!
//! ```no_run
//! ks_logging::init(ks_logging::LogFormat::Json, "info,librdkafka=warn").unwrap();
//! let task = tracing::info_span!("task", task = "0_1");
//! let _in_task = task.enter();
//! tracing::info!(records = 12, "restored");
//! // {"ts":1764755000000,"level":"INFO","target":"app","msg":"restored","task":"0_1","records":12}
//! ```

mod json;

use std::str::FromStr;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What failed while setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--log-format` was neither `text` nor `json`.
    #[error("unknown log format {given:?}: expected text or json")]
    UnknownFormat {
        /// What was given.
        given: String,
    },
    /// The filter (`RUST_LOG`, or the binary's default) does not parse.
    #[error(
        "bad log filter {filter:?} (RUST_LOG: level or target=level, comma-separated): {reason}"
    )]
    BadFilter {
        /// The filter text.
        filter: String,
        /// The parser's reason.
        reason: String,
    },
    /// Another logger was installed first.
    #[error("cannot install the logger: {reason}")]
    AlreadyInstalled {
        /// The subscriber's reason.
        reason: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable: time, level, span context, target, message.
    #[default]
    Text,
    /// One JSON object a line: `ts` (ms since the epoch), `level`, `target`, `msg`, then the
    /// fields of the enclosing spans (`task`) and of the event.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::UnknownFormat {
                given: other.to_string(),
            }),
        }
    }
}

/// The filter in effect: `RUST_LOG` when set and not empty, else `default_filter`.
pub fn filter(default_filter: &str) -> Result<Targets, Error> {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default_filter.to_string());
    parse_filter(&spec)
}

/// Parses a filter such as `info,librdkafka=warn`: a level, then `target=level` directives.
pub fn parse_filter(spec: &str) -> Result<Targets, Error> {
    spec.parse::<Targets>().map_err(|e| Error::BadFilter {
        filter: spec.to_string(),
        reason: e.to_string(),
    })
}

/// Installs the process's logger: `format` lines on stderr, filtered by `RUST_LOG` or
/// `default_filter`, with `log` records bridged in (at the filter's level, so a disabled
/// `log::debug!` stays cheap).
pub fn init(format: LogFormat, default_filter: &str) -> Result<(), Error> {
    let targets = filter(default_filter)?;
    let registry = tracing_subscriber::registry().with(targets);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .try_init(),
        LogFormat::Json => registry.with(json::JsonLines::stderr()).try_init(),
    };
    installed.map_err(|e| Error::AlreadyInstalled {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        let e = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(e.to_string().contains("\"yaml\""), "{e}");
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_it() {
        let e = parse_filter("info,ks=loud").unwrap_err();
        assert!(e.to_string().contains("info,ks=loud"), "{e}");
        assert!(parse_filter("info,librdkafka=warn").is_ok());
        assert!(parse_filter("debug").is_ok());
    }
}
