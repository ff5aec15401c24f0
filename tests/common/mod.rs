//! Test support for the integration tests: AWS clients pointed at the emulator (moto, started by
//! `./scripts/test`), a recording CloudEvents sink with programmable answers, and the adapter
//! binary run as a child process, as a user runs it.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_event_adapter::cloudevents::inbound;
use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use cloudevents::Event;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The emulator's endpoint; the tests need `./scripts/test` (or an exported AWS_ENDPOINT_URL).
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the integration tests through ./scripts/test, which starts the AWS emulator",
    )
}

/// A name unique to this test run (lowercase, valid for buckets and queues).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

pub struct Aws {
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    pub async fn new() -> Aws {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint())
            .load()
            .await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Aws {
            sqs: aws_sdk_sqs::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }

    /// Creates a queue; returns (url, arn).
    pub async fn create_queue(&self, name: &str) -> (String, String) {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        (url, format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
    }

    /// Creates a bucket whose notifications for `events` go to the queue.
    pub async fn create_bucket_notifying(&self, bucket: &str, queue_arn: &str, events: &[&str]) {
        use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
        self.s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
        let queue_config = QueueConfiguration::builder()
            .id("adapter-test")
            .queue_arn(queue_arn)
            .set_events(Some(events.iter().map(|e| S3Event::from(*e)).collect()))
            .build()
            .unwrap();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue_config)
                    .build(),
            )
            .send()
            .await
            .expect("put bucket notification");
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: &'static [u8]) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(Bytes::from_static(body).into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
    }

    pub async fn send(&self, queue_url: &str, body: &str) -> String {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send message")
            .message_id
            .unwrap()
    }

    /// Visible + in-flight messages, as SQS counts them.
    pub async fn queue_depth(&self, queue_url: &str) -> (u64, u64) {
        queue_depth(&self.sqs, queue_url).await
    }

    /// Waits until the queue holds no message at all (visible or in flight).
    pub async fn wait_queue_empty(&self, queue_url: &str, timeout: Duration) {
        wait_queue_empty(&self.sqs, queue_url, timeout, String::new).await
    }
}

