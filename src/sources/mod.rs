//! Sources: components that read from AWS and send CloudEvents to a sink.

pub mod s3;
pub mod sqs;

use crate::aws::credentials::SetupError;
use crate::http::sink::SinkSetupError;

/// Why a source stopped on its own instead of running until shutdown. Every variant is a
/// configuration that cannot work here; AWS and sink failures at run time are retried, never
/// returned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("credentials: {0}")]
    Credentials(#[from] SetupError),
    #[error(transparent)]
    Sink(#[from] SinkSetupError),
}
