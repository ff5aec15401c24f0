//! Throughput at real SQS latency (issue 13): the source and the SQS target in their **default
//! configuration** against the stand-in answering every SQS call `--latency` later (0, 5, 20
//! and 50 ms; `BENCH_LATENCIES=0,20` picks others). Each run gets a fresh stand-in and adapter.
//! 0 ms runs before each other latency and once more at the end (0, 5, 0, 20, 0, 50, 0), and
//! each side's ratios are to the mean of its 0 ms runs, because the machine is shared: at 0 ms
//! both sides are CPU-bound, and their rate swings with what else runs (up to 1.8× within one
//! run), while the rates at 20 ms and more hardly do.
//!
//! - source: saturated for `WINDOW` after `WARMUP`, the queue kept `DEPTH_AHEAD` of deliveries
//!   ahead of the adapter (at least `MIN_DEPTH` messages); events/s at the sink, SQS requests
//!   per event, the adapter's CPU; then, once the backlog has drained, p50/p99 from enqueue
//!   (`SentTimestamp`, stamped at the preload) to sink receipt under a steady feed at half that
//!   rate; peak RSS (`VmHWM`) at the end;
//! - SQS target: `TARGET_CONNECTIONS` client connections of single-event binary requests for
//!   `WINDOW` after `WARMUP`; requests/s, SQS requests per event, p50/p99 of the requests, the
//!   adapter's CPU, peak RSS.
//!
//! Printed as markdown tables, with the goals' PASS/MISS next to the figures and a summary of
//! the goals (one figure per goal, for a before/after comparison).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::load::{
    SinkState, adapter_gauge, http_client, p50_p99, per_tick, post_json, record_latencies,
    standin_stats, start_sink, timed_load, wait_for,
};
use crate::processes::{rss_mib, start_adapter, start_standin};
use crate::{PHASE, TARGET_MANIFEST, TICK, binary_event_requests};

/// SQS latencies measured unless `BENCH_LATENCIES` says otherwise.
const LATENCIES_MS: [u64; 4] = [0, 5, 20, 50];
/// Unmeasured time at full load before each window.
const WARMUP: Duration = Duration::from_secs(1);
/// Each measured window at full load.
const WINDOW: Duration = Duration::from_secs(4);
/// The fewest visible messages the saturating feed keeps (the default source has 100 messages
/// in flight and receives 10 at a time).
const MIN_DEPTH: u64 = 300;
/// How far ahead of the adapter the saturating feed keeps the queue, in deliveries.
const DEPTH_AHEAD: Duration = Duration::from_millis(200);
/// Client connections of the SQS target's load.
const TARGET_CONNECTIONS: usize = 512;
/// Peak RSS goal at 50 ms, source and target each.
const RSS_GOAL_MIB: f64 = 48.0;

/// An `AWSS3Source` on the stand-in's `bench` queue delivering to the sink, with no `receive`
/// settings: the defaults. `BENCH_SOURCE_RECEIVE` (for experiments only, e.g.
/// `{ pollers: 2, maxInFlightMessages: 100 }`) adds a `receive` block.
fn default_source_manifest(sink: SocketAddr) -> String {
    let receive = match std::env::var("BENCH_SOURCE_RECEIVE") {
        Ok(receive) => format!("  receive: {receive}\n"),
        Err(_) => String::new(),
    };
    format!(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\nmetadata: {{ name: bench }}\nspec:\n  arn: arn:aws:s3:::bench\n  destination: {{ sqs: {{ queueARN: arn:aws:sqs:us-east-1:123456789012:bench }} }}\n  sink: {{ uri: \"http://{sink}/\" }}\n{receive}"
    )
}

/// The order of the runs: `BENCH_LATENCIES` (milliseconds, comma-separated) or `LATENCIES_MS`,
/// each other latency after a 0 ms run, and a 0 ms run last.
fn latencies() -> Vec<u64> {
    let mut chosen: Vec<u64> = match std::env::var("BENCH_LATENCIES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|ms| {
                ms.trim()
                    .trim_end_matches("ms")
                    .parse()
                    .unwrap_or_else(|_| panic!("BENCH_LATENCIES: {ms:?} is not milliseconds"))
            })
            .collect(),
        _ => LATENCIES_MS.to_vec(),
    };
    chosen.retain(|ms| *ms != 0);
    chosen.sort_unstable();
    chosen.dedup();
    let mut order: Vec<u64> = chosen.into_iter().flat_map(|ms| [0, ms]).collect();
    order.push(0);
    order
}

