//! The `run` command: starts every configured component, the HTTP server (health, readiness),
//! the metrics server, and drains everything on SIGTERM within the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::health::Health;
use crate::http::server::{self, Handler, json_error};
use crate::targets::Target;
use crate::targets::ingress::{Ingress, Limits};
use crate::targets::s3::S3Target;
use crate::targets::sqs::SqsTarget;

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
) -> Result<(), String> {
    let metrics = crate::telemetry::install_metrics()?;
    let health = Health::default();

    let http_listener = bind(options.http_addr).await?;
    let metrics_listener = bind(options.metrics_addr).await?;
    tracing::info!(
        http = %http_listener.local_addr().map_err(|e| e.to_string())?,
        metrics = %metrics_listener.local_addr().map_err(|e| e.to_string())?,
        "listening"
    );

    let mut components = JoinSet::new();
    for source in config.s3_sources {
        let ready = health.register(&source.metadata.name);
        let name = source.metadata.name.clone();
        let shutdown = shutdown.clone();
        let grace = options.shutdown_grace;
        components.spawn(async move {
            crate::sources::s3::run(source, ready, shutdown, grace)
                .await
                .map_err(|err| format!("source {name:?}: {err}"))
        });
    }

    let mut targets = Vec::new();
    for target in config.sqs_targets {
        let ready = health.register(&target.metadata.name);
        targets.push(Target::Sqs(
            SqsTarget::start(target, ready, shutdown.clone()).await?,
        ));
    }
    for target in config.s3_targets {
        let ready = health.register(&target.metadata.name);
        targets.push(Target::S3(
            S3Target::start(target, ready, shutdown.clone()).await?,
        ));
    }
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
            crate::telemetry::render(&metrics)
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
            // A component that ends on its own failed to start: stop the rest.
            if let Some(err) = failure(result) {
                tracing::error!(error = %err, "component failed");
                first_error = Some(err);
            }
            shutdown.cancel();
        }
    }
    health.set_draining();
    // Everything — sources and open HTTP requests — within one grace period.
    let deadline = tokio::time::Instant::now() + options.shutdown_grace;
    while let Some(result) = components.join_next().await {
        if let Some(err) = failure(result) {
            tracing::error!(error = %err, "component failed");
            first_error.get_or_insert(err);
        }
    }
    servers_stop.cancel();
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

/// A component's error, or its panic (a bug, but still a failure: exit non-zero).
fn failure(result: Result<Result<(), String>, tokio::task::JoinError>) -> Option<String> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err),
        Err(err) => Some(format!("a component task ended abnormally: {err}")),
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))
}
