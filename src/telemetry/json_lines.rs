//! JSON log lines with span fields flattened to the top level.
//!
//! tracing-subscriber's own JSON format nests the current span under `"span"` (with the span's
//! name under a `"name"` key of its own) and repeats every open span under `"spans"`. Log
//! pipelines (Loki, Elasticsearch, CloudWatch Insights) query top-level keys, and the
//! component's `name` field would collide with the span's name. So each line is one flat object:
//! `timestamp`, `level`, the fields of every open span (outermost first), the event's own fields
//! (`message` among them; an event field overrides a span field of the same name) and `target`.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format; pair it with `JsonFields`, which stores each span's fields as a JSON object.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Line::default();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp", Value::String(timestamp));
        line.insert("level", Value::String(event.metadata().level().to_string()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (key, value) in fields {
                        line.insert(&key, value);
                    }
                }
            }
        }
        event.record(&mut line);
        line.insert(
            "target",
            Value::String(event.metadata().target().to_string()),
        );
        writeln!(writer, "{}", line.to_json())
    }
}

/// A line's fields in the order they were first set (timestamp and level first, as people
/// read them); setting a field again replaces its value in place.
#[derive(Default)]
struct Line(Vec<(String, Value)>);

impl Line {
    fn insert(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, old)) => *old = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&Value::String(key.clone()).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        }
        out.push('}');
        out
    }
}

/// Records an event's fields into the line.
impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field.name(), Value::String(value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field.name(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field.name(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field.name(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field.name(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field.name(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field.name(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::JsonFields;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn raw(line: &(String, Value)) -> &str {
        &line.0
    }

    fn lines(log: impl FnOnce()) -> Vec<(String, Value)> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| (line.to_string(), serde_json::from_str(line).unwrap()))
            .collect()
    }

    #[test]
    fn span_fields_are_top_level_keys_next_to_the_event_fields() {
        let lines = lines(|| {
            let span = tracing::error_span!("component", component = "awss3source", name = "up");
            let _entered = span.enter();
            tracing::info!(message_id = "m-1", attempt = 2u64, ok = true, "delivered");
        });
        let line = &lines[0].1;
        assert_eq!(line["component"], "awss3source", "{line}");
        assert_eq!(line["name"], "up", "{line}");
        assert_eq!(line["message"], "delivered", "{line}");
        assert_eq!(line["message_id"], "m-1", "{line}");
        assert_eq!(line["attempt"], 2, "{line}");
        assert_eq!(line["ok"], true, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.contains('T')));
        // serde_json's Value sorts keys; the text keeps the order people read.
        let text = raw(&lines[0]);
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
        assert!(
            text.contains(",\"level\":\"INFO\",\"component\":"),
            "{text}"
        );
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
    }

    #[test]
    fn a_line_outside_any_span_has_no_component_fields() {
        let lines = lines(|| tracing::warn!(error = %"boom", "listening"));
        assert_eq!(lines[0].1["error"], "boom");
        assert!(lines[0].1.get("component").is_none(), "{}", raw(&lines[0]));
    }
}