/// One side (source or target) at one latency.
struct Run {
    latency_ms: u64,
    /// Source: events/s at the sink; target: requests/s (one event each). The figures a goal
    /// checks are rounded as printed.
    rate: f64,
    requests_per_event: f64,
    /// Source: enqueue → sink receipt at half `rate`; target: request latency at full load.
    latencies: Vec<f64>,
    /// The rate `latencies` were taken at.
    latency_rate: f64,
    /// The adapter's CPU in the window, in cores.
    cpu: f64,
    peak_rss_mib: f64,
}

/// Keeps the stand-in's first queue at least `MIN_DEPTH` and `DEPTH_AHEAD` of the sink's recent
/// rate deep, every `TICK`, until `stop`; returns how many notifications it preloaded.
async fn keep_full(standin: String, sink: Arc<SinkState>, stop: CancellationToken) -> u64 {
    let client = http_client();
    let mut ticks = tokio::time::interval(TICK);
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::new();
    let (mut preloaded, mut visible) = (0, 0);
    while !stop.is_cancelled() {
        ticks.tick().await;
        recent.push_back((Instant::now(), sink.events()));
        if recent.len() > 10 {
            recent.pop_front();
        }
        let ((first_at, first), (last_at, last)) = (recent[0], recent[recent.len() - 1]);
        let secs = (last_at - first_at).as_secs_f64();
        let rate = if secs > 0.0 {
            (last - first) as f64 / secs
        } else {
            0.0
        };
        let depth = MIN_DEPTH.max((rate * DEPTH_AHEAD.as_secs_f64()) as u64);
        let n = depth.saturating_sub(visible);
        let answer = post_json(&client, &format!("{standin}/preload?n={n}")).await;
        visible = answer["visible"].as_u64().unwrap_or(0);
        preloaded += n;
    }
    preloaded
}

async fn source_at(dir: &Path, sink: &Arc<SinkState>, sink_addr: SocketAddr, ms: u64) -> Run {
    let standin = start_standin(&["--latency", &format!("{ms}ms")]);
    let adapter = start_adapter(&default_source_manifest(sink_addr), &standin.addr, dir);
    let start = sink.events();
    let stop = CancellationToken::new();
    let feeder = tokio::spawn(keep_full(standin.addr.clone(), sink.clone(), stop.clone()));
    wait_for("the first event", Duration::from_secs(30), || {
        sink.events() > start
    })
    .await;
    tokio::time::sleep(WARMUP).await;
    // SQS requests, and empty receives (the feed falling behind would show there).
    let counts = async || {
        let stats = standin_stats(&standin.addr).await;
        let count = |name: &str| stats[name].as_u64().unwrap();
        let operation = |name: &str| stats["requests"][name].as_u64().unwrap_or(0);
        (
            count("requests_total"),
            count("empty_receives"),
            operation("ReceiveMessage"),
            operation("DeleteMessageBatch"),
        )
    };
    let (events, (calls, empty, receives, deletes), cpu, at) = (
        sink.events(),
        counts().await,
        adapter.cpu_secs(),
        Instant::now(),
    );
    tokio::time::sleep(WINDOW).await;
    let (calls_after, empty_after, receives_after, deletes_after) = counts().await;
    let pollers = adapter_gauge(
        &adapter.metrics,
        "aws_event_adapter_source_receive_concurrency",
    )
    .await
    .unwrap_or(f64::NAN);
    let (events, calls, empty, cpu, secs) = (
        sink.events() - events,
        calls_after - calls,
        empty_after - empty,
        adapter.cpu_secs() - cpu,
        at.elapsed().as_secs_f64(),
    );
    stop.cancel();
    let preloaded = feeder.await.unwrap();
    wait_for("the backlog", Duration::from_secs(120), || {
        sink.events() >= start + preloaded
    })
    .await;
    let rate = events as f64 / secs;
    let half = per_tick(rate / 2.0);
    let latencies = record_latencies(sink, &standin.addr, half, PHASE).await;
    let run = Run {
        latency_ms: ms,
        rate,
        requests_per_event: rounded(calls as f64 / events.max(1) as f64, 3),
        latencies,
        latency_rate: half as f64 / TICK.as_secs_f64(),
        cpu: cpu / secs,
        peak_rss_mib: rounded(rss_mib(adapter.pid()).1, 1),
    };
    eprintln!(
        "latency: source at {ms} ms: {:.0} events/s, {calls} SQS requests ({empty} empty receives; {:.1} events per ReceiveMessage, {:.1} per DeleteMessageBatch), {pollers} pollers at the end",
        run.rate,
        events as f64 / (receives_after - receives).max(1) as f64,
        events as f64 / (deletes_after - deletes).max(1) as f64,
    );
    run
}

