//! Both targets' error answers: malformed requests get JSON errors and the next request
//! succeeds, a missing queue or bucket is reported with the AWS code, saturation gets 503 with
//! `Retry-After` and then recovers, a message over the queue's size limit fails alone, and
//! events over SQS's attribute or S3's metadata limits get 400.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::*;
use crate::shared::*;

/// A body sent with `Transfer-Encoding: chunked` (no Content-Length), over a raw connection;
/// returns the status code of the answer.
async fn post_chunked(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(256) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before reading everything: ignore write errors.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_the_next_request_succeeds() {
    let aws = Aws::new().await;
    let queue = unique("sqs-errors");
    let (url, _) = aws.create_queue(&queue).await;
    // Two targets: `/` is no target either.
    let manifest = manifests(&[
        sqs_target("alpha", &queue, ""),
        sqs_target("beta", &queue, ""),
    ]);
    let adapter = Adapter::start(&manifest, &["--max-request-bytes", "1024"]).await;
    let addr = adapter.http_addr;
    let client = http_client();
    let mut accepted = 0;
    let mut next_ok = async |what: &str| {
        accepted += 1;
        let reply = post_binary(&client, addr, "/alpha", &format!("ok-{accepted}")).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "a valid request after {what}: {}",
            reply.text()
        );
        assert_eq!(reply.headers["ce-type"], SQS_RESULT);
    };

    // Binary mode without ce-id.
    let reply = post(
        &client,
        addr,
        "/alpha",
        &[
            ("ce-specversion", "1.0"),
            ("ce-type", "com.example.test"),
            ("ce-source", "/tests"),
            ("content-type", "application/json"),
        ],
        "{}",
    )
    .await;
    let body = reply.assert_error(StatusCode::BAD_REQUEST, "missing ce-id");
    assert!(
        body["error"].as_str().unwrap().contains("id"),
        "names the attribute: {body}"
    );
    next_ok("missing ce-id").await;

    // Structured mode, not JSON.
    let reply = post(
        &client,
        addr,
        "/beta",
        &[("content-type", "application/cloudevents+json")],
        "this is { not json",
    )
    .await;
    reply.assert_error(StatusCode::BAD_REQUEST, "non-JSON structured body");
    next_ok("a non-JSON structured body").await;

    // Structured mode, JSON without the required `id`.
    let reply = post(
        &client,
        addr,
        "/beta",
        &[("content-type", "application/cloudevents+json")],
        json!({"specversion": "1.0", "type": "t", "source": "/s", "data": {}}).to_string(),
    )
    .await;
    reply.assert_error(StatusCode::BAD_REQUEST, "structured event without id");
    next_ok("a structured event without id").await;

    // Not a CloudEvent at all.
    let reply = post(
        &client,
        addr,
        "/alpha",
        &[("content-type", "text/plain")],
        "hello",
    )
    .await;
    reply.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "text/plain");
    next_ok("text/plain").await;

    // Larger than --max-request-bytes: with a Content-Length, and chunked.
    let big = json!({
        "specversion": "1.0", "id": "big", "type": "t", "source": "/s",
        "data": { "padding": "x".repeat(2000) },
    })
    .to_string();
    let reply = post(
        &client,
        addr,
        "/alpha",
        &[("content-type", "application/cloudevents+json")],
        big.clone(),
    )
    .await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "oversized body");
    next_ok("an oversized body").await;
    let status = post_chunked(
        addr,
        "/alpha",
        "application/cloudevents+json",
        big.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "an oversized chunked body");
    next_ok("an oversized chunked body").await;

    // Paths that are no target.
    for path in ["/nope", "/"] {
        let reply = post_binary(&client, addr, path, "lost").await;
        reply.assert_error(StatusCode::NOT_FOUND, path);
        next_ok(path).await;
    }

    // Not a POST.
    let reply = request(&client, Method::GET, addr, "/alpha", &[], Bytes::new()).await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "GET");
    next_ok("GET").await;

    // Only the valid requests reached the queue.
    wait_visible(&aws, &url, accepted, LONG).await;
    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_requests_total",
            "status_class=\"2xx\""
        ),
        accepted as f64
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_requests_total",
            "status_class=\"4xx\""
        ),
        7.0,
        "400 ×3, 415, 413 ×2, 405 (404s name no target)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_or_bucket_is_reported_with_the_aws_code() {
    let aws = Aws::new().await;
    let queue = unique("sqs-real");
    let (url, _) = aws.create_queue(&queue).await;
    let manifest = manifests(&[
        sqs_target("ghost-queue", &unique("never-created"), ""),
        s3_target("ghost-bucket", &unique("never-created"), ""),
        sqs_target("real", &queue, ""),
    ]);
    // The ghost targets never become ready: wait for liveness only.
    let adapter = Adapter::spawn(&manifest, &[]);
    let started = Instant::now();
    let deadline = Instant::now() + LONG;
    while !matches!(
        http_get(adapter.http_addr, "/healthz").await,
        Ok((StatusCode::OK, _))
    ) {
        assert!(
            Instant::now() < deadline,
            "/healthz not 200; log:\n{}",
            adapter.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = http_client();
    let addr = adapter.http_addr;

    for round in 0..2 {
        let reply = post_binary(&client, addr, "/ghost-queue", &format!("gq-{round}")).await;
        assert!(
            reply.status.is_client_error() || reply.status.is_server_error(),
            "{}: {}",
            reply.status,
            reply.text()
        );
        let body = reply.assert_error(reply.status, "missing queue");
        let code = body["code"].as_str().unwrap_or_default();
        assert!(
            code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist"),
            "the AWS error code: {body}"
        );

        let reply = post_binary(&client, addr, "/ghost-bucket", &format!("gb-{round}")).await;
        assert!(
            reply.status.is_client_error() || reply.status.is_server_error(),
            "{}: {}",
            reply.status,
            reply.text()
        );
        let body = reply.assert_error(reply.status, "missing bucket");
        assert_eq!(body["code"], "NoSuchBucket", "the AWS error code: {body}");

        // The process keeps serving: the other target works, /healthz is fine.
        let reply = post_binary(&client, addr, "/real", &format!("real-{round}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            http_get(addr, "/healthz").await.map(|(s, _)| s),
            Ok(StatusCode::OK)
        );
    }
    wait_visible(&aws, &url, 2, LONG).await;
    // Not ready while targets cannot reach their queue or bucket.
    let (status, _) = http_get(addr, "/readyz").await.unwrap();
    assert_ne!(status, StatusCode::OK, "/readyz with unreachable targets");
    let errors = adapter
        .metric(
            "aws_event_adapter_aws_errors_total",
            "name=\"ghost-bucket\"",
        )
        .await;
    assert!(errors >= 2.0, "{errors} errors counted");
    // Logged as well as counted, at most once per 10 s per operation and code.
    let lines: Vec<serde_json::Value> = adapter
        .log()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["message"] == "AWS refused or failed a call" && line["name"] == "ghost-bucket"
        })
        .collect();
    assert!(!lines.is_empty(), "no log line; log:\n{}", adapter.log());
    assert!(
        lines.iter().all(|line| line["code"] == "NoSuchBucket"
            && line["error"]
                .as_str()
                .is_some_and(|e| e.contains("NoSuchBucket"))),
        "{lines:?}"
    );
    let allowed = 1 + started.elapsed().as_secs() / 10;
    assert!(
        lines.len() as u64 <= allowed && (lines.len() as f64) < errors,
        "{} lines for {errors} errors in {:?}",
        lines.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_gets_503_with_retry_after_and_then_recovers() {
    let aws = Aws::new().await;
    let queue = unique("sqs-saturated");
    let (url, _) = aws.create_queue(&queue).await;
    let adapter = Adapter::start(
        &sqs_target("narrow", &queue, ""),
        &["--max-concurrent-requests", "1"],
    )
    .await;
    let addr = adapter.http_addr;
    let client = http_client();

    // A request whose body never ends holds the only slot.
    let event = json!({
        "specversion": "1.0", "id": "slow", "type": "com.example.test", "source": "/tests",
        "datacontenttype": "application/json", "data": { "slow": true },
    })
    .to_string();
    let hold_slot = async || {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(
            format!(
                "POST /narrow HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/cloudevents+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{event}\r\n",
                event.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        slow
    };
    let mut slow = hold_slot().await;

    // Until the server has taken the slow request in, others may still pass; and when the slow
    // request arrived while one of them held the slot, it was refused itself: start it again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut passed = 0;
    let refused = loop {
        let reply = post_binary(&client, addr, "/narrow", &format!("fast-{passed}")).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            break reply;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        passed += 1;
        assert!(Instant::now() < deadline, "never saturated");
        let mut probe = [0u8; 1];
        if tokio::time::timeout(Duration::from_millis(20), slow.peek(&mut probe))
            .await
            .is_ok()
        {
            slow = hold_slot().await; // answered (refused) or closed
        }
    };
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "saturated");
    let retry_after = refused
        .headers
        .get("retry-after")
        .expect("Retry-After on 503")
        .to_str()
        .unwrap();
    assert!(retry_after.parse::<u64>().is_ok(), "{retry_after}");

    // The slow request completes normally, and the slot is free again.
    slow.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer))
        .await
        .expect("the slow request is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let reply = post_binary(&client, addr, "/narrow", "after").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    wait_visible(&aws, &url, passed + 2, LONG).await;
    assert!(
        adapter
            .metric(
                "aws_event_adapter_target_requests_total",
                "status_class=\"5xx\""
            )
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_queue_size_limit_fail_alone() {
    let aws = Aws::new().await;
    let queue = unique("sqs-small");
    // The smallest limit SQS allows; the target reads it at start.
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&queue)
        .attributes(QueueAttributeName::MaximumMessageSize, "1024")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap();
    let adapter = Adapter::start(&sqs_target("small", &queue, ""), &[]).await;
    let client = http_client();
    let run = unique("m");
    let event = |i: usize, padding: usize| {
        json!({
            "specversion": "1.0", "id": format!("{run}-{i}"), "type": "com.example.test",
            "source": "/tests", "datacontenttype": "application/json",
            "data": { "padding": "x".repeat(padding) },
        })
    };

    // A batch with one event too large for the queue: the others are written, and the answer
    // says which one failed.
    let batch = json!([event(0, 10), event(1, 1500), event(2, 10)]);
    let reply = post(
        &client,
        adapter.http_addr,
        "/small",
        &[("content-type", "application/cloudevents-batch+json")],
        batch.to_string(),
    )
    .await;
    let body = reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "one event too large");
    let results = body["results"].as_array().expect("per-event results");
    assert_eq!(results.len(), 3, "{body}");
    assert_eq!(results[1]["id"], format!("{run}-1"));
    assert_eq!(results[1]["status"], 413, "{body}");
    for ok in [&results[0], &results[2]] {
        assert_eq!(ok["status"], 200, "{body}");
        assert!(ok["result"]["messageId"].is_string(), "{body}");
    }

    // The same event alone: 413 with a JSON error.
    let reply = post(
        &client,
        adapter.http_addr,
        "/small",
        &[("content-type", "application/cloudevents+json")],
        event(3, 1500).to_string(),
    )
    .await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "a single event too large");

    let messages = receive(&aws, &url, 2, LONG).await;
    assert_eq!(aws.queue_depth(&url).await, (0, 2), "only the small ones");
    let ids: HashSet<String> = messages
        .iter()
        .map(|m| body_json(m)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, HashSet::from([format!("{run}-0"), format!("{run}-2")]));
    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_events_total",
            "outcome=\"failed\""
        ),
        2.0
    );
}

