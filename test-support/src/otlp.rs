//! A real OTLP/gRPC trace receiver on a free port: what the processes export, kept for a test
//! to read (`OTEL_EXPORTER_OTLP_ENDPOINT` = [`OtlpReceiver::endpoint`]).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tokio::task::JoinHandle;

/// One span as received: ids in hex, its service's name, and its string attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// OTLP's span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }
}

/// The receiver; stops when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Binds 127.0.0.1 on a free port and serves the OTLP trace service there, keeping every
    /// span for [`spans`](Self::spans).
    pub async fn start() -> anyhow::Result<Self> {
        Self::serve(true).await
    }

    /// Like [`start`](Self::start), but decodes and counts spans without keeping them: for
    /// measurements that export hundreds of thousands.
    pub async fn start_counting() -> anyhow::Result<Self> {
        Self::serve(false).await
    }

    async fn serve(keep: bool) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let service = TraceServiceServer::new(Collector { spans: Arc::clone(&spans), count: Arc::clone(&count), keep });
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            if let Err(error) =
                tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await
            {
                eprintln!("the OTLP receiver stopped: {error}");
            }
        });
        Ok(Self { addr, spans, count, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many spans have arrived so far.
    pub fn span_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Every span received so far (none when counting only).
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    count: Arc<AtomicUsize>,
    keep: bool,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        if !self.keep {
            let spans = request.resource_spans.iter().flat_map(|resource| &resource.scope_spans);
            self.count.fetch_add(spans.map(|scope| scope.spans.len()).sum(), Ordering::Relaxed);
            return Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }));
        }
        let mut received = Vec::new();
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.map(|resource| strings(resource.attributes)).unwrap_or_default();
            let service = resource.iter().find(|(key, _)| key == "service.name").map(|(_, name)| name.clone());
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                received.push(ReceivedSpan {
                    service: service.clone().unwrap_or_default(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: strings(span.attributes),
                });
            }
        }
        self.count.fetch_add(received.len(), Ordering::Relaxed);
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// The attributes with a string, integer or boolean value, as strings.
fn strings(attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .filter_map(|attribute| {
            let value = match attribute.value?.value? {
                Value::StringValue(text) => text,
                Value::IntValue(number) => number.to_string(),
                Value::BoolValue(flag) => flag.to_string(),
                Value::DoubleValue(number) => number.to_string(),
                _ => return None,
            };
            Some((attribute.key, value))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
