//! The `run` command: starts every configured component, the HTTP server (health, readiness),
//! the metrics server, and drains everything on SIGTERM within the grace period.
//!
//! Each component runs inside its own span ([`Component::span`]), so every log line of its
//! tasks carries its kind and name.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::http::health::Health;
use crate::http::server::{self, Handler, ListenError, json_error, respond};
use crate::manifest::Config;
use crate::sources::SourceError;
use crate::targets::ingress::{Ingress, Limits};
use crate::targets::s3::S3Target;
use crate::targets::sqs::SqsTarget;
use crate::targets::{StartError, Target};
use crate::telemetry::{Component, MetricsError};

/// Why `run` ended with a failure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A source stopped on its own: its configuration cannot work here.
    #[error("source {name:?}: {source}")]
    Source { name: String, source: SourceError },
    /// A target could not start: its configuration cannot work here.
    #[error("target {name:?}: {source}")]
    Target { name: String, source: StartError },
    /// A component's task panicked: a bug.
    #[error("a component task ended abnormally: {0}")]
    Panicked(String),
}

/// Listener addresses and shutdown timing.
#[derive(Clone)]
pub struct RunOptions {
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub shutdown_grace: Duration,
    /// Limits of the targets' HTTP endpoint.
    pub limits: Limits,
    /// TLS on the HTTP listener (targets and health), when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Runs until `shutdown` fires and every component has drained.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    for line in &config.skipped {
        tracing::info!("{line}");
    }
    let metrics = crate::telemetry::install_metrics()?;
    let health = Health::default();

    let (http_listener, http_addr) = server::bind(options.http_addr).await?;
    let (metrics_listener, metrics_addr) = server::bind(options.metrics_addr).await?;
    tracing::info!(http = %http_addr, metrics = %metrics_addr, "listening");

    // Targets first: a target that cannot start (its credentials' configuration) ends the run
    // before any source has received a message, so nothing is left half-delivered. Their
    // background tasks stop on their own token, cancelled only after they have drained.
    let targets_stop = CancellationToken::new();
    let targets = match start_targets(&config, &health, &targets_stop, &options).await {
        Ok(targets) => targets,
        Err(err) => {
            targets_stop.cancel();
            return Err(err);
        }
    };

    // The sources stop on their own token, cancelled only once /readyz says "draining":
    // a component turning unready first would show an orchestrator an unready process that
    // does not say it is shutting down.
    let stop = CancellationToken::new();
    let mut components = JoinSet::new();
    for source in config.s3_sources {
        let ready = health.register(source.kind(), &source.metadata.name);
        let name = source.metadata.name.clone();
        let span = Component::of(source.kind(), &source.metadata).span();
        let stop = stop.clone();
        let grace = options.shutdown_grace;
        components.spawn(
            async move {
                crate::sources::s3::run(source, ready, stop, grace)
                    .await
                    .map_err(|source| RunError::Source { name, source })
            }
            .instrument(span),
        );
    }

    let drains = targets.clone();
    let max_connections = options.limits.max_connections;
    let ingress = Arc::new(Ingress::new(targets, options.limits));

    let servers_stop = CancellationToken::new();
    let health_for_http = health.clone();
    let http_handler: Handler = Arc::new(move |request| {
        let health = health_for_http.clone();
        let ingress = ingress.clone();
        Box::pin(async move {
            if let Some(answer) = health.handle(&request) {
                return answer;
            }
            match ingress.handle(request).await {
                Ok(answer) => answer,
                Err(request) => json_error(
                    StatusCode::NOT_FOUND,
                    &format!("no target at {}", request.uri().path()),
                ),
            }
        })
    });
    let metrics_handler: Handler = Arc::new(move |request| {
        let answer = if request.uri().path() == "/metrics" {
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics.render(),
            )
        } else {
            json_error(StatusCode::NOT_FOUND, "metrics are at /metrics")
        };
        Box::pin(async move { answer })
    });
    // In-flight target requests get the grace period to finish.
    let drain = options.shutdown_grace;
    let http_server = tokio::spawn(server::serve_tls(
        http_listener,
        http_handler,
        servers_stop.clone(),
        drain,
        options.tls.clone(),
        max_connections,
    ));
    let metrics_server = tokio::spawn(server::serve(
        metrics_listener,
        metrics_handler,
        servers_stop.clone(),
        drain,
    ));

    let mut first_error = None;
    tokio::select! {
        () = shutdown.cancelled() => {},
        Some(result) = components.join_next() => {
            // A component that ends on its own failed to start: stop the rest. The error is
            // printed once, by the caller.
            first_error = failure(result);
        }
    }
    health.set_draining();
    stop.cancel();
    // Everything — sources and open HTTP requests — within one grace period.
    let deadline = tokio::time::Instant::now() + options.shutdown_grace;
    while let Some(result) = components.join_next().await {
        if let Some(err) = failure(result) {
            if first_error.is_some() {
                // Only the first failure is returned; the others are not lost.
                tracing::error!(error = %err, "another component failed");
            } else {
                first_error = Some(err);
            }
        }
    }
    servers_stop.cancel();
    // The targets stop accepting events (503 "shutting down") and finish those they accepted
    // — the SQS target's batched sends — before the process exits.
    for target in &drains {
        // In the target's span: the warning names the target (a `target` field would clash
        // with the log line's own `target`, the Rust module).
        async {
            if !target.drain(deadline).await {
                tracing::warn!("accepted events not sent within the grace period");
            }
        }
        .instrument(target.span().clone())
        .await;
    }
    targets_stop.cancel();
    for mut server in [http_server, metrics_server] {
        if tokio::time::timeout_at(deadline, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("open HTTP requests did not finish within the grace period");
            server.abort();
        }
    }
    tracing::info!("stopped");
    first_error.map_or(Ok(()), Err)
}

/// Starts every target (none waits for AWS: each turns ready in the background).
async fn start_targets(
    config: &Config,
    health: &Health,
    stop: &CancellationToken,
    options: &RunOptions,
) -> Result<Vec<Target>, RunError> {
    let mut targets = Vec::new();
    for target in &config.sqs_targets {
        let ready = health.register(
            crate::targets::sqs::config::COMPONENT,
            &target.metadata.name,
        );
        let name = target.metadata.name.clone();
        let span = Component::of(crate::targets::sqs::config::COMPONENT, &target.metadata).span();
        let max_calls = options.limits.max_concurrent_requests;
        let started = SqsTarget::start(target.clone(), ready, stop.clone(), max_calls)
            .instrument(span)
            .await;
        targets.push(Target::Sqs(
            started.map_err(|source| RunError::Target { name, source })?,
        ));
    }
    for target in &config.s3_targets {
        let ready = health.register(crate::targets::s3::config::COMPONENT, &target.metadata.name);
        let name = target.metadata.name.clone();
        let span = Component::of(crate::targets::s3::config::COMPONENT, &target.metadata).span();
        let started = S3Target::start(target.clone(), ready, stop.clone())
            .instrument(span)
            .await;
        targets.push(Target::S3(
            started.map_err(|source| RunError::Target { name, source })?,
        ));
    }
    Ok(targets)
}

/// A component's error, or its panic (a bug, but still a failure: exit non-zero).
fn failure(result: Result<Result<(), RunError>, tokio::task::JoinError>) -> Option<RunError> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err),
        Err(err) => Some(RunError::Panicked(err.to_string())),
    }
}
