//! The SQS target end to end: binary and structured events from the Python SDK, batches of
//! 25 in at most 3 `SendMessageBatch` calls, concurrent requests coalesced into batches, FIFO
//! groups and deduplication, a FIFO target without a group refused by `validate`, and SIGTERM
//! finishing the requests already accepted, and a target with an endpoint of its own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::common::*;
use crate::shared::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_target_takes_binary_and_structured_events_from_the_python_sdk() {
    let aws = Aws::new().await;
    let full_queue = unique("sqs-full");
    let data_queue = unique("sqs-data");
    let (full_url, _) = aws.create_queue(&full_queue).await;
    let (data_url, _) = aws.create_queue(&data_queue).await;
    let manifest = manifests(&[
        sqs_target("full", &full_queue, ""),
        sqs_target("data-only", &data_queue, "discardCloudEventContext: true"),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let base = format!("http://{}", adapter.http_addr);
    let run = unique("run");
    let id = |n: u32| format!("{run}-{n}");
    let subject = "orders/été 100% \"done\".json";

    // Whole events: binary mode (subject percent-encoded by the SDK) and structured mode.
    let binary = py_send(
        &format!("{base}/full"),
        "binary",
        &[
            "--type",
            "com.example.order.created",
            "--source",
            "/shop/orders",
            "--id",
            &id(1),
            "--subject",
            subject,
            "--data",
            r#"{"order": 1, "items": ["a", "b"]}"#,
            "--extension",
            "tenant=acme blue",
        ],
    )
    .await;
    let structured = py_send(
        &format!("{base}/full"),
        "structured",
        &[
            "--type",
            "com.example.order.created",
            "--source",
            "/shop/orders",
            "--id",
            &id(2),
            "--data",
            r#"{"order": 2}"#,
        ],
    )
    .await;
    // Data only: the context goes into message attributes.
    let data_binary = py_send(
        &format!("{base}/data-only"),
        "binary",
        &[
            "--type",
            "com.example.order.paid",
            "--source",
            "/shop/payments",
            "--id",
            &id(3),
            "--subject",
            "pay ment",
            "--data",
            r#"{"order": 3}"#,
        ],
    )
    .await;
    let data_structured = py_send(
        &format!("{base}/data-only"),
        "structured",
        &[
            "--type",
            "com.example.order.paid",
            "--source",
            "/shop/payments",
            "--id",
            &id(4),
            "--data",
            r#"{"order": 4}"#,
        ],
    )
    .await;

    let mut replies: HashMap<String, Value> = HashMap::new();
    for (n, sent, queue) in [
        (1, &binary, &full_queue),
        (2, &structured, &full_queue),
        (3, &data_binary, &data_queue),
        (4, &data_structured, &data_queue),
    ] {
        let data = assert_result(sent, SQS_RESULT, &queue_arn(queue));
        assert!(
            data["messageId"].as_str().is_some_and(|m| !m.is_empty()),
            "{data}"
        );
        assert!(data["md5OfMessageBody"].is_string(), "{data}");
        assert!(
            data.get("sequenceNumber").is_none_or(Value::is_null),
            "standard queue: {data}"
        );
        assert!(
            sent.headers["content-type"]
                .as_str()
                .unwrap()
                .starts_with("application/json"),
            "binary-mode reply: {:?}",
            sent.headers
        );
        replies.insert(id(n), data);
    }

    // The structured event as the message body.
    let messages = receive(&aws, &full_url, 2, LONG).await;
    assert_eq!(aws.queue_depth(&full_url).await, (0, 2), "exactly two");
    for message in &messages {
        let event = body_json(message);
        let event_id = event["id"].as_str().unwrap().to_string();
        let reply = &replies[&event_id];
        assert_eq!(message.message_id.as_deref(), reply["messageId"].as_str());
        assert_eq!(
            message.md5_of_body.as_deref(),
            reply["md5OfMessageBody"].as_str()
        );
        assert_eq!(event["specversion"], "1.0", "{event}");
        assert_eq!(event["type"], "com.example.order.created", "{event}");
        assert_eq!(event["source"], "/shop/orders", "{event}");
        assert_eq!(event["datacontenttype"], "application/json", "{event}");
        assert!(event["time"].is_string(), "{event}");
        if event_id == id(1) {
            assert_eq!(
                structured_data(&event),
                &json!({"order": 1, "items": ["a", "b"]})
            );
            assert_eq!(event["subject"], subject, "decoded from ce-subject");
            assert_eq!(event["tenant"], "acme blue", "extension: {event}");
        } else {
            assert_eq!(event_id, id(2));
            assert_eq!(structured_data(&event), &json!({"order": 2}));
            assert!(event.get("subject").is_none(), "{event}");
        }
        assert!(
            message
                .message_attributes
                .as_ref()
                .is_none_or(|a| a.len() <= 10),
            "at most 10 message attributes"
        );
    }

    // Only data as the body; the context in message attributes.
    let messages = receive(&aws, &data_url, 2, LONG).await;
    assert_eq!(aws.queue_depth(&data_url).await, (0, 2), "exactly two");
    for message in &messages {
        let event_id = string_attribute(message, "ce-id").expect("ce-id attribute");
        let reply = &replies[&event_id];
        assert_eq!(message.message_id.as_deref(), reply["messageId"].as_str());
        let expected_data = if event_id == id(3) {
            json!({"order": 3})
        } else {
            json!({"order": 4})
        };
        assert_eq!(body_json(message), expected_data);
        assert_eq!(
            string_attribute(message, "ce-type").as_deref(),
            Some("com.example.order.paid")
        );
        assert_eq!(
            string_attribute(message, "ce-source").as_deref(),
            Some("/shop/payments")
        );
        assert_eq!(
            string_attribute(message, "ce-specversion").as_deref(),
            Some("1.0")
        );
        assert!(string_attribute(message, "ce-time").is_some());
        if event_id == id(3) {
            assert_eq!(
                string_attribute(message, "ce-subject").as_deref(),
                Some("pay ment")
            );
        }
        let attributes = message.message_attributes.as_ref().unwrap();
        assert!(attributes.len() <= 10, "{attributes:?}");
        assert!(
            attributes
                .values()
                .any(|v| v.string_value.as_deref() == Some("application/json")),
            "the data's content type is kept: {attributes:?}"
        );
    }

    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_events_total",
            "outcome=\"written\""
        ),
        4.0
    );
    for mode in ["binary", "structured"] {
        assert_eq!(
            metric_value(
                &metrics,
                "aws_event_adapter_target_requests_total",
                &format!("mode=\"{mode}\"")
            ),
            2.0,
            "{mode} requests"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_25_events_takes_at_most_3_send_message_batch_calls() {
    let aws = Aws::new().await;
    let queue = unique("sqs-batch");
    let (url, _) = aws.create_queue(&queue).await;
    let adapter = Adapter::start(&sqs_target("batched", &queue, ""), &[]).await;
    let run = unique("b");
    let events: Vec<Value> = (0..25)
        .map(|i| {
            json!({
                "specversion": "1.0",
                "id": format!("{run}-{i}"),
                "source": "/tests/batch",
                "type": "com.example.batch",
                "datacontenttype": "application/json",
                "data": { "i": i },
            })
        })
        .collect();
    let client = http_client();
    // The only target is served at `/` as well.
    let reply = post(
        &client,
        adapter.http_addr,
        "/",
        &[("content-type", "application/cloudevents-batch+json")],
        serde_json::to_vec(&events).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents-batch+json"),
        "{:?}",
        reply.headers
    );
    let results = reply.json();
    let results = results.as_array().expect("a batch of results");
    assert_eq!(results.len(), 25);
    let mut message_ids = HashSet::new();
    for result in results {
        assert_eq!(result["type"], SQS_RESULT, "{result}");
        assert_eq!(result["source"], queue_arn(&queue), "{result}");
        let message_id = result["data"]["messageId"].as_str().expect("messageId");
        message_ids.insert(message_id.to_string());
    }
    assert_eq!(message_ids.len(), 25, "one message id per event");

    let messages = receive(&aws, &url, 25, LONG).await;
    assert_eq!(aws.queue_depth(&url).await, (0, 25), "exactly 25 messages");
    let ids: HashSet<String> = messages
        .iter()
        .map(|m| body_json(m)["id"].as_str().unwrap().to_string())
        .collect();
    let expected: HashSet<String> = (0..25).map(|i| format!("{run}-{i}")).collect();
    assert_eq!(ids, expected);
    let received: HashSet<String> = messages
        .iter()
        .map(|m| m.message_id.clone().unwrap())
        .collect();
    assert_eq!(received, message_ids);

    let metrics = adapter.metrics().await;
    let label = "name=\"batched\"";
    let batches = metric_value(&metrics, "aws_event_adapter_sqs_send_batches_total", label);
    let entries = metric_value(&metrics, "aws_event_adapter_sqs_send_entries_total", label);
    assert_eq!(entries, 25.0);
    assert!(
        (1.0..=3.0).contains(&batches),
        "{batches} SendMessageBatch calls for 25 events"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_requests_total",
            "mode=\"batch\""
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_coalesced_into_batches() {
    const N: usize = 200;
    let aws = Aws::new().await;
    let queue = unique("sqs-concurrent");
    let (url, _) = aws.create_queue(&queue).await;
    let adapter = Adapter::start(&sqs_target("busy", &queue, ""), &[]).await;
    let client = http_client();
    let run = unique("c");
    let started = Instant::now();
    let tasks = spawn_binary_posts(&client, adapter.http_addr, "/busy", &run, N);
    let mut message_ids = HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.headers["ce-type"], SQS_RESULT);
        let data = reply.json();
        message_ids.insert(data["messageId"].as_str().expect("messageId").to_string());
    }
    let elapsed = started.elapsed();
    assert_eq!(message_ids.len(), N, "one message per request");

    wait_visible(&aws, &url, N as u64, LONG).await;

    let metrics = adapter.metrics().await;
    let label = "name=\"busy\"";
    let batches = metric_value(&metrics, "aws_event_adapter_sqs_send_batches_total", label);
    let entries = metric_value(&metrics, "aws_event_adapter_sqs_send_entries_total", label);
    assert_eq!(entries, N as f64);
    assert!(
        entries / batches > 5.0,
        "{entries} entries in {batches} SendMessageBatch calls ({:.1} per call; {elapsed:?})",
        entries / batches
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_requests_total",
            "status_class=\"2xx\""
        ),
        N as f64
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_events_total",
            "outcome=\"written\""
        ),
        N as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_messages_carry_the_group_and_duplicates_are_stored_once() {
    let aws = Aws::new().await;
    let queue = format!("{}.fifo", unique("sqs-fifo"));
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&queue)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .send()
        .await
        .expect("create FIFO queue")
        .queue_url
        .unwrap();
    let adapter = Adapter::start(
        &sqs_target("ordered", &queue, "messageGroupId: orders-group"),
        &[],
    )
    .await;
    let target = format!("http://{}/ordered", adapter.http_addr);
    let run = unique("f");
    let event = |id: &str, order: u32| {
        [
            "--type".to_string(),
            "com.example.order".to_string(),
            "--source".to_string(),
            "/shop".to_string(),
            "--id".to_string(),
            id.to_string(),
            "--data".to_string(),
            json!({ "order": order }).to_string(),
        ]
    };
    let first_id = format!("{run}-1");
    let second_id = format!("{run}-2");
    // The same event twice (once per mode: the same id and source), then another one.
    let mut sequence_numbers = Vec::new();
    for (mode, args) in [
        ("binary", event(&first_id, 1)),
        ("structured", event(&first_id, 1)),
        ("binary", event(&second_id, 2)),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sent = py_send(&target, mode, &args).await;
        let data = assert_result(&sent, SQS_RESULT, &queue_arn(&queue));
        assert!(data["messageId"].is_string(), "{data}");
        let sequence = data["sequenceNumber"]
            .as_str()
            .unwrap_or_else(|| panic!("FIFO results carry a sequence number: {data}"));
        sequence_numbers.push(sequence.to_string());
    }

    wait_visible(&aws, &url, 2, LONG).await;
    // One group: receive and delete in turn, in order.
    let mut received = Vec::new();
    let deadline = Instant::now() + LONG;
    while received.len() < 2 {
        assert!(Instant::now() < deadline, "received {received:?}");
        let output = aws
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive message");
        for message in output.messages.unwrap_or_default() {
            aws.sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .expect("delete message");
            received.push(message);
        }
    }
    assert_eq!(
        aws.queue_depth(&url).await,
        (0, 0),
        "the duplicate was dropped"
    );
    assert_eq!(received.len(), 2);
    let mut dedup_ids = HashSet::new();
    for (message, (expected_id, order)) in received.iter().zip([(&first_id, 1), (&second_id, 2)]) {
        let event = body_json(message);
        assert_eq!(&event["id"], expected_id.as_str(), "in order: {event}");
        assert_eq!(structured_data(&event), &json!({ "order": order }));
        let system = message.attributes.as_ref().expect("system attributes");
        assert_eq!(
            system
                .get(&MessageSystemAttributeName::MessageGroupId)
                .map(String::as_str),
            Some("orders-group")
        );
        let dedup = system
            .get(&MessageSystemAttributeName::MessageDeduplicationId)
            .expect("a deduplication id");
        assert!(!dedup.is_empty() && dedup.len() <= 128, "{dedup}");
        dedup_ids.insert(dedup.clone());
        assert!(
            system.contains_key(&MessageSystemAttributeName::SequenceNumber),
            "{system:?}"
        );
    }
    assert_eq!(dedup_ids.len(), 2, "different events, different dedup ids");
    assert_ne!(sequence_numbers[0], sequence_numbers[2]);
}

#[test]
fn a_fifo_target_without_a_message_group_fails_validation() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("targets.yaml");
    std::fs::write(&config, sqs_target("ordered", "orders.fifo", "")).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aws-event-adapter"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "validate accepted it: {stderr}");
    assert!(
        stderr.contains("spec.messageGroupId"),
        "the message names the field: {stderr}"
    );
    assert!(stderr.contains("FIFO"), "and says why: {stderr}");

    // With the group, the same target is valid.
    std::fs::write(
        &config,
        sqs_target("ordered", "orders.fifo", "messageGroupId: orders"),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_aws-event-adapter"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SIGTERM while `SendMessageBatch` calls are on their way (moto behind a proxy that delays
/// every answer by 700 ms): every request the target accepted is answered 200 and its message
/// is in the queue, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_requests_it_accepted() {
    const N: usize = 30;
    let aws = Aws::new().await;
    let queue = unique("sqs-drain");
    let (url, _) = aws.create_queue(&queue).await;
    let proxy = TcpProxy::start(moto_addr().await).await;
    let endpoint = format!("http://{}", proxy.addr);
    let mut adapter = Adapter::spawn_with_env(
        &sqs_target("draining", &queue, ""),
        &[],
        &[("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    adapter.wait_ready(LONG).await;
    proxy.set_delay(Duration::from_millis(700));

    let client = http_client();
    let run = unique("d");
    let tasks = spawn_binary_posts(&client, adapter.http_addr, "/draining", &run, N);
    // Every entry is in a call on its way (counted when the call starts), none answered yet.
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_send_entries_total",
            "name=\"draining\"",
            N as f64,
            Duration::from_secs(10),
        )
        .await;
    adapter.signal("TERM");

    let mut ids = HashSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "an accepted request after SIGTERM: {}; log:\n{}",
            reply.text(),
            adapter.log()
        );
        ids.insert(reply.json()["messageId"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), N);
    let status = adapter.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}; log:\n{}", adapter.log());
    proxy.set_delay(Duration::ZERO);
    wait_visible(&aws, &url, N as u64, LONG).await;
    assert!(
        tokio::net::TcpStream::connect(adapter.http_addr)
            .await
            .is_err(),
        "still listening after exit"
    );
}

/// `spec.endpoint.url` sends that target's calls to its own endpoint (here a counting proxy in
/// front of moto), while the other target uses `AWS_ENDPOINT_URL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_url_of_its_own_takes_one_target_elsewhere() {
    let aws = Aws::new().await;
    let (own_queue, shared_queue) = (unique("ep-own"), unique("ep-env"));
    let (own_url, _) = aws.create_queue(&own_queue).await;
    let (shared_url, _) = aws.create_queue(&shared_queue).await;
    let pass = std::sync::Arc::new(|_: &str, _: &mut serde_json::Value| None) as Edit;
    let proxy = RewritingProxy::start(moto_addr().await, pass).await;
    let manifest = manifests(&[
        sqs_target(
            "own",
            &own_queue,
            &format!("endpoint: {{ url: \"{}\" }}", proxy.endpoint()),
        ),
        sqs_target("shared", &shared_queue, ""),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let client = http_client();
    for (path, id) in [("/own", "to-own"), ("/shared", "to-shared")] {
        let reply = post_binary(&client, adapter.http_addr, path, id).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    }
    assert_eq!(
        body_json(&receive(&aws, &own_url, 1, LONG).await[0])["id"],
        "to-own"
    );
    assert_eq!(
        body_json(&receive(&aws, &shared_url, 1, LONG).await[0])["id"],
        "to-shared"
    );
    assert_eq!(
        proxy.count("SendMessageBatch"),
        1,
        "only the own target's send"
    );
    assert!(proxy.count("GetQueueUrl") >= 1);
}

/// A target's credentials keep being renewed while it drains: its last sends after SIGTERM go
/// out with fresh keys. Sessions of 900 s renewed 896 s early (one every 3 to 4 s); the
/// target's SQS calls (its own `endpoint.url`) take 4 s through a delaying proxy, STS does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_keep_refreshing_while_a_target_drains() {
    const N: usize = 3;
    let aws = Aws::new().await;
    let queue = unique("sqs-drain-creds");
    let (url, _) = aws.create_queue(&queue).await;
    let proxy = TcpProxy::start(moto_addr().await).await;
    let manifest = sqs_target(
        "renewing",
        &queue,
        &format!("endpoint: {{ url: \"http://{}\" }}", proxy.addr),
    )
    .replace(
        "      secretAccessKey: { value: testing }\n",
        "      secretAccessKey: { value: testing }\n      assumeIamRole: arn:aws:iam::123456789012:role/renewing\n    sessionDuration: 15m\n    refreshMargin: 896s\n",
    );
    let mut adapter = Adapter::start(&manifest, &["--shutdown-grace", "20s"]).await;
    // Longer than the 3 to 4 s between renewals, shorter than a call attempt's 10 s.
    proxy.set_delay(Duration::from_secs(4));
    let client = http_client();
    let tasks = spawn_binary_posts(&client, adapter.http_addr, "/renewing", &unique("c"), N);
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_send_entries_total",
            "name=\"renewing\"",
            N as f64,
            Duration::from_secs(10),
        )
        .await;
    adapter.signal("TERM");
    for task in tasks {
        let reply = task
            .await
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", adapter.log()));
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let status = adapter.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit {status}; log:\n{}", adapter.log());
    let log = adapter.log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let signal = lines
        .iter()
        .position(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutdown signal received"))
        })
        .expect("the signal line");
    assert!(
        lines[signal..]
            .iter()
            .any(|line| line["message"] == "AWS credentials loaded" && line["name"] == "renewing"),
        "no renewal during the drain; log:\n{log}"
    );
    proxy.set_delay(Duration::ZERO);
    wait_visible(&aws, &url, N as u64, LONG).await;
}

/// An incoming event's trace context (W3C's `traceparent` header, which Knative sends, or the
/// CloudEvents extension) goes on in the message's `AWSTraceHeader`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_of_an_event_goes_on_in_the_message() {
    let aws = Aws::new().await;
    let queue = unique("sqs-trace");
    let (url, _) = aws.create_queue(&queue).await;
    let adapter = Adapter::start(&sqs_target("traced", &queue, ""), &[]).await;
    let client = http_client();
    let binary = [
        ("ce-specversion", "1.0"),
        ("ce-id", "from-header"),
        ("ce-type", "t"),
        ("ce-source", "/tests"),
        ("content-type", "application/json"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ];
    let reply = post(&client, adapter.http_addr, "/", &binary, "{}").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let structured = json!({
        "specversion": "1.0", "id": "from-extension", "type": "t", "source": "/tests",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        "data": {}
    });
    let reply = post(
        &client,
        adapter.http_addr,
        "/",
        &[("content-type", "application/cloudevents+json")],
        structured.to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let messages = receive(&aws, &url, 2, LONG).await;
    let trace_of = |id: &str| {
        let message = messages
            .iter()
            .find(|m| body_json(m)["id"] == id)
            .expect("the message");
        message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader))
            .cloned()
            .unwrap_or_else(|| panic!("no AWSTraceHeader on {message:?}"))
    };
    let from_header = trace_of("from-header");
    assert!(
        from_header.starts_with("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=")
            && from_header.ends_with(";Sampled=1"),
        "{from_header}"
    );
    let from_extension = trace_of("from-extension");
    assert!(
        from_extension.starts_with("Root=1-0af76519-16cd43dd8448eb211c80319c;Parent=")
            && from_extension.ends_with(";Sampled=0"),
        "{from_extension}"
    );
}
