//! Process-wide telemetry setup: `tracing` logs (JSON when stdout is not a terminal, or as
//! asked) and the Prometheus recorder whose text is served at `/metrics`.

use std::io::IsTerminal;
use std::time::Duration;

use http::StatusCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::http::server::{Body, respond};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, text otherwise.
    Auto,
    Json,
    Text,
}

/// Installs the log subscriber; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}

/// Installs the global Prometheus recorder and keeps its histograms trimmed.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 300.0,
        ])
        .map_err(|err| err.to_string())?
        .install_recorder()
        .map_err(|err| format!("cannot install the metrics recorder: {err}"))?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            interval.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// The `/metrics` answer.
pub fn render(handle: &PrometheusHandle) -> http::Response<Body> {
    respond(StatusCode::OK, "text/plain; version=0.0.4", handle.render())
}

/// Which component something belongs to: the `component` (kind) and `name` metric labels and
/// log fields every component's telemetry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Lowercase kind, e.g. `awss3source`.
    pub kind: &'static str,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, when given.
    pub namespace: Option<String>,
}

impl Component {
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("component", self.kind.to_string()),
            ("name", self.name.clone()),
        ]
    }
}
