//! `--latency` and `--jitter` with real SDK clients: every SQS and STS answer takes at least the
//! latency, a long poll still returns as soon as a message arrives (plus the latency), and the
//! delays of concurrent calls overlap.

use super::*;

/// `--latency 50ms`: far above the stand-in's own time per call, so the bounds below are clear
/// even in a debug build on a busy machine.
const LATENCY: Duration = Duration::from_millis(50);

#[tokio::test]
async fn every_answer_waits_the_latency() {
    let (addr, _app) = standin(&["--queue", "q", "--latency", "50ms"]).await;
    let sqs = client(addr);
    let started = Instant::now();
    let url = url(&sqs, "q").await;
    assert!(started.elapsed() >= LATENCY, "{:?}", started.elapsed());

    for _ in 0..3 {
        let started = Instant::now();
        send(&sqs, &url, "one").await;
        let took = started.elapsed();
        assert!(took >= LATENCY && took < LATENCY * 4, "{took:?}");
    }
    // Errors are answers too.
    let started = Instant::now();
    let missing = sqs.get_queue_url().queue_name("nope").send().await;
    assert!(missing.is_err());
    assert!(started.elapsed() >= LATENCY, "{:?}", started.elapsed());

    // STS as well.
    let started = Instant::now();
    sts_client(addr)
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .role_session_name("s")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= LATENCY, "{:?}", started.elapsed());

    // The control endpoints answer at once.
    let started = Instant::now();
    let (status, stats) = http(addr, Method::GET, "/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() < LATENCY, "{:?}", started.elapsed());
    assert_eq!(stats["sent"], 3);
}

#[tokio::test]
async fn jitter_adds_to_the_latency() {
    let (addr, _app) = standin(&["--queue", "q", "--latency", "20ms", "--jitter", "30ms"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "q").await;
    let mut took = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        send(&sqs, &url, "one").await;
        took.push(started.elapsed());
    }
    let ms = Duration::from_millis;
    assert!(took.iter().all(|t| *t >= ms(20)), "{took:?}");
    // Ten draws in [20, 50) ms: not all below 25 ms but for a chance of 6^-10.
    assert!(took.iter().any(|t| *t >= ms(25)), "{took:?}");
}

#[tokio::test]
async fn a_long_poll_returns_a_latency_after_the_message() {
    let (addr, _app) = standin(&["--queue", "q", "--latency", "50ms"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "q").await;
    let waiting = tokio::spawn({
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            let messages = sqs
                .receive_message()
                .queue_url(&url)
                .wait_time_seconds(10)
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            (Instant::now(), messages.len())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    send(&sqs, &url, "late").await;
    let (returned, got) = waiting.await.unwrap();
    assert_eq!(got, 1);
    // Visible once the send is served; then the receive's own answer takes the latency.
    let after_send = returned.duration_since(sent);
    assert!(
        after_send >= LATENCY && after_send < LATENCY + Duration::from_millis(500),
        "{after_send:?} after the send (the long poll waits up to 10 s)"
    );
}

#[tokio::test]
async fn concurrent_calls_overlap() {
    const CALLS: u32 = 200;
    let (addr, app) = standin(&["--queue", "q", "--latency", "50ms"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "q").await;
    let started = Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (sqs, url) = (sqs.clone(), url.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                send(&sqs, &url, format!("m-{i}")).await;
                started.elapsed()
            })
        })
        .collect();
    for call in calls {
        let took = call.await.unwrap();
        assert!(took >= LATENCY, "{took:?}");
    }
    // One after the other they would take CALLS × 50 ms = 10 s.
    let all = started.elapsed();
    assert!(all < LATENCY * CALLS / 5, "{CALLS} calls took {all:?}");
    assert_eq!(app.stats()["sent"], u64::from(CALLS));
}
