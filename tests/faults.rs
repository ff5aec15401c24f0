//! Fault scenarios (issue 8): the S3 source is broken on purpose — killed, stopped under load,
//! given a flapping sink, cut off from AWS, run as competing replicas, fed a poison message —
//! and every scenario counts the notifications sent into the queue against the events that
//! reached the sink, by subject (one distinct object key per message). An event is lost when
//! the sink never completed it (answered 2xx to a sender still waiting); a duplicate is any
//! further copy the sink took, counting copies whose sender went away before the answer (see
//! [`CountingSink`]). Each scenario fails when an event is lost, reports duplicates, and
//! prints one summary line:
//!
//! ```text
//! sigkill: sent 60, received unique 60, lost 0, duplicates 5, took 4.0 s
//! ```
//!
//! The flapping sink and the AWS cut run for 10 s by default; with
//! `AWS_EVENT_ADAPTER_LONG_TESTS=1` they run for 60 s and 30 s (see TESTING.md).
//!
//! The counting sink and the TCP proxy the scenarios use are in `tests/common/sink.rs` and
//! `tests/common/proxy.rs`; the sending, waiting and tallying are here.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use cloudevents::AttributesReader;
use common::*;
use http::StatusCode;
use tokio::time::Instant;

/// The environment switch of the long versions.
const LONG_SWITCH: &str = "AWS_EVENT_ADAPTER_LONG_TESTS";
const WAIT: Duration = Duration::from_secs(60);

fn long_tests() -> bool {
    std::env::var(LONG_SWITCH).is_ok_and(|value| value == "1")
}

/// `n` distinct object keys (plain ASCII: the subject is the key as it is).
fn keys(scenario: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{scenario}-{i:04}.bin")).collect()
}

/// The SQS message id of every key sent by this process (keys are unique across scenarios),
/// to find a message in the adapters' logs.
static SENT: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// Sends one S3 put notification per key, ten per `SendMessageBatch`.
async fn send_keys(aws: &Aws, queue_url: &str, keys: &[String]) {
    for chunk in keys.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, key)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(put_sample_with_key(key))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = aws
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("send message batch");
        assert!(
            out.failed.is_empty(),
            "batch entries failed: {:?}",
            out.failed
        );
        let mut sent = SENT.lock().unwrap();
        let sent = sent.get_or_insert_with(HashMap::new);
        for entry in out.successful {
            if let Ok(index) = entry.id.parse::<usize>() {
                sent.insert(chunk[index].clone(), entry.message_id);
            }
        }
    }
}

/// A fresh queue for one scenario: (url, arn).
async fn queue(aws: &Aws, scenario: &str) -> (String, String) {
    aws.create_queue(&unique(scenario)).await
}