async fn target_at(dir: &Path, ms: u64) -> Run {
    let standin = start_standin(&["--discard-sent", "--latency", &format!("{ms}ms")]);
    let adapter = start_adapter(TARGET_MANIFEST, &standin.addr, dir);
    let requests = binary_event_requests(format!("http://{}/bench", adapter.addr));
    let (timed, (before, cpu, at)) = tokio::join!(
        timed_load(TARGET_CONNECTIONS, WARMUP, WINDOW, requests),
        async {
            tokio::time::sleep(WARMUP).await;
            let stats = standin_stats(&standin.addr).await;
            (stats, adapter.cpu_secs(), Instant::now())
        }
    );
    let after = standin_stats(&standin.addr).await;
    let (cpu, secs) = (adapter.cpu_secs() - cpu, at.elapsed().as_secs_f64());
    let delta = |name: &str| after[name].as_u64().unwrap() - before[name].as_u64().unwrap();
    let run = Run {
        latency_ms: ms,
        rate: timed.rate,
        requests_per_event: rounded(
            delta("requests_total") as f64 / delta("sent").max(1) as f64,
            3,
        ),
        latencies: timed.latencies_ms,
        latency_rate: timed.rate,
        cpu: cpu / secs,
        peak_rss_mib: rounded(rss_mib(adapter.pid()).1, 1),
    };
    eprintln!("latency: SQS target at {ms} ms: {:.0} requests/s", run.rate);
    run
}

/// 12345.6 → "12,346".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value` to `decimals` places: the goals are checked on the figures as printed (0.2004 is
/// printed 0.200, and meets ≤ 0.2; 0.201 does not).
fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// A side's runs, their 0 ms base (the mean of the 0 ms runs), and its goals.
struct Side<'a> {
    runs: &'a [Run],
    base: f64,
    /// (latency, least ratio to the 0 ms rate)
    ratio_goals: &'a [(u64, f64)],
    requests_goal: f64,
}

impl<'a> Side<'a> {
    fn new(runs: &'a [Run], ratio_goals: &'a [(u64, f64)], requests_goal: f64) -> Self {
        let zeros: Vec<f64> = runs
            .iter()
            .filter(|r| r.latency_ms == 0)
            .map(|r| r.rate)
            .collect();
        Side {
            runs,
            base: zeros.iter().sum::<f64>() / zeros.len().max(1) as f64,
            ratio_goals,
            requests_goal,
        }
    }

    fn ratio(&self, run: &Run) -> f64 {
        rounded(run.rate / self.base, 2)
    }

    fn ratio_cell(&self, run: &Run) -> String {
        let ratio = self.ratio(run);
        match self
            .ratio_goals
            .iter()
            .find(|(ms, _)| *ms == run.latency_ms)
        {
            Some((_, goal)) => format!("{ratio:.2} {} (≥ {goal})", verdict(ratio >= *goal)),
            None => format!("{ratio:.2}"),
        }
    }

    fn requests_cell(&self, run: &Run) -> String {
        let pass = run.requests_per_event <= self.requests_goal;
        format!("{:.3} {}", run.requests_per_event, verdict(pass))
    }

    fn rss_cell(run: &Run) -> String {
        if run.latency_ms == 50 {
            let pass = run.peak_rss_mib <= RSS_GOAL_MIB;
            format!("{:.1} MiB {}", run.peak_rss_mib, verdict(pass))
        } else {
            format!("{:.1} MiB", run.peak_rss_mib)
        }
    }

