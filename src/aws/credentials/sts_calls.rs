//! STS fetches held to the same rules as every other AWS call: bounded in time and counted.
//!
//! aws-config's `AssumeRoleProvider` and `WebIdentityTokenCredentialsProvider` build their own
//! STS clients, which the adapter's call interceptor ([`crate::aws`]) never sees, and they have
//! no read or operation timeout: an STS endpoint that accepts the connection and never answers
//! would hang the refresh for ever. [`TimedSts`] wraps such a provider: each fetch gets
//! [`STS_TIMEOUT`] in all, and is counted in `aws_event_adapter_aws_calls_total` with
//! `service="STS"` and the operation's name.

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use crate::telemetry::Component;

/// The longest one STS fetch (with the SDK's own retries) may take.
pub const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// A credentials provider that calls STS, with a deadline and a count per fetch.
#[derive(Debug)]
pub struct TimedSts {
    inner: SharedCredentialsProvider,
    operation: &'static str,
    kind: &'static str,
    name: String,
    timeout: Duration,
}

impl TimedSts {
    /// `operation` is the STS operation the provider calls (`AssumeRole`,
    /// `AssumeRoleWithWebIdentity`).
    pub fn new(
        inner: SharedCredentialsProvider,
        operation: &'static str,
        component: &Component,
    ) -> Self {
        TimedSts {
            inner,
            operation,
            kind: component.kind,
            name: component.name.clone(),
            timeout: STS_TIMEOUT,
        }
    }
}

impl ProvideCredentials for TimedSts {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let result =
                match tokio::time::timeout(self.timeout, self.inner.provide_credentials()).await {
                    Ok(result) => result,
                    Err(_) => Err(CredentialsError::provider_timed_out(self.timeout)),
                };
            metrics::counter!(
                "aws_event_adapter_aws_calls_total",
                "component" => self.kind,
                "name" => self.name.clone(),
                "service" => "STS",
                "operation" => self.operation,
                "outcome" => if result.is_ok() { "success" } else { "error" }
            )
            .increment(1);
            result
        })
    }
}
