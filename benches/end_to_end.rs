//! End-to-end benchmark of the real release binary, side by side with the machine's own limit
//! measured in the same run (the machines are shared and noisy: ratios, not absolute numbers).
//!
//! ```text
//! cargo bench --bench end_to_end                       # prints the table of BENCHMARKS.md
//! BENCH_ONLY=source|credentials|target|latency cargo bench --bench end_to_end    # one part
//! BENCH_ONLY=latency BENCH_LATENCIES=0,20 cargo bench --bench end_to_end   # some latencies
//! ```
//!
//! Pieces: the SQS stand-in (`examples/sqs_standin`, built here in release), a hyper sink in
//! this process, and `aws-event-adapter` as a child process, as a user runs it. About four and a
//! half minutes in all: two and a half for the CPU-bound parts (most of it the idle window and
//! the credentials phases), two for the latency tables.
//!
//! - source: events/s through the adapter, against a plain hyper client POSTing the same
//!   events to the same sink at the same concurrency, measured before and after the adapter's
//!   saturation phase (the limit is their mean, divided by 1.2 for the receive and delete calls
//!   every ten events need); SQS requests per event; p50/p99 from the event's time to sink
//!   receipt at half the maximum rate; `ReceiveMessage` calls per minute per poller while idle
//!   (`IDLE_WINDOW`, no message); RSS at the end of that idle window and at the peak; CPU per
//!   event of the adapter and of the stand-in during saturation, and of this process (the plain
//!   client and the sink, or the sink alone while the adapter delivers);
//! - credentials: p50/p99 latency of the source at `CREDENTIALS_RATE` with an assumed role whose
//!   credentials never expire during the phase, against the same with the stand-in's STS handing
//!   out 4-second credentials and `refreshMargin: 1s` (a refresh every ~2 s); the phases
//!   alternate (without, with, without, with) and each side's samples are pooled; the
//!   `AssumeRole` calls during each phase show that the refreshes did happen;
//! - SQS target: single-event requests at 64 connections against the same server's rate for a
//!   trivial answer (`/healthz`); SQS requests per event; idle and peak RSS; CPU per event of the
//!   adapter and of the stand-in;
//! - latency (`end_to_end/latency.rs`): the source and the SQS target in their default
//!   configuration with the stand-in answering 0, 5, 20 and 50 ms late (`--latency`), their
//!   rates against the same run's 0 ms runs, SQS requests per event, latencies, peak RSS. About
//!   two minutes, printed as tables of their own.
//!
//! CPU is user + system time from `/proc/<pid>/stat`, in 10 ms clock ticks: per-event figures
//! are averages over thousands of events.

#[path = "end_to_end/latency.rs"]
mod latency;
#[path = "end_to_end/load.rs"]
mod load;
#[path = "end_to_end/processes.rs"]
mod processes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use load::{
    SinkState, feed, load, p50_p99, per_tick, percentile, plain_phase, post, record_latencies,
    standin_stats, start_sink, wait_for,
};
use processes::{
    Process, cpu_secs, micros_per_event, rss_mib, rss_parts, start_adapter, start_standin,
};

const CONCURRENCY: usize = 64;
const PHASE: Duration = Duration::from_secs(4);
/// The source's `receive.pollers` in every manifest here.
const POLLERS: usize = 4;
/// How long the idle source (empty queue) is watched: two 20 s long polls per poller.
const IDLE_WINDOW: Duration = Duration::from_secs(40);
/// How often a steady feed preloads a few notifications.
const TICK: Duration = Duration::from_millis(10);
/// How long the sink keeps recording latencies after a feed ends (the last events' way through).
const DRAIN: Duration = Duration::from_secs(1);
/// Events/s fed to the source in the credentials phases.
const CREDENTIALS_RATE: u64 = 2_000;
/// Each credentials phase (recorded), after `CREDENTIALS_WARMUP` of the same feed unrecorded.
const CREDENTIALS_PHASE: Duration = Duration::from_secs(8);
const CREDENTIALS_WARMUP: Duration = Duration::from_secs(2);

/// An `AWSSQSTarget` sending to the stand-in's `bench` queue, in its default configuration.
const TARGET_MANIFEST: &str = "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: { name: bench }\nspec: { arn: \"arn:aws:sqs:us-east-1:123456789012:bench\" }\n";

/// Single-event binary-mode CloudEvents for the SQS target at `url`, each with its own id.
fn binary_event_requests(url: String) -> Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync> {
    let counter = AtomicU64::new(0);
    Arc::new(move || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        Request::post(url.as_str())
            .header("ce-specversion", "1.0")
            .header("ce-id", format!("e-{n}"))
            .header("ce-source", "https://bench.example.com")
            .header("ce-type", "com.example.bench")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"order":{"id":"o-1","total":12.5}}"#,
            )))
            .unwrap()
    })
}

