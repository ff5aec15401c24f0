//! End-to-end benchmark of the real release binary, side by side with the machine's own limit
//! measured in the same run (the machines are shared and noisy: ratios, not absolute numbers).
//!
//! ```text
//! cargo bench --bench end_to_end          # prints the table of BENCHMARKS.md
//! ```
//!
//! Pieces: the SQS stand-in (`examples/sqs_standin`, built here in release), a hyper sink in
//! this process, and `aws-event-adapter` as a child process, as a user runs it.
//!
//! - source: events/s through the adapter, against a plain hyper client POSTing the same
//!   events to the same sink at the same concurrency (divided by 1.2 for the receive and delete
//!   calls every ten events need); SQS requests per event; p50/p99 from the event's time to
//!   sink receipt at half the maximum rate; idle and peak RSS;
//! - SQS target: single-event requests at 64 connections against the same server's rate for a
//!   trivial answer (`/healthz`); SQS requests per event; idle and peak RSS.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_event_adapter::cloudevents::{Encoding, OutEvent};
use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 64;
const PHASE: Duration = Duration::from_secs(4);

/// Counts events and, while `recording`, the latency from `ce-time` to receipt.
#[derive(Default)]
struct SinkState {
    events: AtomicU64,
    recording: AtomicBool,
    latencies_ms: Mutex<Vec<f64>>,
}

async fn start_sink(state: Arc<SinkState>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler: Handler = Arc::new(move |request| {
        let state = state.clone();
        Box::pin(async move {
            let time = request
                .headers()
                .get("ce-time")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok());
            let _ = request.into_body().collect().await;
            state.events.fetch_add(1, Ordering::Relaxed);
            if state.recording.load(Ordering::Relaxed)
                && let Some(time) = time
            {
                let ms = (chrono::Utc::now() - time.with_timezone(&chrono::Utc))
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1000.0;
                state.latencies_ms.lock().unwrap().push(ms);
            }
            respond(StatusCode::OK, "application/json", "{}")
        })
    });
    tokio::spawn(server::serve(
        listener,
        handler,
        CancellationToken::new(),
        Duration::from_secs(1),
    ));
    addr
}

