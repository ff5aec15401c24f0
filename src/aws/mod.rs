//! AWS plumbing shared by components: ARNs, SDK configuration with the component's credentials,
//! and reading error codes out of SDK errors.

pub mod arn;
pub mod credentials;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::config::common::Auth;

/// SDK configuration for one component in one region. Endpoints come from the standard
/// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, as every AWS SDK reads them.
pub async fn sdk_config(region: &str, auth: &Auth) -> Result<SdkConfig, String> {
    let loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_string()));
    let loader = match credentials::provider(auth)? {
        Some(provider) => loader.credentials_provider(provider),
        None => loader,
    };
    Ok(loader.load().await)
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