/// What the targets cannot store as configured is refused with 400, never cut or retried: an
/// SQS data-only message that would need more than ten message attributes (the error names
/// the ones that would not fit; nothing is sent), and an S3 object whose metadata would exceed
/// S3's 2 KB (refused before the call; the subject, which is the key, does not count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_do_not_fit_aws_limits_get_400_naming_what_does_not_fit() {
    let aws = Aws::new().await;
    let queue = unique("sqs-attrs");
    let (url, _) = aws.create_queue(&queue).await;
    let bucket = unique("s3-meta");
    create_bucket(&aws, &bucket).await;
    let manifest = manifests(&[
        sqs_target("data-only", &queue, "discardCloudEventContext: true"),
        s3_target("objects", &bucket, ""),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let client = http_client();
    let extensions: Vec<(String, String)> = (0..12)
        .map(|n| (format!("ce-ext{n:02}"), format!("v{n}")))
        .collect();
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "many-1"),
        ("ce-type", "com.example.test"),
        ("ce-source", "/tests"),
        ("content-type", "application/json"),
    ];
    headers.extend(extensions.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let reply = post(&client, adapter.http_addr, "/data-only", &headers, "{}").await;
    let body = reply.assert_error(StatusCode::BAD_REQUEST, "twelve extensions, data only");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains(
            "ce-ext05, ce-ext06, ce-ext07, ce-ext08, ce-ext09, ce-ext10, ce-ext11 would not fit"
        ),
        "{error}"
    );
    // Six extensions with the four context attributes and content-type: eleven, neither.
    let reply = post(
        &client,
        adapter.http_addr,
        "/data-only",
        &headers[..11],
        "{}",
    )
    .await;
    reply.assert_error(StatusCode::BAD_REQUEST, "six extensions, data only");
    // Five: ten attributes, all of them on the message.
    let reply = post(
        &client,
        adapter.http_addr,
        "/data-only",
        &headers[..10],
        "{}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let messages = receive(&aws, &url, 1, LONG).await;
    assert_eq!(messages.len(), 1, "only the event that fits was sent");
    assert_eq!(
        string_attribute(&messages[0], "ce-ext04").as_deref(),
        Some("v4")
    );

    let long_subject = "k".repeat(1000);
    let note = "n".repeat(2100);
    fn object_headers<'a>(subject: &'a str, note: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("ce-specversion", "1.0"),
            ("ce-id", "meta-1"),
            ("ce-type", "com.example.test"),
            ("ce-source", "/tests"),
            ("ce-subject", subject),
            ("content-type", "application/json"),
            ("ce-note", note),
        ]
    }
    let big = object_headers(&long_subject, &note);
    let reply = post(&client, adapter.http_addr, "/objects", &big, "{}").await;
    let body = reply.assert_error(StatusCode::BAD_REQUEST, "metadata over 2 KB");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("S3 takes at most 2048"),
        "{body}"
    );
    assert!(list_keys(&aws, &bucket).await.is_empty(), "nothing written");
    let small_note = "n".repeat(1900);
    let small = object_headers(&long_subject, &small_note);
    let reply = post(&client, adapter.http_addr, "/objects", &small, "{}").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let object = get_object(&aws, &bucket, &long_subject).await;
    assert_eq!(
        object.metadata.get("ce-subject"),
        None,
        "the subject is the key"
    );
    assert_eq!(object.metadata["ce-note"], small_note);
}

