//! Targets: components that receive CloudEvents over HTTP and write them to AWS — an SQS queue
//! ([`sqs`]) or an S3 bucket ([`s3`]). [`ingress`] is the HTTP side they share: routing, limits,
//! decoding and replies.
//!
//! Every target answers each event with either reply data (a JSON object that becomes the
//! `data` of the result CloudEvent) or a [`TargetError`] carrying the HTTP status it deserves.

pub mod ingress;
pub mod s3;
pub mod sqs;
mod telemetry;

pub(crate) use telemetry::record_aws_error;

use std::sync::Arc;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use cloudevents::Event;
use http::StatusCode;

use crate::aws::HttpStatus;
use crate::backoff::{Backoff, Curve, Retry};
use crate::cloudevents::inbound::InboundEvent;

/// Why a target could not start. AWS being unreachable is not one: the target starts unready
/// and retries in the background.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("credentials: {0}")]
    Credentials(#[from] crate::aws::credentials::SetupError),
}

/// Why an event was not written, as the HTTP caller should see it. Displayed as its message,
/// with the HTTP status in front (`502 Bad Gateway: PutObject: NoSuchBucket ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct TargetError {
    pub status: StatusCode,
    pub message: String,
    /// The AWS error code, when AWS refused.
    pub code: Option<String>,
    /// Seconds the caller should wait before retrying (throttling, network trouble).
    pub retry_after: Option<u64>,
}

impl TargetError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        TargetError {
            status,
            message: message.into(),
            code: None,
            retry_after: None,
        }
    }

    /// Maps an AWS error: the caller's mistakes (too large, invalid content) are 4xx; AWS
    /// refusing the adapter (missing queue or bucket, access denied) is 502; throttling and
    /// network failures are 503 with `Retry-After`.
    pub fn from_aws<E, R>(operation: &str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: HttpStatus + std::fmt::Debug,
    {
        let message = format!("{operation}: {}", crate::aws::error_message(err));
        match err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().map(str::to_string);
                let status = service.raw().status_code();
                let mapped = match code.as_deref() {
                    Some(code) => status_for_code(code, status),
                    None if status == 403 => StatusCode::BAD_GATEWAY,
                    None if status == 429 || status == 503 => StatusCode::SERVICE_UNAVAILABLE,
                    None => StatusCode::BAD_GATEWAY,
                };
                TargetError {
                    retry_after: (mapped == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
                    status: mapped,
                    message,
                    code: Some(code.unwrap_or_else(|| format!("http_{status}"))),
                }
            }
            _ => TargetError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message,
                code: Some(crate::aws::error_label(err)),
                retry_after: Some(1),
            },
        }
    }

    /// The JSON body of an error answer.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(code) = &self.code {
            body["code"] = serde_json::Value::String(code.clone());
        }
        body
    }
}

/// The HTTP status for an AWS error code (S3 and SQS codes; others by AWS's own status).
pub fn status_for_code(code: &str, aws_status: u16) -> StatusCode {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "RequestThrottled"
        | "SlowDown"
        | "TooManyRequestsException"
        | "KmsThrottled"
        | "ServiceUnavailable"
        | "InternalError"
        | "InternalFailure" => StatusCode::SERVICE_UNAVAILABLE,
        "InvalidMessageContents"
        | "InvalidParameterValue"
        | "InvalidAttributeValue"
        | "InvalidAttributeName"
        | "InvalidArgument"
        | "KeyTooLongError" => StatusCode::BAD_REQUEST,
        "MessageTooLong" | "BatchRequestTooLong" | "EntityTooLarge" => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        _ if aws_status >= 500 => StatusCode::SERVICE_UNAVAILABLE,
        // Missing queue or bucket, access denied, bad credentials: the adapter's setup, not
        // the caller's request, is wrong.
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Hex SHA-256 of an event's `source` and `id` — what identifies an event per the CloudEvents
/// spec — so a retried event maps to the same SQS deduplication id and the same S3 key.
pub fn event_identity_hash(event: &Event) -> String {
    use cloudevents::AttributesReader;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(event.source().as_bytes());
    hasher.update([0]);
    hasher.update(event.id().as_bytes());
    hex::encode(hasher.finalize())
}

/// Between readiness probes until one succeeds: 0.5 s, doubling up to 30 s. With equal
/// jitter, so that replicas do not retry in step.
const READY_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(30),
)
.with_jitter();