/// An `AWSS3Source` on the stand-in's `bench` queue delivering to the sink, with `POLLERS`
/// pollers and `CONCURRENCY` messages in flight; `auth` is YAML appended to its `spec` (indented
/// two spaces), or empty.
fn source_manifest(sink: SocketAddr, auth: &str) -> String {
    format!(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\nmetadata: {{ name: bench }}\nspec:\n  arn: arn:aws:s3:::bench\n  destination: {{ sqs: {{ queueARN: arn:aws:sqs:us-east-1:123456789012:bench }} }}\n  sink: {{ uri: \"http://{sink}/\" }}\n  receive: {{ pollers: {POLLERS}, maxInFlightMessages: {CONCURRENCY} }}\n{auth}"
    )
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
    // `BENCH_ONLY=source`, `credentials`, `target` or `latency` runs one part (while tuning it).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(String, String)> = Vec::new();
    if only.is_empty() || only == "source" {
        rows.extend(bench_source(dir.path(), source_events).await);
    }
    if only.is_empty() || only == "credentials" {
        rows.extend(bench_credentials(dir.path()).await);
    }
    if only.is_empty() || only == "target" {
        rows.extend(bench_sqs_target(dir.path()).await);
    }
    let latency = if only.is_empty() || only == "latency" {
        latency::bench_latency(dir.path()).await
    } else {
        String::new()
    };
    if !rows.is_empty() {
        println!("\n| measure | value |\n|---|---|");
        for (name, value) in rows {
            println!("| {name} | {value} |");
        }
    }
    print!("{latency}");
}

/// The idle source (empty queue) over `IDLE_WINDOW`, from 1 s after the adapter is ready (its
/// pollers' first long polls are then in flight): `ReceiveMessage` calls, and RSS at the end.
struct Idle {
    receives: u64,
    rss: String,
}

impl Idle {
    fn receives_per_poller_per_minute(&self) -> f64 {
        self.receives as f64 / POLLERS as f64 / (IDLE_WINDOW.as_secs_f64() / 60.0)
    }
}

async fn idle_phase(standin: &Process, adapter: &Process) -> Idle {
    let receives = async || {
        standin_stats(&standin.addr).await["requests"]["ReceiveMessage"]
            .as_u64()
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = receives().await;
    tokio::time::sleep(IDLE_WINDOW).await;
    let after = receives().await;
    Idle {
        receives: after - before,
        rss: rss_parts(adapter.pid()),
    }
}

/// The source at full speed: `events` notifications preloaded at once, delivered as fast as it
/// can; SQS requests per event, peak RSS, and the CPU each process used meanwhile.
struct Saturation {
    events: u64,
    rate: f64,
    requests_per_event: f64,
    peak_rss_mib: f64,
    adapter_cpu: f64,
    standin_cpu: f64,
    harness_cpu: f64,
}

async fn saturation_phase(
    sink: &SinkState,
    standin: &Process,
    adapter: &Process,
    events: u64,
) -> Saturation {
    let requests = async || {
        standin_stats(&standin.addr).await["requests_total"]
            .as_u64()
            .unwrap()
    };
    let requests_before = requests().await;
    let start_count = sink.events();
    let (adapter_cpu, harness_cpu) = (adapter.cpu_secs(), cpu_secs("self"));
    post(&format!("{}/preload?n={events}", standin.addr)).await;
    // Counted from here, the stand-in's CPU leaves out generating the messages: it answers
    // nothing else meanwhile (one thread, and the preload runs in one go).
    let standin_cpu = standin.cpu_secs();
    let started = wait_for("the first event", Duration::from_secs(30), || {
        sink.events() > start_count
    })
    .await;
    let finished = wait_for("every event", Duration::from_secs(300), || {
        sink.events() >= start_count + events
    })
    .await;
    // Deletes trail the last delivery by a linger: let them land before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (adapter_cpu, standin_cpu, harness_cpu) = (
        adapter.cpu_secs() - adapter_cpu,
        standin.cpu_secs() - standin_cpu,
        cpu_secs("self") - harness_cpu,
    );
    Saturation {
        events,
        rate: events as f64 / (finished - started).as_secs_f64(),
        requests_per_event: (requests().await - requests_before) as f64 / events as f64,
        peak_rss_mib: rss_mib(adapter.pid()).1,
        adapter_cpu,
        standin_cpu,
        harness_cpu,
    }
}

/// The source's rows: its rate against the plain client's, requests per event, latency, idle
/// receives, RSS, CPU per event.
async fn bench_source(dir: &Path, source_events: u64) -> Vec<(String, String)> {
    let sink = Arc::new(SinkState::default());
    let sink_addr = start_sink(sink.clone()).await;

    let plain_before = plain_phase(&sink, sink_addr).await;
    let standin = start_standin(&[]);
    let adapter = start_adapter(&source_manifest(sink_addr, ""), &standin.addr, dir);
    let idle = idle_phase(&standin, &adapter).await;
    let saturation = saturation_phase(&sink, &standin, &adapter, source_events).await;
    let plain_after = plain_phase(&sink, sink_addr).await;
    // Latency at half the maximum rate.
    let half = per_tick(saturation.rate / 2.0);
    let latencies = record_latencies(&sink, &standin.addr, half, PHASE).await;
    drop(adapter);
    drop(standin);

    let limit = (plain_before.rate + plain_after.rate) / 2.0 / 1.2;
    let plain_cpu = micros_per_event(
        plain_before.harness_cpu + plain_after.harness_cpu,
        plain_before.events + plain_after.events,
    );
    vec![
        (
            "source: plain client → sink, events/s before / after the adapter (limit = mean ÷1.2)"
                .into(),
            format!(
                "{:.0} / {:.0} (limit {limit:.0})",
                plain_before.rate, plain_after.rate
            ),
        ),
        (
            "source: adapter events/s".into(),
            format!("{:.0}", saturation.rate),
        ),
        (
            "source: ratio to the limit (goal ≥ 0.7)".into(),
            format!("{:.2}", saturation.rate / limit),
        ),
        (
            "source: SQS requests per event (goal ≤ 0.2)".into(),
            format!("{:.3}", saturation.requests_per_event),
        ),
        (
            format!(
                "source: latency p50 / p99 at {:.0} events/s (half of max)",
                half as f64 / TICK.as_secs_f64()
            ),
            format!("{} ({} events)", p50_p99(&latencies), latencies.len()),
        ),
        (
            format!(
                "source: idle, ReceiveMessage calls per minute per poller over {} s (goal ≤ 3)",
                IDLE_WINDOW.as_secs()
            ),
            format!(
                "{:.1} ({} calls, {POLLERS} pollers)",
                idle.receives_per_poller_per_minute(),
                idle.receives
            ),
        ),
        (
            "source: RSS idle (end of the idle window) / peak (goal ≤ 12 / 24 MiB)".into(),
            format!("{} / {:.1} MiB", idle.rss, saturation.peak_rss_mib),
        ),
        (
            "source: CPU per event at full speed, adapter / stand-in".into(),
            format!(
                "{:.1} µs / {:.1} µs",
                micros_per_event(saturation.adapter_cpu, saturation.events),
                micros_per_event(saturation.standin_cpu, saturation.events)
            ),
        ),
        (
            "source: CPU per event of this harness, plain client + sink / sink alone (adapter at full speed)"
                .into(),
            format!(
                "{plain_cpu:.1} µs / {:.1} µs",
                micros_per_event(saturation.harness_cpu, saturation.events)
            ),
        ),
    ]
}

/// The role the credentials phases assume (any role ARN does for the stand-in).
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench";

/// One credentials phase of the source: latencies and the `AssumeRole` calls during it.
struct CredentialsPhase {
    latencies: Vec<f64>,
    assume_role: u64,
}

/// A fresh stand-in and adapter assuming `ROLE_ARN` with literal base keys; with `refresh`, the
/// stand-in's credentials last 4 s and the adapter renews them 1 s before they expire (every
/// ~2 s), otherwise they last an hour (assumed once, at start). After `CREDENTIALS_WARMUP` of
/// the feed, `CREDENTIALS_PHASE` recorded at `CREDENTIALS_RATE`.
///
/// Why 4 s for a refresh every ~2 s: STS's expiration is truncated to the second, and the
/// adapter counts the time left in whole seconds too, so 4 s credentials have "3 s" left when
/// they arrive, and 1 s of margin leaves 2 s (less up to a tenth of jitter). With 3 s
/// credentials the adapter refreshes every second.
async fn credentials_phase(
    dir: &Path,
    sink: &SinkState,
    sink_addr: SocketAddr,
    refresh: bool,
) -> CredentialsPhase {
    let standin = if refresh {
        start_standin(&["--sts-expiry-secs", "4"])
    } else {
        start_standin(&[])
    };
    let margin = if refresh {
        "    refreshMargin: 1s\n"
    } else {
        ""
    };
    let auth = format!(
        "  auth:\n    credentials:\n      accessKeyID: {{ value: AKIABENCH }}\n      secretAccessKey: {{ value: bench }}\n      assumeIamRole: \"{ROLE_ARN}\"\n{margin}"
    );
    let adapter = start_adapter(&source_manifest(sink_addr, &auth), &standin.addr, dir);
    let per_tick = per_tick(CREDENTIALS_RATE as f64);
    let before = sink.events();
    feed(&standin.addr, per_tick, CREDENTIALS_WARMUP).await;
    wait_for("the first event", Duration::from_secs(30), || {
        sink.events() > before
    })
    .await;
    let assume_role = async || {
        standin_stats(&standin.addr).await["assume_role"]
            .as_u64()
            .unwrap()
    };
    let calls_before = assume_role().await;
    let latencies = record_latencies(sink, &standin.addr, per_tick, CREDENTIALS_PHASE).await;
    let calls = assume_role().await - calls_before;
    drop(adapter);
    drop(standin);
    CredentialsPhase {
        latencies,
        assume_role: calls,
    }
}

/// The credentials rows: the source's p99 with an assume-role refresh every ~2 s against the
/// same without refreshes, phases alternated (without, with, without, with) and pooled.
async fn bench_credentials(dir: &Path) -> Vec<(String, String)> {
    let sink = Arc::new(SinkState::default());
    let sink_addr = start_sink(sink.clone()).await;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let (mut calls_without, mut calls_with) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let phase = credentials_phase(dir, &sink, sink_addr, false).await;
        without.extend(phase.latencies);
        calls_without.push(phase.assume_role);
        let phase = credentials_phase(dir, &sink, sink_addr, true).await;
        with.extend(phase.latencies);
        calls_with.push(phase.assume_role);
    }
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);

    let recorded = (CREDENTIALS_PHASE + DRAIN).as_secs();
    let describe = |sorted: &[f64], calls: &[u64], expected: u64| {
        format!(
            "{} ({} events; AssumeRole calls per {recorded} s phase: {calls:?}, expected ≈ {expected})",
            p50_p99(sorted),
            sorted.len()
        )
    };
    let ratio = percentile(&with, 0.99) / percentile(&without, 0.99);
    let verdict = if calls_with.contains(&0) {
        format!(
            "not measured: a refresh phase had no AssumeRole call ({calls_with:?}); ratio {ratio:.2}"
        )
    } else {
        format!("{ratio:.2} ({:+.0} %)", (ratio - 1.0) * 100.0)
    };
    let setup = format!(
        "2 × {} s at {CREDENTIALS_RATE} events/s",
        CREDENTIALS_PHASE.as_secs()
    );
    vec![
        (
            format!("credentials: p50 / p99 without refresh (role assumed once), {setup}"),
            describe(&without, &calls_without, 0),
        ),
        (
            format!("credentials: p50 / p99 with an assume-role refresh every 2 s, {setup}"),
            describe(&with, &calls_with, recorded / 2),
        ),
        (
            "credentials: p99 with refresh / without (goal within 5 %)".into(),
            verdict,
        ),
    ]
}

