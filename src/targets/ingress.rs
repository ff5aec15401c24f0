//! The HTTP side of the targets: every target at `/<metadata.name>` (and at `/` when there is
//! only one), requests bounded in size and number, CloudEvents decoded in binary, structured
//! and batch mode, and each request answered with the outcome of its own events — a result
//! CloudEvent (binary mode) for a single event, a batch of them for a batch.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::telemetry::RequestMetrics;
use super::{Outcome, Target, TargetError};
use crate::cloudevents::{Encoding, OutEvent, inbound};
use crate::http::bearer::BearerAuth;
use crate::http::server::{Body, respond};

/// Time allowed for a request body to arrive once its headers did.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Limits that protect the process from its callers.
#[derive(Debug, Clone)]
pub struct Limits {
    /// When set, every target request must carry this bearer token (401 otherwise).
    pub bearer: Option<Arc<BearerAuth>>,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Requests processed at once (503 with `Retry-After` beyond).
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies held at once, all targets together (503 with `Retry-After`
    /// beyond). A request is charged its `Content-Length`, or `max_body_bytes` without one,
    /// from before its body is read until it is answered; decoding and sending its events is
    /// bounded by that too, as they are made of its body.
    pub max_body_bytes_in_flight: usize,
    /// Connections open at once on the HTTP address (more wait in the listen backlog).
    pub max_connections: usize,
}

/// The body budget counts in KiB: a semaphore takes at most `u32::MAX` permits at once.
const BUDGET_UNIT: usize = 1024;

/// Routes requests to targets.
pub struct Ingress {
    targets: HashMap<String, Routed>,
    /// The target served at `/` (only when there is exactly one).
    root: Option<Routed>,
    limits: Limits,
    slots: Arc<Semaphore>,
    /// The body budget, in [`BUDGET_UNIT`]s.
    body_budget: Arc<Semaphore>,
}

/// A target with the handles of its request metrics.
#[derive(Clone)]
struct Routed {
    target: Target,
    metrics: Arc<RequestMetrics>,
}

impl Ingress {
    pub fn new(targets: Vec<Target>, limits: Limits) -> Self {
        let targets: Vec<Routed> = targets
            .into_iter()
            .map(|target| Routed {
                metrics: Arc::new(RequestMetrics::new(&target)),
                target,
            })
            .collect();
        let root = (targets.len() == 1).then(|| targets[0].clone());
        Ingress {
            targets: targets
                .into_iter()
                .map(|t| (t.target.name().to_string(), t))
                .collect(),
            root,
            slots: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            body_budget: Arc::new(Semaphore::new(
                limits.max_body_bytes_in_flight.div_ceil(BUDGET_UNIT),
            )),
            limits,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Handles a request for a target, or returns it when the path names none.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Request<Incoming>> {
        let path = request.uri().path().trim_end_matches('/');
        let routed = if path.is_empty() {
            self.root.as_ref()
        } else {
            self.targets.get(path.trim_start_matches('/'))
        };
        let Some(Routed { target, metrics }) = routed else {
            return Err(request);
        };
        let started = Instant::now();
        let (response, mode) = self.serve(target, metrics, request).await;
        metrics.request(target, response.status(), mode);
        metrics.seconds.record(started.elapsed().as_secs_f64());
        Ok(response)
    }

    async fn serve(
        &self,
        target: &Target,
        metrics: &RequestMetrics,
        request: Request<Incoming>,
    ) -> (Response<Body>, &'static str) {
        if let Some(bearer) = &self.limits.bearer
            && !bearer.allows(request.headers())
        {
            let error = TargetError::new(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs Authorization: Bearer <token>",
            );
            let mut response = error_response(&error);
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return (response, "none");
        }
        if request.method() != Method::POST {
            let error = TargetError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST CloudEvents to this path",
            );
            return (error_response(&error), "none");
        }
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            let mut error = TargetError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests in progress; retry shortly",
            );
            error.retry_after = Some(1);
            return (error_response(&error), "none");
        };
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let too_large = || {
            error_response(&TargetError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} bytes",
                    self.limits.max_body_bytes
                ),
            ))
        };
        if declared.is_some_and(|len| len > self.limits.max_body_bytes) {
            return (too_large(), "none");
        }
        let charge = declared
            .unwrap_or(self.limits.max_body_bytes)
            .div_ceil(BUDGET_UNIT);
        let Ok(_budget) = self
            .body_budget
            .clone()
            .try_acquire_many_owned(u32::try_from(charge.max(1)).unwrap_or(u32::MAX))
        else {
            let mut error = TargetError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the adapter already holds its limit of request bodies ({} bytes, \
                     --max-request-bytes-in-flight); retry shortly",
                    self.limits.max_body_bytes_in_flight
                ),
            );
            error.retry_after = Some(1);
            return (error_response(&error), "none");
        };
        // A client that stops sending its body must not hold a slot for ever.
        let read = tokio::time::timeout(
            BODY_READ_TIMEOUT,
            Limited::new(body, self.limits.max_body_bytes).collect(),
        );
        let body: Bytes = match read.await {
            Err(_) => {
                let error = TargetError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the request body did not arrive within {BODY_READ_TIMEOUT:?}"),
                );
                return (error_response(&error), "none");
            }
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(err))
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return (too_large(), "none");
            }
            Ok(Err(err)) => {
                let error = TargetError::new(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {err}"),
                );
                return (error_response(&error), "none");
            }
        };
        let mode = mode_of(&parts.headers);
        let events = match inbound::decode(&parts.headers, body) {
            Ok(events) => events,
            Err(err) => {
                let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
                return (error_response(&TargetError::new(status, err.message)), mode);
            }
        };
        if events.is_empty() {
            let error = TargetError::new(StatusCode::BAD_REQUEST, "the batch holds no event");
            return (error_response(&error), mode);
        }
        let ids: Vec<String> = events
            .iter()
            .map(|e| cloudevents::AttributesReader::id(e.attributes()).to_string())
            .collect();
        let outcomes = target.write(events).await;
        metrics.events(target, &outcomes);
        let response = if mode == "batch" {
            batch_response(target, &ids, outcomes)
        } else {
            match outcomes.into_iter().next() {
                Some(Ok(data)) => single_reply(target, &ids[0], data),
                Some(Err(error)) => error_response(&error),
                None => error_response(&TargetError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no outcome",
                )),
            }
        };
        (response, mode)
    }
}