/// Calls `probe` (the cheap call a target needs anyway: `GetQueueUrl`, `GetBucketLocation`)
/// until it succeeds, with backoff, then raises readiness; `what` names the resource in logs
/// (the target itself is named by the span it runs in).
pub(crate) async fn become_ready<F, Fut>(
    what: &str,
    ready: crate::http::health::ReadyFlag,
    shutdown: tokio_util::sync::CancellationToken,
    mut probe: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), TargetError>>,
{
    let mut retry = Retry::new(READY_BACKOFF);
    loop {
        match probe().await {
            Ok(()) => {
                tracing::info!(resource = %what, "target ready");
                ready.set(true);
                return;
            }
            Err(err) => tracing::warn!(
                resource = %what,
                code = err.code.as_deref().unwrap_or(""),
                error = %err.message,
                "not reachable yet; retrying"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(retry.next_delay()) => {},
            () = shutdown.cancelled() => return,
        }
    }
}

/// The reply data of one event, or why it was not written.
pub type Outcome = Result<serde_json::Value, TargetError>;

/// A configured target.
#[derive(Clone)]
pub enum Target {
    Sqs(Arc<sqs::SqsTarget>),
    S3(Arc<s3::S3Target>),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::Sqs(t) => t.name(),
            Target::S3(t) => t.name(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Target::Sqs(_) => sqs::config::COMPONENT,
            Target::S3(_) => s3::config::COMPONENT,
        }
    }

    /// The CloudEvent type of replies.
    pub fn result_type(&self) -> &'static str {
        match self {
            Target::Sqs(_) => "io.triggermesh.targets.aws.sqs.result",
            Target::S3(_) => "io.triggermesh.targets.aws.s3.result",
        }
    }

    /// The CloudEvent source of replies: the queue or bucket ARN.
    pub fn arn(&self) -> String {
        match self {
            Target::Sqs(t) => t.arn(),
            Target::S3(t) => t.arn(),
        }
    }

    /// On shutdown: stops accepting events and finishes those accepted (the SQS target's
    /// batched sends; an S3 target's writes are the requests themselves); `false` if that
    /// did not happen by `deadline`.
    pub async fn drain(&self, deadline: tokio::time::Instant) -> bool {
        match self {
            Target::Sqs(t) => t.drain(deadline).await,
            Target::S3(_) => true,
        }
    }

    /// The target's span: what runs in it is logged with the target's kind and name.
    pub fn span(&self) -> &tracing::Span {
        match self {
            Target::Sqs(t) => t.span(),
            Target::S3(t) => t.span(),
        }
    }

    /// Writes the events of one request; one outcome per event, in order. Runs in the
    /// target's span, so what it logs names the target.
    pub async fn write(&self, events: Vec<InboundEvent>) -> Vec<Outcome> {
        use tracing::Instrument;
        let span = self.span().clone();
        match self {
            Target::Sqs(t) => t.write(events).instrument(span).await,
            Target::S3(t) => t.write(events).instrument(span).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_codes_map_to_who_is_at_fault() {
        assert_eq!(
            status_for_code("ThrottlingException", 400),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status_for_code("MessageTooLong", 400),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status_for_code("InvalidMessageContents", 400),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_for_code("AccessDenied", 403),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_for_code("AWS.SimpleQueueService.NonExistentQueue", 400),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_for_code("NoSuchBucket", 404),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_for_code("Whatever", 500),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