/// Waits until the sink completed an event for every key, or `timeout`. Gives up early when the
/// queue has been empty for 5 s with keys still missing: nothing is left to deliver them, they
/// are lost. The tally then tells what is missing.
async fn wait_all(
    aws: &Aws,
    queue_url: &str,
    sink: &CountingSink,
    keys: &[String],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    let mut empty_since = None;
    loop {
        let completed = sink.completed_by_subject();
        if keys.iter().all(|key| completed.contains_key(key)) || Instant::now() >= deadline {
            return;
        }
        if aws.queue_depth(queue_url).await == (0, 0) {
            let since = *empty_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(5) {
                return;
            }
        } else {
            empty_since = None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sent against received, for one scenario.
struct Tally {
    scenario: &'static str,
    sent: usize,
    /// Keys with a completed event.
    unique: usize,
    /// Keys without one.
    lost: Vec<String>,
    /// Events taken beyond the first, over all keys.
    duplicates: usize,
    /// The keys taken more than once.
    duplicated: Vec<String>,
    /// Events taken whose subject is none of the keys sent.
    unexpected: usize,
    took: Duration,
}

impl Tally {
    fn of(scenario: &'static str, sink: &CountingSink, keys: &[String], started: Instant) -> Tally {
        let completed = sink.completed_by_subject();
        let taken = sink.taken_by_subject();
        let lost: Vec<String> = keys
            .iter()
            .filter(|key| !completed.contains_key(*key))
            .cloned()
            .collect();
        let duplicates = keys
            .iter()
            .filter_map(|key| taken.get(key))
            .map(|n| n.saturating_sub(1))
            .sum();
        let duplicated = keys
            .iter()
            .filter(|key| taken.get(*key).is_some_and(|n| *n > 1))
            .cloned()
            .collect();
        let expected: usize = keys.iter().filter_map(|key| taken.get(key)).sum();
        let tally = Tally {
            scenario,
            sent: keys.len(),
            unique: keys.len() - lost.len(),
            lost,
            duplicates,
            duplicated,
            unexpected: taken.values().sum::<usize>() - expected,
            took: started.elapsed(),
        };
        println!("{}", tally.summary());
        tally
    }

    fn summary(&self) -> String {
        format!(
            "{}: sent {}, received unique {}, lost {}, duplicates {}, took {:.1} s",
            self.scenario,
            self.sent,
            self.unique,
            self.lost.len(),
            self.duplicates,
            self.took.as_secs_f64()
        )
    }

    /// Prints, for the first few keys taken more than once, the sink's answers to them in the
    /// order they were given (an abandoned request has none) and what the adapters logged
    /// about their event and their SQS message.
    fn explain_duplicates(&self, sink: &CountingSink, adapters: &[&Adapter]) {
        let received = sink.received();
        let taken = sink.taken_by_subject();
        let logs: Vec<String> = adapters.iter().map(|adapter| adapter.log()).collect();
        for key in self.duplicated.iter().take(5) {
            let requests: Vec<_> = received
                .iter()
                .filter(|r| r.events.iter().any(|e| e.subject() == Some(key.as_str())))
                .collect();
            let answers: Vec<String> = requests
                .iter()
                .map(|r| r.status.as_u16().to_string())
                .collect();
            println!(
                "{}: {key} taken {} times; answers given: [{}]",
                self.scenario,
                taken.get(key).copied().unwrap_or(0),
                answers.join(", ")
            );
            // Log lines about its event or its SQS message.
            let mut ids: Vec<String> = requests
                .first()
                .map(|r| r.events[0].id().to_string())
                .into_iter()
                .collect();
            let message_id = SENT
                .lock()
                .unwrap()
                .as_ref()
                .and_then(|m| m.get(key).cloned());
            ids.extend(message_id);
            for (i, log) in logs.iter().enumerate() {
                let lines = log
                    .lines()
                    .filter(|line| ids.iter().any(|id| line.contains(id.as_str())));
                for line in lines.take(12) {
                    println!("  adapter {i}: {line}");
                }
            }
        }
    }

    /// Fails when an event was lost (or something nobody sent arrived).
    fn assert_none_lost(&self, log: impl FnOnce() -> String) {
        assert!(
            self.lost.is_empty() && self.unexpected == 0,
            "{}: {} lost, {} duplicates, {} unexpected; lost keys (first 10): {:?}\nlog:\n{}",
            self.summary(),
            self.lost.len(),
            self.duplicates,
            self.unexpected,
            &self.lost[..self.lost.len().min(10)],
            log()
        );
    }

    fn assert_no_duplicates(&self, log: impl FnOnce() -> String) {
        assert_eq!(
            self.duplicates,
            0,
            "{}: {} lost, {} duplicates\nlog:\n{}",
            self.summary(),
            self.lost.len(),
            self.duplicates,
            log()
        );
    }
}

/// The last `lines` lines of the adapters' logs, for failure messages.
fn tail(adapters: &[&Adapter], lines: usize) -> String {
    adapters
        .iter()
        .enumerate()
        .map(|(i, adapter)| {
            let log = adapter.log();
            let all: Vec<&str> = log.lines().collect();
            let start = all.len().saturating_sub(lines);
            format!("--- adapter {i}\n{}", all[start..].join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the adapter process is still running (checked once, without waiting).
async fn is_alive(adapter: &mut Adapter) -> bool {
    adapter.wait_exit_or_timeout(Duration::ZERO).await.is_none()
}

/// Polls `/readyz` until it answers `expected`; `false` after `timeout`.
async fn wait_readiness(adapter: &Adapter, expected: StatusCode, timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        if let Ok((status, _)) = http_get(adapter.http_addr, "/readyz").await
            && status == expected
        {
            return true;
        }
        if started.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// SIGKILL with a batch half delivered: a new adapter on the same queue gets everything the
/// first did not finish, once its visibility (3 s) runs out. Duplicates are allowed (events the
/// sink took whose messages were not yet deleted), losses are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_loses_nothing() {
    const N: usize = 60;
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "kill").await;
    let sink = CountingSink::start(Arc::new(|_, _| {
        (StatusCode::OK, Duration::from_millis(200))
    }))
    .await;
    // Five at a time, 200 ms each: about 25 events a second, so the kill lands mid-stream.
    let manifest = source_manifest(
        "kill",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        "receive: { pollers: 1, maxMessages: 5, maxInFlightMessages: 5, waitTimeSeconds: 1, visibilityTimeout: 3s }",
    );
    let mut first = Adapter::start(&manifest, &[]).await;
    let keys = keys("kill", 0..N);
    let started = Instant::now();
    send_keys(&aws, &queue_url, &keys).await;

    sink.wait_taken(N / 3, WAIT).await;
    first.signal("KILL");
    let status = first.wait_exit(WAIT).await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    let (taken_at_kill, answered_at_kill) = (sink.taken(), sink.accepted().len());
    assert!(
        taken_at_kill < N,
        "the kill came after the last event ({taken_at_kill} at the sink)"
    );

    let second = Adapter::start(&manifest, &[]).await;
    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let tally = Tally::of("sigkill", &sink, &keys, started);
    tally.explain_duplicates(&sink, &[&first, &second]);
    println!(
        "sigkill: at the kill {taken_at_kill} events at the sink, {} of them not yet answered",
        taken_at_kill.saturating_sub(answered_at_kill)
    );
    tally.assert_none_lost(|| tail(&[&first, &second], 40));
}

/// SIGTERM under load: the adapter finishes what it started, deletes it, exits 0 within the
/// grace period; a second adapter delivers the rest. Nothing lost, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_and_duplicates_nothing() {
    const N: usize = 60;
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "term").await;
    let sink = CountingSink::start(Arc::new(|_, _| {
        (StatusCode::OK, Duration::from_millis(250))
    }))
    .await;
    let manifest = source_manifest(
        "term",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        // One poller: moto can hand one message to two concurrent ReceiveMessage calls (its
        // receive takes no lock), a duplicate this test must not blame on the drain.
        "receive: { pollers: 1, maxMessages: 10, maxInFlightMessages: 10, waitTimeSeconds: 1, visibilityTimeout: 5s }",
    );
    let grace = Duration::from_secs(10);
    let mut first = Adapter::start(&manifest, &["--shutdown-grace", "10s"]).await;
    let keys = keys("term", 0..N);
    let started = Instant::now();
    send_keys(&aws, &queue_url, &keys).await;

    sink.wait_taken(N / 3, WAIT).await;
    let signalled = Instant::now();
    first.signal("TERM");
    let status = first.wait_exit(WAIT).await;
    let drain = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM; log:\n{}",
        tail(&[&first], 40)
    );
    assert!(
        drain < grace,
        "exited {drain:?} after SIGTERM, grace {grace:?}"
    );
    let by_first = sink.taken();
    assert!(
        by_first < N,
        "SIGTERM came after the last event ({by_first} at the sink)"
    );
    assert!(
        first.log().contains("source drained"),
        "the source drained; log:\n{}",
        tail(&[&first], 40)
    );

    // Hidden after SIGTERM: messages of a receive the drain abandoned (their visibility runs).
    let (visible, hidden) = aws.queue_depth(&queue_url).await;
    let second_started = Instant::now();
    let second = Adapter::start(&manifest, &[]).await;
    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let tally = Tally::of("sigterm", &sink, &keys, started);
    tally.explain_duplicates(&sink, &[&first, &second]);
    println!(
        "sigterm: first adapter delivered {by_first}, drained and exited 0 in {:.2} s, left {visible} visible and {hidden} hidden; \
         the second delivered the rest in {:.1} s",
        drain.as_secs_f64(),
        second_started.elapsed().as_secs_f64()
    );
    tally.assert_none_lost(|| tail(&[&first, &second], 40));
    tally.assert_no_duplicates(|| tail(&[&first, &second], 40));
}

/// A sink that flaps under a steady load: ~30 % 503s, ~5 % of requests reset at the TCP level
/// before they reach it, ~3 % stalled for 5 s (past the 2 s delivery timeout). Nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_sink_under_load_loses_nothing() {
    let flapping = Duration::from_secs(if long_tests() { 60 } else { 10 });
    const PER_SECOND: usize = 8;
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "flap").await;
    let flap_until = std::time::Instant::now() + flapping + Duration::from_secs(3);
    let (unavailable, stalled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sink = CountingSink::start({
        let (unavailable, stalled) = (unavailable.clone(), stalled.clone());
        Arc::new(move |_, _| {
            if std::time::Instant::now() >= flap_until {
                return (StatusCode::OK, Duration::from_millis(5));
            }
            let roll: f64 = rand::random();
            if roll < 0.30 {
                unavailable.fetch_add(1, Ordering::SeqCst);
                (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)
            } else if roll < 0.33 {
                // The adapter gave up after 2 s; the late answer is recorded as a failure, so a
                // stalled event never counts as received.
                stalled.fetch_add(1, Ordering::SeqCst);
                (StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(5))
            } else {
                (StatusCode::OK, Duration::from_millis(5))
            }
        })
    })
    .await;
    let proxy = TcpProxy::start(sink.addr).await;
    proxy.set_reset_rate(50);
    let manifest = source_manifest(
        "flap",
        "media-uploads",
        &queue_arn,
        &proxy.uri(),
        "delivery: { retry: 10, backoffDelay: PT0.05S, backoffMaxDelay: PT1S, timeout: PT2S }\n\
         receive: { waitTimeSeconds: 1, redeliveryDelay: 1s, maxRedeliveryDelay: 2s }",
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    let started = Instant::now();
    let seconds = flapping.as_secs() as usize;
    let keys = keys("flap", 0..seconds * PER_SECOND);
    for (second, chunk) in keys.chunks(PER_SECOND).enumerate() {
        send_keys(&aws, &queue_url, chunk).await;
        tokio::time::sleep_until(started + Duration::from_secs(second as u64 + 1)).await;
    }
    proxy.set_reset_rate(0);

    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let tally = Tally::of("flapping sink", &sink, &keys, started);
    tally.explain_duplicates(&sink, &[&adapter]);
    let retries = adapter
        .metric("aws_event_adapter_sink_retries_total", "")
        .await;
    println!(
        "flapping sink: {:.0} s of faults, {} requests at the sink, {} answered 503, {} stalled 5 s, {} reset, {retries} retries",
        flapping.as_secs_f64(),
        sink.attempts(),
        unavailable.load(Ordering::SeqCst),
        stalled.load(Ordering::SeqCst),
        proxy.resets(),
    );
    tally.assert_none_lost(|| tail(&[&adapter], 60));
}

/// AWS unreachable: the adapter talks to moto through a proxy that is cut while messages wait
/// in the queue. It stays up, reports not ready, backs off, and recovers by itself once the
/// proxy is back. Nothing lost (messages whose deletes failed during the cut come again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_unreachable_then_back_recovers_and_loses_nothing() {
    const N: usize = 60;
    let cut_for = Duration::from_secs(if long_tests() { 30 } else { 10 });
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "cut").await;
    let sink = CountingSink::start(Arc::new(|_, _| {
        (StatusCode::OK, Duration::from_millis(100))
    }))
    .await;
    let proxy = TcpProxy::start(moto_addr().await).await;
    let endpoint = format!("http://{}", proxy.addr);
    let manifest = source_manifest(
        "cut",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        "receive: { pollers: 2, maxMessages: 2, maxInFlightMessages: 4, waitTimeSeconds: 1, visibilityTimeout: 5s }",
    );
    let mut adapter =
        Adapter::spawn_with_env(&manifest, &[], &[("AWS_ENDPOINT_URL", endpoint.as_str())]);
    adapter.wait_ready(WAIT).await;
    let keys = keys("cut", 0..N);
    let started = Instant::now();
    send_keys(&aws, &queue_url, &keys[..N / 2]).await;
    sink.wait_taken(N / 6, WAIT).await;

    let cut_at = Instant::now();
    proxy.cut();
    // The rest arrives while the adapter cannot reach AWS (the test sends to moto directly).
    send_keys(&aws, &queue_url, &keys[N / 2..]).await;
    assert!(
        wait_readiness(&adapter, StatusCode::SERVICE_UNAVAILABLE, WAIT).await,
        "/readyz still 200 {WAIT:?} after AWS became unreachable; log:\n{}",
        tail(&[&adapter], 40)
    );
    let not_ready_after = cut_at.elapsed();
    // Stay cut for the whole period, checking the process stays up and not ready.
    while cut_at.elapsed() < cut_for {
        assert!(
            is_alive(&mut adapter).await,
            "the adapter exited while AWS was unreachable; log:\n{}",
            tail(&[&adapter], 40)
        );
        let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "ready again while AWS is unreachable: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let received_during_cut = sink.taken();
    let receive_errors = adapter
        .metric(
            "aws_event_adapter_aws_errors_total",
            "operation=\"ReceiveMessage\"",
        )
        .await;
    let cut_lasted = cut_at.elapsed();

    proxy.restore().await;
    let restored = Instant::now();
    assert!(
        wait_readiness(&adapter, StatusCode::OK, WAIT).await,
        "/readyz not 200 {WAIT:?} after AWS came back; log:\n{}",
        tail(&[&adapter], 40)
    );
    let ready_after = restored.elapsed();
    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let tally = Tally::of("aws unreachable", &sink, &keys, started);
    tally.explain_duplicates(&sink, &[&adapter]);
    println!(
        "aws unreachable: cut {:.1} s, not ready {:.1} s after the cut, ready again {:.1} s after the restore, \
         all delivered {:.1} s after the restore, {receive_errors} ReceiveMessage errors, {received_during_cut} at the sink by the end of the cut",
        cut_lasted.as_secs_f64(),
        not_ready_after.as_secs_f64(),
        ready_after.as_secs_f64(),
        restored.elapsed().as_secs_f64(),
    );
    assert!(
        receive_errors >= 3.0,
        "ReceiveMessage failures counted: {receive_errors}"
    );
    assert!(
        is_alive(&mut adapter).await,
        "the adapter is still running after the recovery"
    );
    tally.assert_none_lost(|| tail(&[&adapter], 60));
}

/// Three replicas competing for one queue: every event arrives; duplicates are reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_queue_lose_nothing() {
    const N: usize = 90;
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "replicas").await;
    let sink =
        CountingSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_millis(50)))).await;
    let manifest = source_manifest(
        "replicas",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        "receive: { pollers: 1, maxMessages: 5, maxInFlightMessages: 5, waitTimeSeconds: 1 }",
    );
    let replicas: Vec<Adapter> = (0..3).map(|_| Adapter::spawn(&manifest, &[])).collect();
    for replica in &replicas {
        replica.wait_ready(WAIT).await;
    }
    let keys = keys("replicas", 0..N);
    let started = Instant::now();
    send_keys(&aws, &queue_url, &keys).await;
    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    let tally = Tally::of("three replicas", &sink, &keys, started);
    let all: Vec<&Adapter> = replicas.iter().collect();
    tally.explain_duplicates(&sink, &all);
    let mut shares = Vec::new();
    for replica in &replicas {
        shares.push(
            replica
                .metric(
                    "aws_event_adapter_sink_events_total",
                    "outcome=\"delivered\"",
                )
                .await,
        );
    }
    println!("three replicas: delivered per replica {shares:?}");
    tally.assert_none_lost(|| tail(&all, 30));
}

