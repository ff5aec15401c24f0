//! The S3 source's internal events: each notable thing that happens is one method here that
//! both logs (structured fields) and counts (Prometheus), so logs and metrics never disagree.
//!
//! Counter handles are registered once per source with their label set, so the hot path does
//! no registry lookups. Labels are bounded: component kind, component name, and small enums.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::notification::Malformed;
use crate::http::sink::SendError;
use crate::telemetry::log_limit::error_log_due;

/// Codes that mean AWS refused the credentials or the permission, not that SQS failed.
fn is_refusal(code: &str) -> bool {
    matches!(
        code,
        "http_403"
            | "AccessDenied"
            | "AccessDeniedException"
            | "SignatureDoesNotMatch"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "RequestExpired"
    )
}

pub struct SourceTelemetry {
    /// `awss3source` or `awssqssource`.
    kind: &'static str,
    name: String,
    /// How the source gets credentials, named in AWS error logs.
    auth: &'static str,
    received: Counter,
    deleted: Counter,
    visibility_extended: Counter,
    filtered: Counter,
    test_events_dropped: Counter,
    test_events_forwarded: Counter,
    unrecognized: Counter,
    delivered: Counter,
    dead_lettered: Counter,
    failed: Counter,
    retries: Counter,
    in_flight: Gauge,
    pollers: Gauge,
    poller_panics: Counter,
    delivery_seconds: Histogram,
    lag_seconds: Histogram,
}

