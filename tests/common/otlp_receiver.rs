//! A small OTLP/HTTP trace receiver, standing in for the OpenTelemetry Collector (which no
//! package registry reachable here offers): an HTTP server on a free port that accepts
//! `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf, decodes it with the
//! `opentelemetry-proto` crate's generated (prost) types and keeps every span for the test.

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One span as it arrived, ids in lower-case hex (the form `traceparent` carries them in).
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The `service.name` of its resource.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, empty for a root span.
    pub parent_span_id: String,
    /// Its attributes, values rendered as text.
    pub attributes: Vec<(String, String)>,
    /// Every event's name and attributes, rendered as text.
    pub events: Vec<String>,
}

impl ReceivedSpan {
    /// The attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Everything recorded about the span as one text: name, attribute keys and values, events.
    pub fn all_text(&self) -> String {
        let attrs: Vec<String> = self.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {} {}", self.name, attrs.join(" "), self.events.join(" "))
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    requests: usize,
}

/// A running receiver.
#[derive(Clone)]
pub struct OtlpReceiver {
    /// Its base URL (what `otlp_endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT` take).
    pub url: String,
    received: Arc<Mutex<Received>>,
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(Any::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn pairs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans of one export request.
fn decode(body: &[u8]) -> Result<Vec<ReceivedSpan>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)?;
    let mut spans = Vec::new();
    for rs in request.resource_spans {
        let resource = rs.resource.map(|r| pairs(&r.attributes)).unwrap_or_default();
        let service =
            resource.iter().find(|(k, _)| k == "service.name").map(|(_, v)| v.clone()).unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            let events =
                span.events.iter().map(|e| format!("{} {:?}", e.name, pairs(&e.attributes))).collect();
            spans.push(ReceivedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: pairs(&span.attributes),
                events,
            });
        }
    }
    Ok(spans)
}

impl OtlpReceiver {
    /// Starts it on a free port.
    pub fn start() -> OtlpReceiver {
        let received: Arc<Mutex<Received>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let app_received = received.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(app_received.clone())).route(
                "/v1/traces",
                web::post().to(|body: web::Bytes, received: web::Data<Arc<Mutex<Received>>>| async move {
                    let Ok(spans) = decode(&body) else {
                        return HttpResponse::BadRequest().body("not an ExportTraceServiceRequest");
                    };
                    let mut r = received.lock().unwrap();
                    r.requests += 1;
                    r.spans.extend(spans);
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .body(ExportTraceServiceResponse::default().encode_to_vec())
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        OtlpReceiver { url, received }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.received.lock().unwrap().spans.clone()
    }

    /// How many export requests arrived.
    pub fn requests(&self) -> usize {
        self.received.lock().unwrap().requests
    }

    /// Waits (at most 15 s) until `done` holds for the spans received, and returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[ReceivedSpan]) -> bool) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if Instant::now() > deadline {
                let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
                panic!("the receiver never got {what}; it has {names:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The spans of `trace_id`, and whether `span` descends from `ancestor` among them.
pub fn descends_from(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let mut current = span.clone();
    for _ in 0..32 {
        if current.parent_span_id == ancestor.span_id && current.trace_id == ancestor.trace_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == current.parent_span_id && s.trace_id == current.trace_id) {
            Some(parent) => current = parent.clone(),
            None => return false,
        }
    }
    false
}
