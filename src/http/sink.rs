//! The HTTP client that POSTs CloudEvents to a sink: a keep-alive connection pool, a timeout per
//! attempt, and retries with jittered backoff following Knative's `spec.delivery`.
//!
//! Only a 2xx answer counts as accepted. 5xx, 408, 429, timeouts and connection errors are
//! retried; any other status is the sink refusing the event, which retrying cannot fix.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::backoff::{Backoff, Curve};
use crate::cloudevents::EncodedEvent;
use crate::config::common::{BackoffPolicy, Delivery};

/// The most of a sink's answer that is read; the rest is dropped with the connection.
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// Why one attempt was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the sink answered {status}")]
    Status {
        status: u16,
        /// The sink's `Retry-After` (seconds form): the next wait is at least this long (within
        /// `backoffMaxDelay`).
        retry_after: Option<Duration>,
    },
    #[error("the sink did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the sink: {0}")]
    Connection(String),
}

impl SendError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            SendError::Timeout(_) | SendError::Connection(_) => true,
        }
    }

    /// A bounded label for metrics: `status_5xx`, `status_4xx`, `timeout`, `connection`.
    pub fn label(&self) -> &'static str {
        match self {
            SendError::Status { status, .. } if *status >= 500 => "status_5xx",
            SendError::Status { .. } => "status_4xx",
            SendError::Timeout(_) => "timeout",
            SendError::Connection(_) => "connection",
        }
    }
}

/// The sink client cannot be built: its TLS configuration (the destinations' `CACerts`) or its
/// `spec.delivery` backoff is unusable (both are checked when the manifest is decoded, so this
/// is a last line of defence).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot set up the sink client: {0}")]
pub struct SinkSetupError(String);

/// A pooled HTTP client for one component's sinks.
#[derive(Clone)]
pub struct SinkClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    delivery: Delivery,
    backoff: Backoff,
}

impl SinkClient {
    /// A client for `http://` and `https://` sinks; HTTPS is verified against the system's
    /// roots and the destinations' `CACerts`.
    pub fn new(delivery: Delivery) -> Result<Self, SinkSetupError> {
        let backoff =
            backoff(&delivery).map_err(|err| SinkSetupError(format!("spec.delivery: {err}")))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(delivery.timeout.min(Duration::from_secs(10))));
        let extra = (!delivery.ca_certs.is_empty()).then(|| delivery.ca_certs.join("\n"));
        let tls = crate::http::tls::client_config(extra.as_deref())
            .map_err(|err| SinkSetupError(format!("TLS: {err}")))?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        Ok(SinkClient {
            client,
            delivery,
            backoff,
        })
    }

    /// One attempt: POST and read the answer, within the delivery timeout.
    pub async fn post(&self, uri: &Uri, event: &EncodedEvent) -> Result<StatusCode, SendError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .body(Full::new(event.body.clone()))
            .map_err(|err| SendError::Connection(err.to_string()))?;
        // The builder set no header: take the encoded ones whole instead of re-inserting each.
        *request.headers_mut() = event.headers.clone();
        let timeout = self.delivery.timeout;
        let attempt = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|err| SendError::Connection(error_chain(&err)))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Read the body (a bounded amount) so the connection goes back to the pool.
            let _ = Limited::new(response.into_body(), MAX_ANSWER_BODY)
                .collect()
                .await;
            if status.is_success() {
                Ok(status)
            } else {
                Err(SendError::Status {
                    status: status.as_u16(),
                    retry_after,
                })
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(SendError::Timeout(timeout)))
    }

    /// Delivers with retries. `on_retry` is called before each wait (for logs and metrics).
    /// Returns the last error when every attempt failed or the error is not retryable.
    pub async fn deliver(
        &self,
        uri: &Uri,
        event: &EncodedEvent,
        mut on_retry: impl FnMut(u32, &SendError),
    ) -> Result<(), SendError> {
        let mut attempt = 0u32;
        loop {
            match self.post(uri, event).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_retryable() && attempt < self.delivery.retry => {
                    attempt += 1;
                    on_retry(attempt, &err);
                    tokio::time::sleep(wait(&self.backoff, attempt, &err)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Knative's backoff of `spec.delivery` (exponential: delay × 2^(attempt-1); linear:
/// delay × attempt), capped at `backoffMaxDelay`, with equal jitter — half fixed, half random —
/// so that replicas retrying the same sink spread out.
fn backoff(delivery: &Delivery) -> Result<Backoff, crate::backoff::InvalidBackoff> {
    let curve = match delivery.backoff_policy {
        BackoffPolicy::Exponential => Curve::Exponential,
        BackoffPolicy::Linear => Curve::Linear,
    };
    Backoff::new(curve, delivery.backoff_delay, delivery.backoff_max_delay)
        .map(Backoff::with_jitter)
}

/// The wait before retry number `attempt` (1-based) after `err`: the backoff's, or the sink's
/// `Retry-After` when that is longer, never above the ceiling.
fn wait(backoff: &Backoff, attempt: u32, err: &SendError) -> Duration {
    let wait = backoff.delay(attempt);
    match err {
        SendError::Status {
            retry_after: Some(after),
            ..
        } => (*after).max(wait).min(backoff.ceiling()),
        _ => wait,
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_delivery_policy() {
        let delivery = Delivery {
            backoff_delay: Duration::from_millis(100),
            backoff_max_delay: Duration::from_secs(1),
            ..Delivery::default()
        };
        let exponential = backoff(&delivery).unwrap();
        assert_eq!(
            exponential,
            Backoff::new(
                Curve::Exponential,
                delivery.backoff_delay,
                delivery.backoff_max_delay
            )
            .unwrap()
            .with_jitter()
        );
        let linear = Delivery {
            backoff_policy: BackoffPolicy::Linear,
            ..delivery.clone()
        };
        assert_eq!(
            backoff(&linear).unwrap().nominal(3),
            Duration::from_millis(300)
        );
        let inverted = Delivery {
            backoff_delay: Duration::from_secs(2),
            ..delivery
        };
        assert!(backoff(&inverted).is_err());
        assert!(SinkClient::new(inverted).is_err());
    }

    #[test]
    fn retry_after_is_a_floor_within_the_ceiling() {
        let backoff = Backoff::new(
            Curve::Exponential,
            Duration::from_millis(100),
            Duration::from_secs(5),
        )
        .unwrap()
        .with_jitter();
        let status = |retry_after| SendError::Status {
            status: 503,
            retry_after,
        };
        let secs = Duration::from_secs;
        for _ in 0..50 {
            assert_eq!(wait(&backoff, 1, &status(Some(secs(2)))), secs(2));
            assert_eq!(wait(&backoff, 1, &status(Some(secs(60)))), secs(5));
            let plain = wait(&backoff, 1, &status(None));
            assert!(plain >= Duration::from_millis(50) && plain <= Duration::from_millis(100));
            // A Retry-After shorter than the backoff does not shorten it.
            let later = wait(&backoff, 10, &status(Some(Duration::ZERO)));
            assert!(later >= secs(2) + Duration::from_millis(500) && later <= secs(5));
        }
    }

    #[test]
    fn retry_classification() {
        let status = |status| SendError::Status {
            status,
            retry_after: None,
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(status(408).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(SendError::Timeout(Duration::from_secs(1)).is_retryable());
    }
}
