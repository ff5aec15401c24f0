//! AWS plumbing shared by components: ARNs, SDK configuration with the component's credentials,
//! and reading error codes out of SDK errors.

pub mod arn;
pub mod call_metrics;
pub mod credentials;
pub mod s3;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use aws_config::identity::IdentityCache;

use credentials::Refreshing;

/// SDK configuration for one component in one region. Endpoints come from the component's
/// `spec.endpoint.url` when it has one, else from the standard `AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_<SERVICE>` variables, as every AWS SDK reads them.
/// The SDK's identity cache is off: [`Refreshing`] already holds the current credentials in
/// memory, and the cache would keep rotated keys for up to 15 minutes.
pub async fn sdk_config(
    region: &str,
    credentials: &Refreshing,
    endpoint: Option<&str>,
) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .identity_cache(IdentityCache::no_cache())
        .credentials_provider(credentials.clone());
    let Some(endpoint) = endpoint else {
        return loader.load().await;
    };
    // A component's own endpoint comes first. The SDK lets a service's variable
    // (`AWS_ENDPOINT_URL_SQS`) win even over an endpoint set in code, unless the variables are
    // not consulted at all: so they are not, for this component.
    let mut builder = loader.endpoint_url(endpoint).load().await.into_builder();
    builder.set_service_config(Some(NoServiceVariables));
    builder.build()
}

/// Service-specific configuration variables (`AWS_ENDPOINT_URL_SQS`, ...), all unset: for a
/// component with an endpoint of its own.
#[derive(Debug)]
struct NoServiceVariables;

impl aws_types::service_config::LoadServiceConfig for NoServiceVariables {
    fn load_config(&self, _key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        None
    }
}

/// An SQS client from `sdk` with bounded call times, its calls counted for `component`.
///
/// The SDK's stalled-stream protection is off for SQS: its bodies are small (256 KiB at most)
/// and every attempt is bounded by `attempt_timeout` anyway, while the throughput check it
/// polls on every body read cost 2 % of the SQS target's CPU under load.
pub fn sqs_client(
    sdk: &SdkConfig,
    component: &crate::telemetry::Component,
    attempt_timeout: std::time::Duration,
) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(call_metrics::CallMetrics::new(component))
            .stalled_stream_protection(
                aws_sdk_sqs::config::StalledStreamProtectionConfig::disabled(),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .operation_attempt_timeout(attempt_timeout)
                    .build(),
            )
            .build(),
    )
}

/// The region for calls that have no resource region of their own (e.g. `GetBucketLocation`,
/// STS): `AWS_REGION`, else `AWS_DEFAULT_REGION`, else us-east-1.
pub fn default_region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".to_string())
}

/// Whether AWS refused the call because the credentials expired or are unknown: worth one
/// forced refresh and one retry.
pub fn is_credentials_error<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ExpiredToken"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
                    | "RequestExpired"
            )
        ),
        _ => false,
    }
}

/// Runs an AWS call; when it fails because the credentials expired, forces a refresh and runs
/// it once more.
pub async fn with_fresh_credentials<T, E, R, F, Fut>(
    credentials: &Refreshing,
    call: F,
) -> Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
{
    let started = tokio::time::Instant::now();
    match call().await {
        Err(err) if is_credentials_error(&err) => {
            tracing::info!(
                mode = credentials.mode(),
                "AWS rejected the credentials as expired or unknown; refreshing and retrying once"
            );
            let _ = credentials.refresh_unless_newer_than(started).await;
            call().await
        }
        other => other,
    }
}

/// The AWS error codes the adapter reacts to or reports; anything else is `other`, so metric
/// labels stay a bounded set.
const KNOWN_CODES: [&str; 16] = [
    "AccessDenied",
    "AccessDeniedException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "OverLimit",
    "RequestThrottled",
    "ThrottlingException",
    "ExpiredToken",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "NoSuchBucket",
    "KmsThrottled",
];

/// An AWS error code as a metric label: itself when known, else `other`.
pub fn bounded_code(code: &str) -> String {
    if KNOWN_CODES.contains(&code) {
        code.to_string()
    } else {
        "other".to_string()
    }
}

/// The error's AWS code as a bounded label: a known code, `http_<status>` when the service
/// answered without a readable code, `timeout`, `network`, or `other`.
pub fn error_label<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String
where
    R: HttpStatus,
{
    match err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) if KNOWN_CODES.contains(&code) => code.to_string(),
            Some(_) => "other".to_string(),
            None => format!("http_{}", service.raw().status_code()),
        },
        SdkError::TimeoutError(_) => "timeout".to_string(),
        SdkError::DispatchFailure(_) => "network".to_string(),
        SdkError::ResponseError(response) => format!("http_{}", response.raw().status_code()),
        _ => "other".to_string(),
    }
}

/// Whether a bounded error label ([`error_label`]) says AWS asked the caller to slow down.
pub fn is_throttling(label: &str) -> bool {
    label.contains("Throttl") || label == "http_429"
}

/// Whether AWS refused the call for lack of permission (HTTP 403 when the body has no code).
pub fn is_access_denied<E: ProvideErrorMetadata, R: HttpStatus>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => code.starts_with("AccessDenied") || code == "UnauthorizedOperation",
            None => service.raw().status_code() == 403,
        },
        _ => false,
    }
}

/// The message of an SDK error and its causes, for logs (never contains credentials).
pub fn error_message<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> String {
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => aws_sdk_sqs::error::DisplayErrorContext(err).to_string(),
            }
        }
        _ => aws_sdk_sqs::error::DisplayErrorContext(err).to_string(),
    }
}

/// Access to the HTTP status of the raw response type the SDK hands back with errors.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