/// A poison message (its `Records` is not an array) among good ones, without a dead-letter
/// sink: the good ones flow, the poison one is counted as malformed and released back to the
/// queue with a delay, and the queue's redrive policy moves it to the dead-letter queue after
/// two receives. The adapter stays up and ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_counted_released_and_redriven_while_the_rest_flows() {
    const N: usize = 40;
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = queue(&aws, "poison").await;
    let (dlq_url, dlq_arn) = queue(&aws, "poison-dlq").await;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2 });
    aws.sqs
        .set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("set the redrive policy");
    let sink = CountingSink::start(always(StatusCode::OK)).await;
    let manifest = source_manifest(
        "poison",
        "media-uploads",
        &queue_arn,
        &sink.uri(),
        // One poller: no concurrent receives, so moto cannot duplicate a message (see above).
        "receive: { pollers: 1, waitTimeSeconds: 1, redeliveryDelay: 1s, maxRedeliveryDelay: 2s }",
    );
    let mut adapter = Adapter::start(&manifest, &[]).await;
    let keys = keys("poison", 0..N);
    let started = Instant::now();
    send_keys(&aws, &queue_url, &keys[..N / 2]).await;
    let poison = sample("malformed-records-not-array.json");
    let poison_id = aws.send(&queue_url, &poison).await;
    send_keys(&aws, &queue_url, &keys[N / 2..]).await;

    wait_all(&aws, &queue_url, &sink, &keys, WAIT).await;
    adapter
        .wait_metric(
            "aws_event_adapter_source_malformed_total",
            "reason=\"records_not_array\"",
            1.0,
            WAIT,
        )
        .await;
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_released_total",
            "reason=\"malformed\"",
            1.0,
            WAIT,
        )
        .await;
    // After two receives the queue's redrive policy moves it to the dead-letter queue.
    let deadline = Instant::now() + WAIT;
    let redriven = loop {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(&dlq_url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from the dead-letter queue");
        if let Some(message) = out.messages.unwrap_or_default().into_iter().next() {
            break message;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the dead-letter queue; log:\n{}",
            tail(&[&adapter], 40)
        );
    };
    assert_eq!(redriven.message_id.as_deref(), Some(poison_id.as_str()));
    assert_eq!(redriven.body.as_deref(), Some(poison.as_str()));
    aws.wait_queue_empty(&queue_url, WAIT).await;

    let tally = Tally::of("poison message", &sink, &keys, started);
    tally.explain_duplicates(&sink, &[&adapter]);
    let metrics = adapter.metrics().await;
    let malformed = metric_value(&metrics, "aws_event_adapter_source_malformed_total", "");
    let released = metric_value(
        &metrics,
        "aws_event_adapter_sqs_messages_released_total",
        "reason=\"malformed\"",
    );
    println!(
        "poison message: counted malformed {malformed} times, released {released} times, then redriven to the dead-letter queue"
    );
    assert!(
        is_alive(&mut adapter).await,
        "the adapter is still running; log:\n{}",
        tail(&[&adapter], 40)
    );
    assert_eq!(
        http_get(adapter.http_addr, "/readyz").await.unwrap().0,
        StatusCode::OK
    );
    tally.assert_none_lost(|| tail(&[&adapter], 40));
    tally.assert_no_duplicates(|| tail(&[&adapter], 40));
}