/// (visible, in flight) messages of the queue, read with `sqs`.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    let get = |name: &A| attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        get(&A::ApproximateNumberOfMessages),
        get(&A::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Waits until the queue holds no message at all (visible or in flight), read with `sqs` (an
/// operator's client, when the adapter runs with restricted credentials). On timeout the
/// failure shows `log()`, e.g. the adapter's output.
pub async fn wait_queue_empty(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    timeout: Duration,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let depth = queue_depth(sqs, queue_url).await;
        if depth == (0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue still holds (visible, in flight) = {depth:?} after {timeout:?}; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the test sink answers to attempt number `n` (0-based, counted over all requests)
/// carrying this event (the first of a batch), and how long it takes to answer.
pub type Behavior = Arc<dyn Fn(usize, &Event) -> (StatusCode, Duration) + Send + Sync>;

pub fn always(status: StatusCode) -> Behavior {
    Arc::new(move |_, _| (status, Duration::ZERO))
}

/// One request the sink received, decoded as CloudEvents.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub events: Vec<Event>,
    /// What the sink answered.
    pub status: StatusCode,
}

/// A CloudEvents sink on loopback that records every request and answers as told.
pub struct TestSink {
    pub addr: SocketAddr,
    attempts: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl TestSink {
    pub async fn start(behavior: Behavior) -> TestSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let handler: Handler = {
            let attempts = attempts.clone();
            let received = received.clone();
            Arc::new(move |request| {
                let attempts = attempts.clone();
                let received = received.clone();
                let behavior = behavior.clone();
                Box::pin(async move {
                    let n = attempts.fetch_add(1, Ordering::SeqCst);
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let events =
                        inbound::decode(&parts.headers, body.clone()).unwrap_or_else(|e| {
                            panic!("the adapter sent a request that is not a CloudEvent: {e}")
                        });
                    let (status, delay) = behavior(n, &events[0]);
                    tokio::time::sleep(delay).await;
                    received.lock().unwrap().push(Received {
                        headers: parts.headers,
                        body,
                        events,
                        status,
                    });
                    respond(status, "application/json", "{}")
                })
            })
        };
        tokio::spawn(server::serve(
            listener,
            handler,
            stop.clone(),
            Duration::from_secs(1),
        ));
        TestSink {
            addr,
            attempts,
            received,
            stop,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests that started (including those still being answered).
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Events of requests answered 2xx.
    pub fn accepted(&self) -> Vec<(Received, Event)> {
        self.received()
            .into_iter()
            .filter(|r| r.status.is_success())
            .flat_map(|r| r.events.clone().into_iter().map(move |e| (r.clone(), e)))
            .collect()
    }

    /// Waits until at least `n` events were accepted; returns them.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<(Received, Event)> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} accepted events within {timeout:?}, got {}: {:#?}",
                accepted.len(),
                accepted
                    .iter()
                    .map(|(_, e)| e.to_string())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_attempts(&self, n: usize, timeout: Duration) {
        wait_until(timeout, &format!("{n} requests at the sink"), || {
            self.attempts() >= n
        })
        .await;
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Polls `condition` every 50 ms until it holds; fails the test after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_addr() -> SocketAddr {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

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

pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(StatusCode, String), String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{addr}{path}").parse().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
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

/// The sample bodies of the reference, as S3/SNS/EventBridge deliver them.
pub fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A moto server of the test's own, for tests that switch on IAM enforcement (a global
/// setting of a server). Started through the patched launcher that `./scripts/test` names in
/// `MOTO_PYTHON` / `MOTO_LAUNCHER`.
pub struct OwnMoto {
    child: Child,
    pub endpoint: String,
}

impl OwnMoto {
    pub async fn start() -> OwnMoto {
        let python = std::env::var("MOTO_PYTHON")
            .expect("MOTO_PYTHON is not set: run the tests through ./scripts/test");
        let launcher = std::env::var("MOTO_LAUNCHER")
            .expect("MOTO_LAUNCHER is not set: run the tests through ./scripts/test");
        let addr = free_addr();
        let child = Command::new(python)
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = OwnMoto {
            child,
            endpoint: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(
            http_get(addr, "/moto-api/data.json").await,
            Ok((StatusCode::OK, _))
        ) {
            assert!(Instant::now() < deadline, "moto did not start on {addr}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// Turns IAM and SigV4 enforcement on (`true`) or off.
    pub async fn enforce_auth(&self, on: bool) {
        let client: Client<_, http_body_util::Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let request = http::Request::post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("content-type", "text/plain")
            .body(http_body_util::Full::new(Bytes::from(if on {
                "0"
            } else {
                "inf"
            })))
            .unwrap();
        let response = client.request(request).await.expect("reset-auth");
        assert!(
            response.status().is_success(),
            "reset-auth: {}",
            response.status()
        );
    }

    /// SDK configuration for this server with the given keys.
    pub async fn sdk_config(&self, access_key: &str, secret_key: &str) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                access_key, secret_key, None, None, "test",
            ))
            .load()
            .await
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates an IAM user with one inline policy allowing `actions` on `resource`; returns its
/// (access key id, secret key).
pub async fn iam_user(
    iam: &aws_sdk_iam::Client,
    name: &str,
    actions: &[&str],
    resource: &str,
) -> (String, String) {
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .expect("create user");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resource }]
    });
    iam.put_user_policy()
        .user_name(name)
        .policy_name("adapter")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put user policy");
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .expect("create access key")
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

/// Creates an IAM role that the IAM users `trusted` (names) may assume, with one inline policy
/// allowing `actions` on `resource`; returns its ARN. (moto checks a trust policy's AWS
/// principals literally, so the users are named rather than the account root.)
pub async fn iam_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    trusted: &[&str],
    actions: &[&str],
    resource: &str,
) -> String {
    let principals: Vec<String> = trusted
        .iter()
        .map(|user| format!("arn:aws:iam::{ACCOUNT}:user/{user}"))
        .collect();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": principals, "Federated": "oidc.eks.amazonaws.com" },
            "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]
        }]
    });
    let role = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role")
        .role
        .unwrap();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": resource }]
    });
    iam.put_role_policy()
        .role_name(name)
        .policy_name("adapter")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put role policy");
    role.arn
}

/// The seed's minimal policy for a source with an existing queue.
pub const SOURCE_MINIMAL_POLICY: [&str; 3] =
    ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"];

/// The put sample with another object key, so each message of a test is recognisable.
pub fn put_sample_with_key(key: &str) -> String {
    sample("s3-records-put.json").replace("photos/2026/red+flower%281%29+%C3%A9t%C3%A9.jpg", key)
}
