//! The adapter binary run as a child process, as a user runs it: start, readiness, signals,
//! exit, its log and its `/metrics`; and the manifest of an `AWSS3Source` for the tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::http_get;

/// The adapter binary running `run --config <file>`.
pub struct Adapter {
    child: Child,
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Adapter {
    /// Starts the adapter with this manifest text (and extra arguments) and waits until ready.
    pub async fn start(manifest: &str, extra_args: &[&str]) -> Adapter {
        let adapter = Adapter::spawn(manifest, extra_args);
        adapter.wait_ready(Duration::from_secs(30)).await;
        adapter
    }

    pub fn spawn(manifest: &str, extra_args: &[&str]) -> Adapter {
        Adapter::spawn_with_env(manifest, extra_args, &[])
    }

    /// Like [`Adapter::spawn`], with extra environment variables (e.g. another endpoint).
    /// An empty `manifest` runs TriggerMesh's environment-variable mode (no `--config`).
    pub fn spawn_with_env(manifest: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Adapter {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, manifest).unwrap();
        let config_args: Vec<&std::ffi::OsStr> = if manifest.is_empty() {
            Vec::new()
        } else {
            vec!["--config".as_ref(), config.as_os_str()]
        };
        let log = std::fs::File::create(dir.path().join("adapter.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_aws-event-adapter"))
            .arg("run")
            .args(config_args)
            // Port 0: the adapter logs the addresses it bound, so parallel tests never race.
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "json"])
            .args(extra_args)
            .env("RUST_LOG", "info,aws_event_adapter=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the adapter binary");
        let mut adapter = Adapter {
            child,
            // Placeholders until the log says which ports were bound.
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        adapter.read_listening_addresses();
        adapter
    }

    /// Reads the bound addresses from the adapter's `listening` log line.
    fn read_listening_addresses(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            let listening = log
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|entry| entry["message"] == "listening");
            if let Some(entry) = listening {
                self.http_addr = entry["http"].as_str().unwrap().parse().unwrap();
                self.metrics_addr = entry["metrics"].as_str().unwrap().parse().unwrap();
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("adapter exited ({status}) before listening; log:\n{log}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "adapter not listening after 30 s; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("adapter.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((status, _)) = http_get(self.http_addr, "/readyz").await
                && status == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "adapter not ready after {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        http_get(self.metrics_addr, "/metrics")
            .await
            .expect("metrics")
            .1
    }

    /// The value of one metric line (by name and a label substring), 0 when absent.
    pub async fn metric(&self, name: &str, label: &str) -> f64 {
        metric_value(&self.metrics().await, name, label)
    }

    pub async fn wait_metric(&self, name: &str, label: &str, at_least: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.metric(name, label).await;
            if value >= at_least {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{{{label}}} = {value}, expected >= {at_least} within {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit status if the process exits within `timeout`, else `None` (still running).
    pub async fn wait_exit_or_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "adapter still running {timeout:?} after the signal; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sums the values of the Prometheus lines for `name` whose labels contain `label`.
pub fn metric_value(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The manifest of an AWSS3Source for the tests, with `extra` lines appended under `spec:`
/// (indented by two spaces).
pub fn source_manifest(
    name: &str,
    bucket: &str,
    queue_arn: &str,
    sink: &str,
    extra: &str,
) -> String {
    let extra: String = extra.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSS3Source
metadata:
  name: {name}
spec:
  arn: arn:aws:s3:::{bucket}
  destination:
    sqs:
      queueARN: {queue_arn}
  auth:
    credentials:
      accessKeyID: {{ value: testing }}
      secretAccessKey: {{ value: testing }}
  sink:
    uri: {sink}
{extra}"#
    )
}