    /// The goal rows of the summary: the 0 ms base, ratios, requests per event, peak RSS at
    /// 50 ms.
    fn goal_rows(&self, name: &str, rate: &str, out: &mut String) {
        let zeros: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.latency_ms == 0)
            .map(|r| r.rate)
            .collect();
        let (low, high) = zeros
            .iter()
            .fold((f64::INFINITY, 0.0_f64), |(l, h), r| (l.min(*r), h.max(*r)));
        out.push_str(&format!(
            "| {name}: {rate} at 0 ms, the base (mean of {} runs, lowest – highest) | {} ({} – {}) | |\n",
            zeros.len(),
            thousands(self.base),
            thousands(low),
            thousands(high)
        ));
        for (ms, goal) in self.ratio_goals {
            let (value, pass) = match self.runs.iter().find(|r| r.latency_ms == *ms) {
                Some(run) => (
                    format!("{:.2}", self.ratio(run)),
                    verdict(self.ratio(run) >= *goal),
                ),
                None => ("not run".into(), ""),
            };
            out.push_str(&format!(
                "| {name}: {rate} at {ms} ms ÷ at 0 ms (≥ {goal}) | {value} | {pass} |\n"
            ));
        }
        let worst = self
            .runs
            .iter()
            .max_by(|a, b| a.requests_per_event.total_cmp(&b.requests_per_event));
        if let Some(worst) = worst {
            out.push_str(&format!(
                "| {name}: SQS requests per event, highest over the latencies (≤ {}) | {:.3} (at {} ms) | {} |\n",
                self.requests_goal,
                worst.requests_per_event,
                worst.latency_ms,
                verdict(worst.requests_per_event <= self.requests_goal)
            ));
        }
        let (value, pass) = match self.runs.iter().find(|r| r.latency_ms == 50) {
            Some(run) => (
                format!("{:.1} MiB", run.peak_rss_mib),
                verdict(run.peak_rss_mib <= RSS_GOAL_MIB),
            ),
            None => ("not run".into(), ""),
        };
        out.push_str(&format!(
            "| {name}: peak RSS at 50 ms (≤ {RSS_GOAL_MIB} MiB) | {value} | {pass} |\n"
        ));
    }
}

/// "HEAD abc1234" (and whether `src/` has changes not committed): what was measured.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    if git(&["status", "--porcelain", "--", "src"]).is_empty() {
        format!("HEAD {head}")
    } else {
        format!("HEAD {head}, with uncommitted changes in src/")
    }
}

/// Runs both sides at every latency; returns the markdown to print.
pub async fn bench_latency(dir: &Path) -> String {
    let latencies = latencies();
    let sink = Arc::new(SinkState::default());
    let sink_addr = start_sink(sink.clone()).await;
    let mut source = Vec::new();
    for &ms in &latencies {
        source.push(source_at(dir, &sink, sink_addr, ms).await);
    }
    let mut target = Vec::new();
    for &ms in &latencies {
        target.push(target_at(dir, ms).await);
    }

    let source_side = Side::new(&source, &[(20, 0.8), (50, 0.7)], 0.2);
    let target_side = Side::new(&target, &[(20, 0.8)], 0.12);
    let mut out = format!(
        "\n### Throughput at SQS latency ({}; defaults; {} s windows)\n\n",
        commit(),
        WINDOW.as_secs()
    );
    out.push_str(
        "Source (`AWSS3Source`, no `receive` settings), saturated:\n\n\
         | SQS latency | events/s | ÷ 0 ms | SQS requests per event (≤ 0.2) | enqueue → sink p50 / p99 | at events/s | adapter CPU | peak RSS (≤ 48 MiB at 50 ms) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for run in &source {
        out.push_str(&format!(
            "| {} ms | {} | {} | {} | {} | {} | {:.2} cores | {} |\n",
            run.latency_ms,
            thousands(run.rate),
            source_side.ratio_cell(run),
            source_side.requests_cell(run),
            p50_p99(&run.latencies),
            thousands(run.latency_rate),
            run.cpu,
            Side::rss_cell(run),
        ));
    }
    out.push_str(&format!(
        "\nSQS target (`AWSSQSTarget`, defaults), {TARGET_CONNECTIONS} connections, one binary event per request:\n\n\
         | SQS latency | requests/s | ÷ 0 ms | SQS requests per event (≤ 0.12) | request p50 / p99 | adapter CPU | peak RSS (≤ 48 MiB at 50 ms) |\n\
         |---|---|---|---|---|---|---|\n",
    ));
    for run in &target {
        out.push_str(&format!(
            "| {} ms | {} | {} | {} | {} | {:.2} cores | {} |\n",
            run.latency_ms,
            thousands(run.rate),
            target_side.ratio_cell(run),
            target_side.requests_cell(run),
            p50_p99(&run.latencies),
            run.cpu,
            Side::rss_cell(run),
        ));
    }
    out.push_str("\nGoals (0 ms is the mean of the 0 ms runs; checked on the figures as printed):\n\n| goal | measured | |\n|---|---|---|\n");
    source_side.goal_rows("source", "events/s", &mut out);
    target_side.goal_rows("SQS target", "requests/s", &mut out);
    out
}