/// A `GetQueueUrl` answer without a URL (which moto never gives; the proxy removes it once) is
/// an error to retry, never a queue URL of `""` kept for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_url_answer_without_a_url_is_retried_not_kept() {
    let aws = Aws::new().await;
    let queue = unique("nourl");
    let (url, _) = aws.create_queue(&queue).await;
    let emptied = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let edit: Edit = {
        let emptied = emptied.clone();
        std::sync::Arc::new(move |operation: &str, _: &mut serde_json::Value| {
            if operation != "GetQueueUrl" || emptied.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                return None;
            }
            Some(Box::new(|answer: &mut serde_json::Value| {
                answer.as_object_mut().map(|o| o.remove("QueueUrl"));
            }) as AnswerEdit)
        })
    };
    let proxy = RewritingProxy::start(moto_addr().await, edit).await;
    let endpoint = proxy.endpoint();
    let adapter = Adapter::spawn_with_env(
        &sqs_target("nourl", &queue, ""),
        &[],
        &[("AWS_ENDPOINT_URL_SQS", &endpoint)],
    );
    adapter.wait_ready(LONG).await;
    assert!(
        emptied.load(std::sync::atomic::Ordering::SeqCst),
        "the empty answer was given"
    );
    assert!(proxy.count("GetQueueUrl") >= 2, "asked again");
    let client = http_client();
    let reply = post_binary(&client, adapter.http_addr, "/", "after-empty-url").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let messages = receive(&aws, &url, 1, LONG).await;
    assert_eq!(body_json(&messages[0])["id"], "after-empty-url");
}
