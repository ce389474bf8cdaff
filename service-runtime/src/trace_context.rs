//! W3C trace context across process boundaries: written into and read from gRPC metadata
//! (HTTP/2 headers) and Kafka headers, so that one trace follows a request through every
//! service and across the broker.
//!
//! The format is W3C Trace Context, always: the propagator is used directly rather than through
//! OpenTelemetry's global one, which takes a lock on every call. With tracing export off (no
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) there are no spans, so injecting writes nothing and
//! extracting is skipped.

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator as _},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::codegen::http::{HeaderMap, HeaderName, HeaderValue};

use crate::spans::exporting;

/// The W3C header (and Kafka header) that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The W3C header that carries vendor-specific trace state alongside [`TRACEPARENT`].
const TRACESTATE: &str = "tracestate";

/// Writes the context of the current span into `headers` (`traceparent`, `tracestate`).
pub fn inject_into_headers(headers: &mut HeaderMap) {
    if !exporting() {
        return;
    }
    Context::map_current(|context| {
        TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
    });
}

/// The trace context that `headers` carry (an empty one when they carry none).
pub fn extract_from_headers(headers: &HeaderMap) -> Context {
    if !exporting() {
        return Context::new();
    }
    TraceContextPropagator::new().extract_with_context(&Context::new(), &HeaderExtractor(headers))
}

/// The W3C `traceparent` of the current span, when there is one and traces are exported.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    Context::map_current(|context| TraceContextPropagator::new().inject_context(context, &mut carrier));
    carrier.remove(TRACEPARENT)
}

/// The trace context that a `traceparent` value names (an empty one when it names none).
pub fn extract_from_traceparent(traceparent: Option<&str>) -> Context {
    match traceparent {
        Some(traceparent) if exporting() => {
            let carrier = std::collections::HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
            TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier)
        }
        _ => Context::new(),
    }
}

/// Writes the propagator's headers into gRPC metadata.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes `tracestate` even when it is empty: an empty header tells the
        // next hop nothing and costs a header to encode, send and parse on every call.
        if value.is_empty() {
            return;
        }
        let name = match key {
            TRACEPARENT => HeaderName::from_static(TRACEPARENT),
            TRACESTATE => HeaderName::from_static(TRACESTATE),
            other => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(mut value) = HeaderValue::from_str(&value) {
            // A trace header's value is new with every call or trace (`traceparent` names the
            // calling span), so HPACK gains nothing by remembering it: marked sensitive, it is
            // sent as a literal instead of pushing a fresh entry into (and an older one out of)
            // both ends' header tables on every call.
            value.set_sensitive(true);
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injector_leaves_out_an_empty_tracestate_and_marks_traceparent_sensitive() {
        let mut headers = HeaderMap::new();
        let mut injector = HeaderInjector(&mut headers);
        injector.set(TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned());
        injector.set(TRACESTATE, String::new());

        let traceparent = headers.get(TRACEPARENT).expect("traceparent written");
        assert_eq!(traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert!(traceparent.is_sensitive(), "a per-call value is not worth HPACK's table");
        assert!(headers.get(TRACESTATE).is_none(), "an empty tracestate is not sent");
    }

    #[test]
    fn a_tracestate_with_content_is_passed_on() {
        let mut headers = HeaderMap::new();
        HeaderInjector(&mut headers).set(TRACESTATE, "vendor=value".to_owned());
        assert_eq!(headers.get(TRACESTATE).expect("tracestate written"), "vendor=value");
    }
}
