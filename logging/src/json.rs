//! One JSON object a line: `ts`, `level`, `target`, `msg`, then the enclosing spans' fields
//! (outermost first) and the event's own, so a log shipper can filter on `task` directly.

use serde_json::{Map, Value};
use std::fmt::Debug;
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Where finished lines go.
type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// The JSON lines layer.
pub(crate) struct JsonLines {
    sink: Sink,
}

impl JsonLines {
    /// Lines on stderr.
    pub(crate) fn stderr() -> JsonLines {
        JsonLines::to(Box::new(|line| {
            // A log line that cannot be written has nowhere else to be reported.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }))
    }

    pub(crate) fn to(sink: Sink) -> JsonLines {
        JsonLines { sink }
    }
}

/// A span's or an event's fields as JSON values.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // A bridged `log` record carries its target in `log.*` fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut line = Map::new();
        line.insert("ts".into(), Value::from(now_ms()));
        line.insert("level".into(), Value::from(meta.level().as_str()));
        line.insert("target".into(), Value::from(meta.target()));
        line.insert("msg".into(), Value::from(""));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &fields.0 {
                        line.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let mut own = Fields::default();
        event.record(&mut own);
        for (k, v) in own.0 {
            match k.as_str() {
                "message" => {
                    line.insert("msg".into(), v);
                }
                k if k.starts_with("log.") => {}
                _ => {
                    line.insert(k, v);
                }
            }
        }
        (self.sink)(&Value::Object(line).to_string());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let subscriber =
            tracing_subscriber::registry().with(JsonLines::to(Box::new(move |l: &str| {
                sink.lock().unwrap().push(l.to_string())
            })));
        tracing::subscriber::with_default(subscriber, f);
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_line_inside_a_task_span_names_the_task() {
        let lines = capture(|| {
            tracing::info!("outside");
            let span = tracing::info_span!("task", task = "0_3");
            let _in = span.enter();
            tracing::warn!(offset = 17u64, "skipping a record");
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["msg"], "outside");
        assert!(lines[0].get("task").is_none(), "{}", lines[0]);
        assert_eq!(lines[1]["msg"], "skipping a record");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["task"], "0_3");
        assert_eq!(lines[1]["offset"], 17);
        assert!(lines[1]["ts"].is_i64());
        assert!(lines[1]["target"].as_str().unwrap().contains("json"));
    }

    #[test]
    fn a_log_record_inside_a_task_span_names_the_task() {
        // The engine and the processors log with `log`; the bridge makes them events of the
        // current span.
        let _ = tracing_log::LogTracer::init();
        let lines = capture(|| {
            let span = tracing::info_span!("task", task = "2_1");
            let _in = span.enter();
            log::info!(target: "ks_engine::runtime", "restored {} records", 5);
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["msg"], "restored 5 records");
        assert_eq!(lines[0]["target"], "ks_engine::runtime");
        assert_eq!(lines[0]["task"], "2_1");
        assert!(lines[0].get("log.target").is_none(), "{}", lines[0]);
    }

    #[test]
    fn nested_spans_give_all_their_fields() {
        let lines = capture(|| {
            let thread = tracing::info_span!("thread", thread = "app-StreamThread-1");
            let _t = thread.enter();
            let task = tracing::info_span!("task", task = "1_0");
            let _k = task.enter();
            tracing::info!("ready");
        });
        assert_eq!(lines[0]["thread"], "app-StreamThread-1");
        assert_eq!(lines[0]["task"], "1_0");
    }
}