/// A delete entry SQS failed through its own fault (`SenderFault: false`, which moto never
/// answers: the proxy drops the entry from the request and reports it failed) is deleted again
/// at once, not left to come back as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_entry_sqs_failed_by_its_own_fault_is_retried() {
    let aws = Aws::new().await;
    let (url, arn) = queue(&aws, "senderfault").await;
    let injected = Arc::new(AtomicUsize::new(0));
    let edit: Edit = {
        let injected = injected.clone();
        Arc::new(move |operation: &str, request: &mut serde_json::Value| {
            let entries = request["Entries"].as_array_mut()?;
            if operation != "DeleteMessageBatch" || injected.fetch_add(1, Ordering::SeqCst) > 0 {
                return None;
            }
            let dropped = entries.remove(0);
            let id = dropped["Id"].clone();
            Some(Box::new(move |answer: &mut serde_json::Value| {
                let failed = serde_json::json!({
                    "Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected"
                });
                match answer["Failed"].as_array_mut() {
                    Some(list) => list.push(failed),
                    None => answer["Failed"] = serde_json::json!([failed]),
                }
            }) as AnswerEdit)
        })
    };
    let proxy = RewritingProxy::start(moto_addr().await, edit).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = source_manifest(
        "senderfault",
        "media-uploads",
        &arn,
        &sink.uri(),
        "receive: { waitTimeSeconds: 1, visibilityTimeout: 2s }",
    );
    let endpoint = proxy.endpoint();
    let adapter = Adapter::spawn_with_env(&manifest, &[], &[("AWS_ENDPOINT_URL_SQS", &endpoint)]);
    adapter.wait_ready(Duration::from_secs(30)).await;
    aws.send(&url, &sample("s3-records-put.json")).await;
    sink.wait_accepted(1, Duration::from_secs(30)).await;
    aws.wait_queue_empty(&url, Duration::from_secs(30)).await;
    assert!(
        injected.load(Ordering::SeqCst) >= 2 && proxy.count("DeleteMessageBatch") >= 2,
        "a second delete was sent"
    );
    assert_eq!(
        adapter
            .metric("aws_event_adapter_sqs_delete_failures_total", "")
            .await,
        0.0,
        "the retried entry is not a failure"
    );
    // Past two visibility timeouts: the message did not come back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sink.attempts(), 1, "delivered once");
}
