//! The load this process makes and takes: the in-process hyper sink (counting events and
//! recording their latencies), the plain load client and its phase against the sink (the
//! machine's limit for the source), the steady feed of the stand-in, percentiles, and small HTTP
//! helpers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_event_adapter::cloudevents::{Encoding, OutEvent};
use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::processes::cpu_secs;
use crate::{CONCURRENCY, DRAIN, PHASE, TICK};

/// Counts events and, while `recording`, the latency from `ce-time` to receipt.
#[derive(Default)]
pub struct SinkState {
    events: AtomicU64,
    recording: AtomicBool,
    latencies_ms: Mutex<Vec<f64>>,
}

impl SinkState {
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

pub async fn start_sink(state: Arc<SinkState>) -> SocketAddr {
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
pub async fn load(
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

/// What `timed_load` measured over its window (after the warm-up).
pub struct Timed {
    /// Successful requests per second that completed within the window.
    pub rate: f64,
    /// Latencies (ms, sorted) of the successful requests that completed within the window.
    pub latencies_ms: Vec<f64>,
}

/// `concurrency` loops sending `make()` for `warmup + window`, each on its own connection; only
/// the requests that complete within the window (after the warm-up) are counted and timed.
pub async fn timed_load(
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    make: Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>,
) -> Timed {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http();
    let from = Instant::now() + warmup;
    let until = from + window;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, make) = (client.clone(), make.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let Ok(response) = client.request(make()).await else {
                        continue;
                    };
                    let success = response.status().is_success();
                    let _ = response.into_body().collect().await;
                    let done = Instant::now();
                    if success && done >= from && done < until {
                        latencies.push((done - sent).as_secs_f64() * 1000.0);
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for worker in workers {
        latencies_ms.extend(worker.await.unwrap_or_default());
    }
    latencies_ms.sort_by(f64::total_cmp);
    Timed {
        rate: latencies_ms.len() as f64 / window.as_secs_f64(),
        latencies_ms,
    }
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

pub fn http_client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get_json(url: &str) -> serde_json::Value {
    let response = http_client().get(url.parse().unwrap()).await.unwrap();
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// A gauge's value on the adapter's `/metrics` (the first series of that name), if any.
pub async fn adapter_gauge(metrics_addr: &str, name: &str) -> Option<f64> {
    let url = format!("http://{metrics_addr}/metrics");
    let response = http_client().get(url.parse().unwrap()).await.ok()?;
    let text = response.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8_lossy(&text)
        .lines()
        .find(|line| line.starts_with(name) && !line.starts_with('#'))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// The stand-in's `GET /stats`.
pub async fn standin_stats(standin: &str) -> serde_json::Value {
    get_json(&format!("{standin}/stats")).await
}

/// A POST answered with JSON (the stand-in's `/preload`).
pub async fn post_json(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
) -> serde_json::Value {
    let request = Request::post(url).body(Empty::new()).unwrap();
    let response = client.request(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.status()
    );
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

pub async fn post(url: &str) {
    post_on(&http_client(), url).await;
}

async fn post_on(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) {
    let request = Request::post(url).body(Empty::new()).unwrap();
    let response = client.request(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.status()
    );
}

pub async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// "p50 ms / p99 ms" of sorted latencies.
pub fn p50_p99(sorted: &[f64]) -> String {
    format!(
        "{:.1} ms / {:.1} ms",
        percentile(sorted, 0.5),
        percentile(sorted, 0.99)
    )
}

/// Notifications preloaded per `TICK` for `rate` events/s (one S3 record each).
pub fn per_tick(rate: f64) -> u64 {
    ((rate * TICK.as_secs_f64()).round() as u64).max(1)
}

/// A steady feed: `per_tick` notifications preloaded into the stand-in every `TICK` (on
/// average: a late tick is caught up) for `duration`.
pub async fn feed(standin: &str, per_tick: u64, duration: Duration) {
    let client = http_client();
    let url = format!("{standin}/preload?n={per_tick}");
    let mut ticks = tokio::time::interval(TICK);
    let until = Instant::now() + duration;
    while Instant::now() < until {
        ticks.tick().await;
        post_on(&client, &url).await;
    }
}

/// Latencies (ms, sorted) from each event's `ce-time` to its receipt by the sink, under a
/// `feed` of `per_tick` for `phase`: everything the sink receives from the feed's start to
/// `DRAIN` after its end.
pub async fn record_latencies(
    sink: &SinkState,
    standin: &str,
    per_tick: u64,
    phase: Duration,
) -> Vec<f64> {
    sink.latencies_ms.lock().unwrap().clear();
    sink.recording.store(true, Ordering::Relaxed);
    feed(standin, per_tick, phase).await;
    tokio::time::sleep(DRAIN).await;
    sink.recording.store(false, Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *sink.latencies_ms.lock().unwrap());
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// One phase of the plain client POSTing the adapter's own request to the sink: the machine's
/// limit for the source, and what the client and the sink cost this process.
pub struct Plain {
    pub rate: f64,
    pub events: u64,
    pub harness_cpu: f64,
}

pub async fn plain_phase(sink: &SinkState, sink_addr: SocketAddr) -> Plain {
    let encoded = sample_event().encode(Encoding::Binary);
    let uri = format!("http://{sink_addr}/");
    let (events, cpu) = (sink.events(), cpu_secs("self"));
    let rate = load(
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
    Plain {
        rate,
        events: sink.events() - events,
        harness_cpu: cpu_secs("self") - cpu,
    }
}