/// `CONCURRENCY` loops sending `make()` for `duration`; returns successful requests per second.
async fn load(
    duration: Duration,
    make: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>,
) -> f64 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY)
        .build_http();
    let ok = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, ok, make) = (client.clone(), ok.clone(), make.clone());
            tokio::spawn(async move {
                while tokio::time::Instant::now() < deadline {
                    if let Ok(response) = client.request(make()).await {
                        let success = response.status().is_success();
                        let _ = response.into_body().collect().await;
                        if success {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn sample_event() -> OutEvent {
    let record = br#"{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-28T12:34:56.789Z","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"bench","arn":"arn:aws:s3:::bench"},"object":{"key":"photos/2026/red+flower.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e"}}}"#;
    OutEvent {
        id: "0123456789abcdef0123456789abcdef".into(),
        source: "arn:aws:s3:::bench".into(),
        ty: "com.amazon.s3.objectcreated".into(),
        subject: Some("photos/2026/red flower.jpg".into()),
        time: Some(chrono::Utc::now()),
        datacontenttype: "application/json",
        extensions: Vec::new(),
        data: Bytes::from_static(record),
    }
}

struct Process {
    child: Child,
    addr: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start_standin(extra: &[&str]) -> Process {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--example", "sqs_standin"])
        .current_dir(root())
        .status()
        .expect("cargo build --example sqs_standin");
    assert!(status.success());
    let mut child = Command::new(root().join("target/release/examples/sqs_standin"))
        .args(["--addr", "127.0.0.1:0", "--queue", "bench"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stand-in");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().trim_start_matches("listening on ").to_string();
    Process { child, addr }
}

/// The adapter with `manifest`; `addr` is its HTTP address (from its `listening` log line).
fn start_adapter(manifest: &str, standin: &str, dir: &Path) -> Process {
    let config = dir.join("config.yaml");
    std::fs::write(&config, manifest).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aws-event-adapter"))
        .args(["run", "--config"])
        .arg(&config)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "warn,aws_event_adapter::app=info")
        .env("AWS_ENDPOINT_URL", standin)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the adapter");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the adapter's log").unwrap();
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
            && entry["message"] == "listening"
        {
            break entry["http"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Process { child, addr }
}

/// (VmRSS, VmHWM) in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn get_json(url: &str) -> serde_json::Value {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

async fn post(url: &str) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(url).body(Empty::new()).unwrap();
    let response = client.request(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.status()
    );
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs bench targets too, without
    // it — the benchmark (minutes, with a release build of the stand-in) is not a test.
    if !std::env::args().any(|a| a == "--bench") {
        println!("end_to_end: skipped (run it with `cargo bench --bench end_to_end`)");
        return;
    }
    // `BENCH_SOURCE_EVENTS` lengthens the saturation phase (e.g. under a profiler).
    let source_events: u64 = std::env::var("BENCH_SOURCE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    // `BENCH_ONLY=source` or `BENCH_ONLY=target` runs one part (while tuning it).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(String, String)> = Vec::new();
    if only.is_empty() || only == "source" {
        rows.extend(bench_source(dir.path(), source_events).await);
    }
    if only.is_empty() || only == "target" {
        rows.extend(bench_sqs_target(dir.path()).await);
    }
    println!("\n| measure | value |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}

/// The source's rows: its rate against the plain client's, requests per event, latency, RSS.
async fn bench_source(dir: &Path, source_events: u64) -> Vec<(String, String)> {
    let sink = Arc::new(SinkState::default());
    let sink_addr = start_sink(sink.clone()).await;
    let mut rows: Vec<(String, String)> = Vec::new();

    // The limit: a plain client POSTing the adapter's own request to the same sink.
    let encoded = sample_event().encode(Encoding::Binary);
    let uri = format!("http://{sink_addr}/");
    let plain = load(
        PHASE,
        Arc::new(move || {
            let mut request = Request::post(uri.as_str())
                .body(Full::new(encoded.body.clone()))
                .unwrap();
            *request.headers_mut() = encoded.headers.clone();
            request
        }),
    )
    .await;
    let limit = plain / 1.2;

    // The source.
    let standin = start_standin(&[]);
    let manifest = format!(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\nmetadata: {{ name: bench }}\nspec:\n  arn: arn:aws:s3:::bench\n  destination: {{ sqs: {{ queueARN: arn:aws:sqs:us-east-1:123456789012:bench }} }}\n  sink: {{ uri: \"http://{sink_addr}/\" }}\n  receive: {{ pollers: 4, maxInFlightMessages: {} }}\n",
        CONCURRENCY
    );
    let adapter = start_adapter(&manifest, &standin.addr, dir);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = rss_mib(adapter.child.id());
    let before = get_json(&format!("{}/stats", standin.addr)).await["requests_total"]
        .as_u64()
        .unwrap();
    let start_count = sink.events.load(Ordering::Relaxed);
    post(&format!("{}/preload?n={source_events}", standin.addr)).await;
    let started = wait_for("the first event", Duration::from_secs(30), || {
        sink.events.load(Ordering::Relaxed) > start_count
    })
    .await;
    let finished = wait_for("every event", Duration::from_secs(300), || {
        sink.events.load(Ordering::Relaxed) >= start_count + source_events
    })
    .await;
    let source_rate = source_events as f64 / (finished - started).as_secs_f64();
    // Deletes trail the last delivery by a linger: let them land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = get_json(&format!("{}/stats", standin.addr)).await;
    let requests_per_event =
        (stats["requests_total"].as_u64().unwrap() - before) as f64 / source_events as f64;
    let (_, source_peak_rss) = rss_mib(adapter.child.id());

    // Latency at half the maximum rate: preload a little every 10 ms.
    let half = source_rate / 2.0;
    let per_tick = ((half / 100.0).round() as u64).max(1);
    sink.recording.store(true, Ordering::Relaxed);
    let feed_until = Instant::now() + PHASE;
    while Instant::now() < feed_until {
        post(&format!("{}/preload?n={per_tick}", standin.addr)).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    sink.recording.store(false, Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *sink.latencies_ms.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    drop(adapter);
    drop(standin);

    rows.push((
        "source: plain client → sink, events/s (limit = ÷1.2)".into(),
        format!("{plain:.0} (limit {limit:.0})"),
    ));
    rows.push((
        "source: adapter events/s".into(),
        format!("{source_rate:.0}"),
    ));
    rows.push((
        "source: ratio to the limit (goal ≥ 0.7)".into(),
        format!("{:.2}", source_rate / limit),
    ));
    rows.push((
        "source: SQS requests per event (goal ≤ 0.2)".into(),
        format!("{requests_per_event:.3}"),
    ));
    rows.push((
        format!(
            "source: latency p50 / p99 at {:.0} events/s (half of max)",
            per_tick as f64 * 100.0
        ),
        format!(
            "{:.1} ms / {:.1} ms ({} events)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.len()
        ),
    ));
    rows.push((
        "source: RSS idle / peak (goal ≤ 12 / 24 MiB)".into(),
        format!("{idle_rss:.1} / {source_peak_rss:.1} MiB"),
    ));
    rows
}

/// The SQS target's rows: its rate against the trivial answer's, requests per event, RSS.
async fn bench_sqs_target(dir: &Path) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let standin = start_standin(&["--discard-sent"]);
    let manifest = "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: { name: bench }\nspec: { arn: \"arn:aws:sqs:us-east-1:123456789012:bench\" }\n";
    let adapter = start_adapter(manifest, &standin.addr, dir);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (target_idle_rss, _) = rss_mib(adapter.child.id());
    let health = format!("http://{}/healthz", adapter.addr);
    let trivial = load(
        PHASE,
        Arc::new(move || {
            Request::get(health.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap()
        }),
    )
    .await;
    let before = get_json(&format!("{}/stats", standin.addr)).await;
    let target = format!("http://{}/bench", adapter.addr);
    let counter = Arc::new(AtomicU64::new(0));
    let target_rate = load(
        PHASE,
        Arc::new(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            Request::post(target.as_str())
                .header("ce-specversion", "1.0")
                .header("ce-id", format!("e-{n}"))
                .header("ce-source", "https://bench.example.com")
                .header("ce-type", "com.example.bench")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"order":{"id":"o-1","total":12.5}}"#,
                )))
                .unwrap()
        }),
    )
    .await;
    let after = get_json(&format!("{}/stats", standin.addr)).await;
    let sent = (after["sent"].as_u64().unwrap() - before["sent"].as_u64().unwrap()).max(1) as f64;
    let target_requests = (after["requests_total"].as_u64().unwrap()
        - before["requests_total"].as_u64().unwrap()) as f64;
    let (_, target_peak_rss) = rss_mib(adapter.child.id());
    drop(adapter);
    drop(standin);

    rows.push((
        "SQS target: trivial answer (/healthz) requests/s at 64 connections".into(),
        format!("{trivial:.0}"),
    ));
    rows.push((
        "SQS target: events/s, one event per request, 64 connections".into(),
        format!("{target_rate:.0}"),
    ));
    rows.push((
        "SQS target: ratio to the trivial answer (goal ≥ 0.5)".into(),
        format!("{:.2}", target_rate / trivial),
    ));
    rows.push((
        "SQS target: SQS requests per event (goal ≤ 0.12)".into(),
        format!("{:.3}", target_requests / sent),
    ));
    rows.push((
        "SQS target: RSS idle / peak (goal ≤ 12 / 24 MiB)".into(),
        format!("{target_idle_rss:.1} / {target_peak_rss:.1} MiB"),
    ));
    rows
}
