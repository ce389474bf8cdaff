//! How the human-readable (`pretty`) log format writes fields: as tracing-subscriber's default
//! does, except the OpenTelemetry attributes of the spans made for export.
//!
//! Those spans carry semantic-convention attributes (`rpc.method`, `messaging.kafka.offset`,
//! `http.route`, …), all named with a dot; they belong to the exported trace. Formatting each of
//! them into every span's log context cost more than anything else tracing does per request
//! (callgrind, `product(id)` with export on). A log line inside such a span still shows the
//! span's name and its `otel.name`, which says which call or topic it was. Event fields are
//! never named with a dot here, so log lines keep every field they write.

use std::fmt;

use tracing::{
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    field::{MakeVisitor as _, RecordFields, VisitOutput as _},
    fmt::{
        FormattedFields,
        format::{DefaultFields, FormatFields, Writer},
    },
};

/// The field formatter of the pretty log format.
#[derive(Debug, Default)]
pub struct LogFields {
    default: DefaultFields,
}

impl<'writer> FormatFields<'writer> for LogFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = self.default.make_visitor(writer);
        fields.record(&mut WithoutTraceAttributes(&mut visitor));
        visitor.finish()
    }

    /// Appends fields recorded after the span began, with no separator left behind when every
    /// one of them was a trace attribute.
    fn add_fields(&self, current: &'writer mut FormattedFields<Self>, fields: &span::Record<'_>) -> fmt::Result {
        let before = current.fields.len();
        if before > 0 {
            current.fields.push(' ');
        }
        <Self as FormatFields<'_>>::format_fields(self, current.as_writer(), fields)?;
        if before > 0 && current.fields.len() == before + 1 {
            current.fields.truncate(before);
        }
        Ok(())
    }
}

/// Whether a field is written into log lines.
fn is_logged(field: &Field) -> bool {
    let name = field.name();
    !name.contains('.') || name == "otel.name"
}

/// Passes every field but the trace attributes on to the visitor it wraps.
struct WithoutTraceAttributes<'a>(&'a mut dyn Visit);

impl Visit for WithoutTraceAttributes<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if is_logged(field) {
            self.0.record_debug(field, value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if is_logged(field) {
            self.0.record_str(field, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if is_logged(field) {
            self.0.record_error(field, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Output(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Output {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_keep_event_fields_and_span_names_but_not_trace_attributes() {
        let output = Output::default();
        let writer = output.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(LogFields::default())
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "grpc server call",
                otel.name = "order.OrderService/CreateOrder",
                rpc.method = "CreateOrder",
                rpc.grpc.status_code = tracing::field::Empty,
                attempt = 2
            );
            span.record("rpc.grpc.status_code", 0);
            span.in_scope(|| tracing::info!(order_id = "o-1", reason = ?Some("stock"), "order decided"));
        });
        let written = String::from_utf8(output.0.lock().expect("lock").clone()).expect("UTF-8");
        assert!(
            written.contains(r#"grpc server call{otel.name="order.OrderService/CreateOrder" attempt=2}:"#),
            "{written}"
        );
        assert!(written.contains(r#"order decided order_id="o-1" reason=Some("stock")"#), "{written}");
        assert!(!written.contains("rpc."), "{written}");
    }
}
