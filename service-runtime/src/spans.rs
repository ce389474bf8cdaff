//! The spans of work that a trace follows across processes (an HTTP request, a GraphQL
//! operation, a backend call, a gRPC call served, a consumed event), made with OpenTelemetry's
//! tracer directly and made current while their work runs.
//!
//! They are not `tracing` spans converted by a layer: going through `tracing` cost every span a
//! registry entry, an enter and exit through every layer on each poll, its fields formatted for
//! the logs and a second builder in the converting layer, which together were about half of
//! what exporting every span cost a cheap read. Log lines still name the trace and span they
//! were written in (see [`current_ids`]), read from OpenTelemetry's current context.
//!
//! When traces are not exported no tracer is installed: [`ExportedSpan::start`] then builds
//! nothing and [`ExportedSpan::run`] adds nothing to the future it is given.

use std::{future::Future, sync::OnceLock};

use futures::future::Either;
use opentelemetry::{
    Context, KeyValue,
    context::{FutureExt as _, WithContext},
    trace::{SpanBuilder, TraceContextExt as _, Tracer as _},
};
use opentelemetry_sdk::trace::SdkTracer;

/// The tracer spans are made with, once traces are exported.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Makes spans exported through `tracer` from now on. The first tracer installed stays (tests
/// that start several services in one process call this more than once).
pub(crate) fn install(tracer: SdkTracer) {
    let _first = TRACER.set(tracer);
}

/// Whether this process exports traces.
pub fn exporting() -> bool {
    TRACER.get().is_some()
}

/// A span that has begun, or none when traces are not exported. It ends when the last handle
/// to it (this one, its clones, and the futures it was given) is dropped.
#[derive(Debug, Clone, Default)]
pub struct ExportedSpan(Option<Context>);

impl ExportedSpan {
    /// No span: what [`start`](Self::start) gives when traces are not exported.
    pub const NONE: Self = Self(None);

    /// Begins the span `describe` builds, as a child of the span in the context `parent` gives
    /// (a root when it holds none). Both run only when traces are exported, so finding the
    /// parent (reading headers, say) and the names and attributes cost nothing otherwise.
    pub fn start(parent: impl FnOnce() -> Context, describe: impl FnOnce() -> SpanBuilder) -> Self {
        match TRACER.get() {
            Some(tracer) => {
                let parent = parent();
                Self(Some(parent.with_span(tracer.build_with_context(describe(), &parent))))
            }
            None => Self::NONE,
        }
    }

    /// Begins the span `describe` builds as a child of the current one (the span whose work
    /// is running on this thread), or a root when there is none.
    pub fn start_here(describe: impl FnOnce() -> SpanBuilder) -> Self {
        Self::start(Context::current, describe)
    }

    /// Runs `work` with this span current: spans begun, calls made, events written to the
    /// outbox and log lines written while it runs belong to this span.
    pub fn run<F: Future>(&self, work: F) -> Either<WithContext<F>, F> {
        match &self.0 {
            Some(context) => Either::Left(work.with_context(context.clone())),
            None => Either::Right(work),
        }
    }

    /// Runs the synchronous `work` with this span current.
    pub fn in_scope<T>(&self, work: impl FnOnce() -> T) -> T {
        let _current = self.0.clone().map(Context::attach);
        work()
    }

    /// Adds an attribute learned while the span ran (a status code).
    pub fn set_attribute(&self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(context) = &self.0 {
            context.span().set_attribute(attribute());
        }
    }
}

/// Runs `work` (a task about to be spawned) in the current span, when traces are exported.
pub fn in_current_span<F: Future>(work: F) -> Either<WithContext<F>, F> {
    if exporting() { Either::Left(work.with_current_context()) } else { Either::Right(work) }
}

/// The trace and span ids of the span whose work is running on this thread, in hex, when
/// there is one.
pub fn current_ids() -> Option<(String, String)> {
    if !exporting() {
        return None;
    }
    Context::map_current(|context| {
        let span = context.span();
        let ids = span.span_context();
        ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{SpanId, TracerProvider as _};
    use opentelemetry_sdk::{
        error::OTelSdkResult,
        trace::{SdkTracerProvider, SpanData, SpanExporter},
    };

    use super::*;

    /// Keeps the spans that ended, in memory.
    #[derive(Debug, Clone, Default)]
    struct Ended(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Ended {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("not poisoned").extend(batch);
            Ok(())
        }
    }

    #[tokio::test]
    async fn work_run_in_a_span_makes_its_spans_children_and_names_it_in_logs_and_events() {
        assert_eq!(current_ids(), None, "nothing is traced before a tracer is installed");
        let ended = Ended::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(ended.clone()).build();
        install(provider.tracer("test"));

        let request = ExportedSpan::start(Context::new, || SpanBuilder::from_name("request"));
        let (ids, traceparent) = request
            .run(async {
                let call = ExportedSpan::start_here(|| SpanBuilder::from_name("call"));
                call.run(async {
                    // A task spawned while the call runs stays in its span.
                    let spawned = tokio::spawn(in_current_span(async {
                        (current_ids(), crate::trace_context::current_traceparent())
                    }));
                    spawned.await.expect("task")
                })
                .await
            })
            .await;
        request.set_attribute(|| KeyValue::new("status", 200));
        drop(request);

        let spans = ended.0.lock().expect("not poisoned").clone();
        let find = |name: &str| spans.iter().find(|span| span.name == name).expect("ended and exported").clone();
        let (request, call) = (find("request"), find("call"));
        assert_eq!(request.parent_span_id, SpanId::INVALID, "a root");
        assert_eq!(call.parent_span_id, request.span_context.span_id());
        assert_eq!(call.span_context.trace_id(), request.span_context.trace_id());
        assert!(request.attributes.iter().any(|attribute| attribute.key.as_str() == "status"));
        let (trace_id, span_id) = ids.expect("ids inside the span");
        assert_eq!(
            (trace_id.as_str(), span_id.as_str()),
            (call.span_context.trace_id().to_string().as_str(), call.span_context.span_id().to_string().as_str())
        );
        assert_eq!(traceparent, Some(format!("00-{trace_id}-{span_id}-01")));
        assert_eq!(current_ids(), None, "outside every span");
    }
}