/// The SQS target's rows: its rate against the trivial answer's, requests per event, RSS, CPU
/// per event.
async fn bench_sqs_target(dir: &Path) -> Vec<(String, String)> {
    let standin = start_standin(&["--discard-sent"]);
    let adapter = start_adapter(TARGET_MANIFEST, &standin.addr, dir);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let target_idle_rss = rss_parts(adapter.pid());
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
    let before = standin_stats(&standin.addr).await;
    let (adapter_cpu, standin_cpu) = (adapter.cpu_secs(), standin.cpu_secs());
    let target = format!("http://{}/bench", adapter.addr);
    let target_rate = load(PHASE, binary_event_requests(target)).await;
    let (adapter_cpu, standin_cpu) = (
        adapter.cpu_secs() - adapter_cpu,
        standin.cpu_secs() - standin_cpu,
    );
    let after = standin_stats(&standin.addr).await;
    let sent = after["sent"].as_u64().unwrap() - before["sent"].as_u64().unwrap();
    let target_requests = (after["requests_total"].as_u64().unwrap()
        - before["requests_total"].as_u64().unwrap()) as f64;
    let (_, target_peak_rss) = rss_mib(adapter.pid());
    drop(adapter);
    drop(standin);

    vec![
        (
            "SQS target: trivial answer (/healthz) requests/s at 64 connections".into(),
            format!("{trivial:.0}"),
        ),
        (
            "SQS target: events/s, one event per request, 64 connections".into(),
            format!("{target_rate:.0}"),
        ),
        (
            "SQS target: ratio to the trivial answer (goal ≥ 0.5)".into(),
            format!("{:.2}", target_rate / trivial),
        ),
        (
            "SQS target: SQS requests per event (goal ≤ 0.12)".into(),
            format!("{:.3}", target_requests / sent.max(1) as f64),
        ),
        (
            "SQS target: RSS idle / peak (goal ≤ 12 / 24 MiB)".into(),
            format!("{target_idle_rss} / {target_peak_rss:.1} MiB"),
        ),
        (
            "SQS target: CPU per event, adapter / stand-in".into(),
            format!(
                "{:.1} µs / {:.1} µs",
                micros_per_event(adapter_cpu, sent),
                micros_per_event(standin_cpu, sent)
            ),
        ),
    ]
}