impl SourceTelemetry {
    pub fn new(kind: &'static str, name: &str, auth: &'static str) -> Self {
        let labels = [("component", kind.to_string()), ("name", name.to_string())];
        let outcome = |outcome: &'static str| {
            let mut l = labels.to_vec();
            l.push(("outcome", outcome.to_string()));
            counter!("aws_event_adapter_sink_events_total", &l)
        };
        let test_events = |action: &'static str| {
            let mut l = labels.to_vec();
            l.push(("action", action.to_string()));
            counter!("aws_event_adapter_source_test_events_total", &l)
        };
        SourceTelemetry {
            kind,
            name: name.to_string(),
            auth,
            received: counter!("aws_event_adapter_sqs_messages_received_total", &labels),
            deleted: counter!("aws_event_adapter_sqs_messages_deleted_total", &labels),
            visibility_extended: counter!(
                "aws_event_adapter_sqs_visibility_extensions_total",
                &labels
            ),
            filtered: counter!("aws_event_adapter_source_records_filtered_total", &labels),
            test_events_dropped: test_events("dropped"),
            test_events_forwarded: test_events("forwarded"),
            unrecognized: counter!(
                "aws_event_adapter_source_unrecognized_messages_total",
                &labels
            ),
            delivered: outcome("delivered"),
            dead_lettered: outcome("dead_lettered"),
            failed: outcome("failed"),
            retries: counter!("aws_event_adapter_sink_retries_total", &labels),
            in_flight: gauge!("aws_event_adapter_source_messages_in_flight", &labels),
            pollers: gauge!("aws_event_adapter_source_receive_concurrency", &labels),
            poller_panics: counter!("aws_event_adapter_source_poller_panics_total", &labels),
            delivery_seconds: histogram!("aws_event_adapter_sink_delivery_seconds", &labels),
            lag_seconds: histogram!("aws_event_adapter_source_lag_seconds", &labels),
        }
    }

    fn labels(&self, extra: (&'static str, &str)) -> Vec<(&'static str, String)> {
        vec![
            ("component", self.kind.to_string()),
            ("name", self.name.clone()),
            (extra.0, extra.1.to_string()),
        ]
    }

    /// `awss3source` or `awssqssource`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn ready(&self, queue_url: &str) {
        tracing::info!(queue_url, "receiving from the queue");
    }

    pub fn messages_received(&self, count: usize) {
        self.received.increment(count as u64);
    }

    /// `now − SentTimestamp`: how long the message waited in the queue.
    pub fn lag(&self, lag: Duration) {
        self.lag_seconds.record(lag.as_secs_f64());
    }

    /// The gauge of messages in flight, moved by [`super::heartbeat::InFlight`].
    pub fn in_flight_gauge(&self) -> Gauge {
        self.in_flight.clone()
    }

    /// Concurrent `ReceiveMessage` long polls (the pollers running).
    /// Pollers that panicked (each is started again; see `supervisor`).
    pub fn poller_panics(&self) -> Counter {
        self.poller_panics.clone()
    }

    pub fn pollers_gauge(&self) -> Gauge {
        self.pollers.clone()
    }

    pub fn messages_deleted(&self, count: usize) {
        self.deleted.increment(count as u64);
    }

    /// `code` must come from a bounded set (see [`crate::aws::bounded_code`]).
    pub fn delete_failed(&self, message_id: &str, code: &str, message: &str) {
        tracing::warn!(
            message_id,
            code,
            error = message,
            "SQS message not deleted; it will be delivered again"
        );
        counter!(
            "aws_event_adapter_sqs_delete_failures_total",
            &self.labels(("code", code))
        )
        .increment(1);
    }

    pub fn message_released(&self, message_id: &str, reason: &'static str, delay: Duration) {
        tracing::info!(
            message_id,
            reason,
            delay_secs = delay.as_secs(),
            "SQS message left in the queue for a later attempt"
        );
        counter!(
            "aws_event_adapter_sqs_messages_released_total",
            &self.labels(("reason", reason))
        )
        .increment(1);
    }

    pub fn visibility_extended(&self, count: usize) {
        self.visibility_extended.increment(count as u64);
    }

    /// A call to SQS failed (other than the per-entry failures above). Counted every time,
    /// logged at most once per 10 s per operation and code (with the lines left out since).
    pub fn sqs_error(&self, operation: &'static str, code: &str, message: &str) {
        let mut labels = self.labels(("operation", operation));
        labels.push(("code", code.to_string()));
        counter!("aws_event_adapter_aws_errors_total", &labels).increment(1);
        let Some(suppressed) = error_log_due(self.kind, &self.name, operation, code) else {
            return;
        };
        if is_refusal(code) {
            tracing::warn!(
                operation,
                code,
                auth = self.auth,
                error = message,
                suppressed,
                "AWS refused the source's credentials or permissions; retrying with backoff"
            );
        } else {
            tracing::warn!(
                operation,
                code,
                auth = self.auth,
                error = message,
                suppressed,
                "SQS call failed"
            );
        }
    }

    /// SQS denies `DeleteMessage`: the source stops receiving (and is unready) until a delete
    /// succeeds again. Logged once when it happens (each denied call is counted by
    /// [`SourceTelemetry::sqs_error`]).
    pub fn deletes_denied(&self, code: &str, message: &str) {
        tracing::error!(
            code,
            auth = self.auth,
            error = message,
            "SQS denies DeleteMessage (the identity needs sqs:DeleteMessage): not receiving, and not ready, until a delete succeeds; retrying the deletes with backoff"
        );
    }

    /// A delete succeeded after [`SourceTelemetry::deletes_denied`]: receiving resumes.
    pub fn deletes_allowed_again(&self) {
        tracing::info!("SQS accepts DeleteMessage again; receiving resumes");
    }

    /// An optional call was denied: its feature is switched off for good, with one warning.
    pub fn feature_disabled(&self, feature: &'static str, action: &'static str) {
        tracing::warn!(
            feature,
            missing_permission = action,
            "permission denied; running without this feature"
        );
        counter!(
            "aws_event_adapter_source_features_disabled_total",
            &self.labels(("feature", feature))
        )
        .increment(1);
    }

    pub fn record_filtered(&self, event_name: &str) {
        tracing::debug!(event_name, "record does not match spec.eventTypes; dropped");
        self.filtered.increment(1);
    }

    pub fn test_event(&self, message_id: &str, forwarded: bool) {
        tracing::info!(message_id, forwarded, "s3:TestEvent received");
        if forwarded {
            self.test_events_forwarded.increment(1);
        } else {
            self.test_events_dropped.increment(1);
        }
    }

    pub fn unrecognized(&self, message_id: &str, forwarded: bool) {
        tracing::info!(
            message_id,
            forwarded,
            "message body is not an S3 notification"
        );
        self.unrecognized.increment(1);
    }

    /// Broken records or bodies of one message: each counted by reason, logged once.
    pub fn malformed(&self, message_id: &str, problems: &[Malformed]) {
        if let Some(first) = problems.first() {
            tracing::warn!(message_id, count = problems.len(), reason = first.label(), error = %first, "malformed S3 notification");
        }
        for problem in problems {
            counter!(
                "aws_event_adapter_source_malformed_total",
                &self.labels(("reason", problem.label()))
            )
            .increment(1);
        }
    }

    pub fn sink_retry(&self, event_id: &str, attempt: u32, error: &SendError) {
        tracing::debug!(event_id, attempt, error = %error, "sink attempt failed; retrying");
        self.retries.increment(1);
    }

    pub fn delivered(&self, took: Duration) {
        self.delivered.increment(1);
        self.delivery_seconds.record(took.as_secs_f64());
    }

    pub fn delivery_failed(&self, message_id: &str, event_id: &str, error: &SendError) {
        tracing::warn!(message_id, event_id, reason = error.label(), error = %error, "event not accepted by the sink");
        self.failed.increment(1);
    }

    pub fn dead_lettered(&self, message_id: &str, event_id: &str) {
        tracing::info!(message_id, event_id, "event sent to the dead-letter sink");
        self.dead_lettered.increment(1);
    }

    pub fn dead_letter_failed(&self, message_id: &str, error: &SendError) {
        tracing::warn!(message_id, error = %error, "dead-letter sink did not accept the event");
    }
}
