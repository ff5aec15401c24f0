//! Process-wide telemetry: `tracing` logs (JSON when stdout is not a terminal, or as asked),
//! the Prometheus recorder whose text is served at `/metrics`, and [`Component`], the identity
//! every component's metrics and log lines carry.
//!
//! Naming rule for logs: a component's tasks run inside its [`Component::span`], which carries
//! two fields, `component` (the lowercase kind, e.g. `awssqstarget`) and `name`
//! (`metadata.name`) — the same two labels as its metrics. Call sites do not repeat them. In
//! JSON, span fields are flattened into each line (see [`json_lines`]), so a line reads
//! `{"timestamp":…,"level":"INFO","component":"awss3source","name":"uploads","message":…}`.

use std::io::IsTerminal;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::common::Metadata;

mod json_lines;
pub mod log_limit;

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
        builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json_lines::JsonLines)
            .try_init()
    } else {
        builder.try_init()
    };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}

/// The global metrics recorder could not be installed (another one is, or a bucket list is bad).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

/// Installs the global Prometheus recorder and keeps its histograms trimmed.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            60.0, 300.0,
        ])
        .map_err(|err| MetricsError(err.to_string()))?
        .install_recorder()
        .map_err(|err| MetricsError(err.to_string()))?;
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
    /// The component of this kind and identity.
    pub fn of(kind: &'static str, metadata: &Metadata) -> Component {
        Component {
            kind,
            name: metadata.name.clone(),
            namespace: metadata.namespace.clone(),
        }
    }

    /// The span a component's tasks run in: every log line they write carries `component` and
    /// `name` (and `namespace`, when given) from here. Enter it with `tracing::Instrument`.
    pub fn span(&self) -> tracing::Span {
        // ERROR level so the span is enabled whenever any log line is (`RUST_LOG=warn` still
        // gets the fields on its warnings); its own level is never printed.
        tracing::error_span!(
            "component",
            component = self.kind,
            name = %self.name,
            namespace = self.namespace.as_deref()
        )
    }

    pub fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("component", self.kind.to_string()),
            ("name", self.name.clone()),
        ]
    }
}
