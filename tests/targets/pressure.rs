//! Memory under pressure: request bodies held at once are bounded in bytes
//! (`--max-request-bytes-in-flight`) and connections in number (`--max-connections`), so many
//! large, slow requests cannot exhaust the adapter; each is answered, 200 or 503 with
//! `Retry-After`, and nothing accepted is lost.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;
use crate::shared::*;

/// Events per batch and bytes of data each: a batch body just under 4 MiB (the default
/// `--max-request-bytes`), each event's message under SQS's 256 KiB.
const EVENTS: usize = 20;
const DATA_BYTES: usize = 200_000;

fn batch_body(request: usize) -> Vec<u8> {
    let data = "x".repeat(DATA_BYTES);
    let events: Vec<String> = (0..EVENTS)
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","id":"r{request}-e{i}","source":"/pressure","type":"t","datacontenttype":"text/plain","data":"{data}"}}"#
            )
        })
        .collect();
    format!("[{}]", events.join(",")).into_bytes()
}

/// The status line and headers of the answer, or the error that ended the exchange first.
type Answer = Result<String, String>;

/// Posts `body` to `path`, writing it in 60 pieces over `spread`, while reading the answer;
/// stops writing once the answer's head has arrived (a refused request is answered early).
async fn slow_post(addr: SocketAddr, path: &str, body: Vec<u8>, spread: Duration) -> Answer {
    let stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(err) => return Err(format!("connect: {err}")),
    };
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: adapter\r\ncontent-type: application/cloudevents-batch+json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async move {
        writer.write_all(head.as_bytes()).await?;
        let pieces = 60;
        for piece in body.chunks(body.len().div_ceil(pieces)) {
            tokio::time::sleep(spread / pieces as u32).await;
            writer.write_all(piece).await?;
        }
        // Keep the connection open for the answer.
        std::future::pending::<()>().await;
        Ok::<(), std::io::Error>(())
    };
    let read = async move {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(String::from_utf8_lossy(&received[..end]).into_owned());
            }
            match reader.read(&mut buffer).await {
                Ok(0) => return Err("closed before an answer".into()),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(err) => return Err(format!("read: {err}")),
            }
        }
    };
    tokio::pin!(write, read);
    let answer = tokio::select! {
        answer = &mut read => answer,
        written = &mut write => match written {
            // Writing failed (the adapter answered and closed): the answer is still readable.
            Err(_) => read.await,
            Ok(()) => unreachable!("the writer never ends on its own"),
        },
    };
    answer
}

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_slow_4_mib_batches_are_answered_within_bounded_memory() {
    let aws = Aws::new().await;
    let queue = unique("pressure");
    let (url, _) = aws.create_queue(&queue).await;
    let adapter = Adapter::start(&sqs_target("big", &queue, ""), &[]).await;
    let requests = 300;
    let spread = Duration::from_secs(15);
    let posts: Vec<_> = (0..requests)
        .map(|r| {
            let addr = adapter.http_addr;
            tokio::spawn(async move { slow_post(addr, "/big", batch_body(r), spread).await })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for post in posts {
        let answer = tokio::time::timeout(Duration::from_secs(120), post)
            .await
            .expect("every request is answered within 2 minutes")
            .unwrap();
        let head = answer.unwrap_or_else(|err| panic!("a request got no answer: {err}"));
        let status = head.lines().next().unwrap_or_default().to_string();
        if status.contains(" 503 ") {
            assert!(
                head.to_ascii_lowercase().contains("retry-after: 1"),
                "a 503 says when to retry: {head}"
            );
        }
        *statuses.entry(status).or_default() += 1;
    }
    let accepted = statuses.get("HTTP/1.1 200 OK").copied().unwrap_or_default();
    let refused = statuses
        .get("HTTP/1.1 503 Service Unavailable")
        .copied()
        .unwrap_or_default();
    assert_eq!(
        accepted + refused,
        requests,
        "only 200 or 503: {statuses:?}"
    );
    assert!(
        accepted >= 8,
        "the budget takes a dozen at once: {statuses:?}"
    );
    assert!(refused > 0, "300 × 4 MiB exceed the budget: {statuses:?}");

    let peak = peak_rss_mib(adapter.pid());
    assert!(peak < 512, "peak RSS {peak} MiB with {statuses:?}");
    // Still running and ready, and every event of every accepted request is in the queue.
    let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, http::StatusCode::OK, "{body}");
    wait_visible(&aws, &url, (accepted * EVENTS) as u64, LONG).await;
    eprintln!("peak RSS {peak} MiB; answers {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let aws = Aws::new().await;
    let queue = unique("conns");
    aws.create_queue(&queue).await;
    let adapter = Adapter::start(&sqs_target("q", &queue, ""), &["--max-connections", "2"]).await;
    // Two idle connections take both places…
    let first = TcpStream::connect(adapter.http_addr).await.unwrap();
    let second = TcpStream::connect(adapter.http_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = tokio::spawn({
        let addr = adapter.http_addr;
        async move { http_get(addr, "/healthz").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "a third connection is not served");
    // …and when one closes, the waiting request is served.
    drop(first);
    let (status, _) = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a place is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, http::StatusCode::OK);
    drop(second);
}