fn mode_of(headers: &http::HeaderMap) -> &'static str {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if headers.contains_key("ce-specversion") {
        "binary"
    } else if content_type.starts_with("application/cloudevents-batch+json") {
        "batch"
    } else if content_type.starts_with("application/cloudevents+json") {
        "structured"
    } else {
        "none"
    }
}

/// The result CloudEvent for the event `id`.
fn result_event(target: &Target, id: &str, data: &serde_json::Value) -> OutEvent {
    OutEvent {
        id: format!("{id}.result"),
        source: target.arn(),
        ty: target.result_type().to_string(),
        subject: None,
        time: Some(chrono::Utc::now()),
        datacontenttype: "application/json",
        extensions: Vec::new(),
        data: Bytes::from(serde_json::to_vec(data).unwrap_or_default()),
    }
}

fn single_reply(target: &Target, id: &str, data: serde_json::Value) -> Response<Body> {
    let encoded = result_event(target, id, &data).encode(Encoding::Binary);
    let mut response = Response::new(Full::new(encoded.body));
    *response.headers_mut() = encoded.headers;
    response
}

/// All written: 200 with a batch of results. Otherwise the most serious status among the
/// failures (5xx before 4xx), with every event's outcome in the JSON body.
fn batch_response(target: &Target, ids: &[String], outcomes: Vec<Outcome>) -> Response<Body> {
    let failures = outcomes.iter().filter(|o| o.is_err()).count();
    let worst = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .max_by_key(|e| (e.status.is_server_error(), e.status.as_u16()))
        .map(|e| (e.status, e.retry_after));
    let Some(worst) = worst else {
        let mut body = Vec::from(&b"["[..]);
        for (index, (id, outcome)) in ids.iter().zip(&outcomes).enumerate() {
            if let Ok(data) = outcome {
                if index > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(
                    &result_event(target, id, data)
                        .encode(Encoding::Structured)
                        .body,
                );
            }
        }
        body.push(b']');
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/cloudevents-batch+json"),
        );
        return response;
    };
    let results: Vec<serde_json::Value> = ids
        .iter()
        .zip(outcomes)
        .map(|(id, outcome)| match outcome {
            Ok(data) => serde_json::json!({ "id": id, "status": 200, "result": data }),
            Err(error) => {
                let mut item = error.to_json();
                item["id"] = serde_json::Value::String(id.clone());
                item["status"] = serde_json::Value::from(error.status.as_u16());
                item
            }
        })
        .collect();
    let body = serde_json::json!({
        "error": format!("{failures} of {} events were not written", ids.len()),
        "results": results,
    });
    json_response(worst.0, worst.1, &body)
}

/// `{"error": ..., "code": ...}` with the error's status and `Retry-After`.
pub fn error_response(error: &TargetError) -> Response<Body> {
    json_response(error.status, error.retry_after, &error.to_json())
}

fn json_response(
    status: StatusCode,
    retry_after: Option<u64>,
    body: &serde_json::Value,
) -> Response<Body> {
    let mut response = respond(status, "application/json", body.to_string());
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
