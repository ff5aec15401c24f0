//! The SQS and S3 targets end to end against the AWS emulator: the adapter binary as a child
//! process, CloudEvents posted by the official CloudEvents Python SDK
//! (`tests/support/send_cloudevent.py`) and by a plain HTTP client, and what lands in moto
//! read back with the AWS SDK.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bytes::Bytes;
use common::*;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(60);
const SQS_RESULT: &str = "io.triggermesh.targets.aws.sqs.result";
const S3_RESULT: &str = "io.triggermesh.targets.aws.s3.result";
const SEND_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/send_cloudevent.py"
);

// ---------------------------------------------------------------------------------------------
// Manifests

const AUTH: &str = "  auth:
    credentials:
      accessKeyID: { value: testing }
      secretAccessKey: { value: testing }
";

fn queue_arn(queue: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}")
}

/// An AWSSQSTarget; `extra` lines go under `spec:` (indented by two spaces).
fn sqs_target(name: &str, queue: &str, extra: &str) -> String {
    let extra: String = extra.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSSQSTarget
metadata:
  name: {name}
spec:
  arn: {arn}
{extra}{AUTH}",
        arn = queue_arn(queue)
    )
}

/// An AWSS3Target; `extra` lines go under `spec:`.
fn s3_target(name: &str, bucket: &str, extra: &str) -> String {
    let extra: String = extra.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: targets.triggermesh.io/v1alpha1
kind: AWSS3Target
metadata:
  name: {name}
spec:
  arn: arn:aws:s3:::{bucket}
{extra}{AUTH}"
    )
}

fn manifests(documents: &[String]) -> String {
    documents.join("---\n")
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What `send_cloudevent.py` printed: the HTTP answer and the reply decoded by the Python SDK.
#[derive(Debug)]
struct PySent {
    status: u16,
    headers: Value,
    body: String,
    /// The reply's attributes and `data`, as the SDK's `from_http` read them (200 only).
    reply: Value,
}

/// Posts one event with the official CloudEvents Python SDK (`mode`: binary or structured).
/// `args` are further arguments of the script: `--type`, `--source`, `--id`, `--subject`,
/// `--data`, `--datacontenttype`, `--extension`.
async fn py_send(url: &str, mode: &str, args: &[&str]) -> PySent {
    let python = std::env::var("MOTO_PYTHON")
        .expect("MOTO_PYTHON is not set: run the tests through ./scripts/test");
    let output = tokio::process::Command::new(&python)
        .arg(SEND_SCRIPT)
        .args(["--url", url, "--mode", mode])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {python} {SEND_SCRIPT}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "send_cloudevent.py failed ({}): {stderr}",
        output.status
    );
    let line: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "send_cloudevent.py printed no JSON ({e}): {}{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    PySent {
        status: line["status"].as_u64().unwrap() as u16,
        headers: line["headers"].clone(),
        body: line["body"].as_str().unwrap_or_default().to_string(),
        reply: line["reply"].clone(),
    }
}

/// Asserts a 200 answer whose reply the Python SDK decoded as a result CloudEvent of `ty`
/// from `source`, with a JSON object as data; returns the data.
fn assert_result(sent: &PySent, ty: &str, source: &str) -> Value {
    assert_eq!(sent.status, 200, "answer: {}", sent.body);
    let reply = &sent.reply;
    assert!(reply.is_object(), "the reply is not a CloudEvent: {sent:?}");
    assert_eq!(reply["type"], ty, "{sent:?}");
    assert_eq!(reply["source"], source, "{sent:?}");
    assert_eq!(reply["specversion"], "1.0", "{sent:?}");
    assert!(
        reply["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{sent:?}"
    );
    assert_eq!(reply["datacontenttype"], "application/json", "{sent:?}");
    assert!(
        reply["data"].is_object(),
        "reply data is not a JSON object: {sent:?}"
    );
    reply["data"].clone()
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer: this status, a JSON body with a non-empty `error`; returns it.
    fn assert_error(&self, status: StatusCode, what: &str) -> Value {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        assert!(
            self.headers
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
            "{what}: content type {:?}",
            self.headers.get("content-type")
        );
        let body = self.json();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: no error message in {body}"
        );
        body
    }
}

async fn request(
    client: &HttpClient,
    method: Method,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("no answer to {path} within 30 s"))
        .unwrap_or_else(|e| panic!("request to {path}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("answer body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn post(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    request(client, Method::POST, addr, path, headers, body).await
}

/// Posts a valid binary-mode event with JSON data.
async fn post_binary(client: &HttpClient, addr: SocketAddr, path: &str, id: &str) -> Reply {
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-type", "com.example.test"),
        ("ce-source", "/tests/targets"),
        ("content-type", "application/json"),
    ];
    post(
        client,
        addr,
        path,
        &headers,
        json!({ "id": id }).to_string(),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Reading back from moto

/// Receives until `n` distinct messages were seen (each kept in flight for 5 minutes), with
/// their message attributes and system attributes.
async fn receive(
    aws: &Aws,
    queue_url: &str,
    n: usize,
    timeout: Duration,
) -> Vec<aws_sdk_sqs::types::Message> {
    let deadline = Instant::now() + timeout;
    let mut seen: HashMap<String, aws_sdk_sqs::types::Message> = HashMap::new();
    while seen.len() < n {
        assert!(
            Instant::now() < deadline,
            "received {} of {n} messages within {timeout:?}",
            seen.len()
        );
        let output = aws
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(300)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive message");
        for message in output.messages.unwrap_or_default() {
            seen.insert(message.message_id.clone().unwrap(), message);
        }
    }
    seen.into_values().collect()
}

fn body_json(message: &aws_sdk_sqs::types::Message) -> Value {
    let body = message.body.as_deref().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("message body is not JSON ({e}): {body}"))
}

/// The `data` of a structured event whose `datacontenttype` is JSON: the JSON event format
/// (§3.1) requires it as a JSON value in `data`, never as `data_base64`.
fn structured_data(event: &Value) -> &Value {
    assert!(
        event.get("data_base64").is_none(),
        "JSON data must be stored as a JSON value in `data`, not `data_base64`: {event}"
    );
    &event["data"]
}

fn string_attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    message
        .message_attributes
        .as_ref()?
        .get(name)?
        .string_value
        .clone()
}

/// Polls until the queue reports `expected` visible messages.
async fn wait_visible(aws: &Aws, queue_url: &str, expected: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let (visible, in_flight) = aws.queue_depth(queue_url).await;
        if visible == expected {
            return;
        }
        assert!(
            visible < expected && Instant::now() < deadline,
            "queue holds {visible} visible, {in_flight} in flight; expected {expected} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Object {
    body: Bytes,
    content_type: Option<String>,
    metadata: HashMap<String, String>,
    etag: Option<String>,
}

async fn get_object(aws: &Aws, bucket: &str, key: &str) -> Object {
    let output = aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e:?}"));
    Object {
        content_type: output.content_type.clone(),
        metadata: output.metadata.clone().unwrap_or_default(),
        etag: output.e_tag.clone(),
        body: output.body.collect().await.unwrap().into_bytes(),
    }
}

async fn list_keys(aws: &Aws, bucket: &str) -> Vec<String> {
    let output = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    let keys: Vec<String> = output
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect();
    assert_eq!(output.key_count, Some(keys.len() as i32));
    keys
}

async fn create_bucket(aws: &Aws, bucket: &str) {
    aws.s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
}

// ---------------------------------------------------------------------------------------------
// SQS target

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
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let client = client.clone();
            let addr = adapter.http_addr;
            let id = format!("{run}-{i}");
            tokio::spawn(async move { post_binary(&client, addr, "/busy", &id).await })
        })
        .collect();
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

// ---------------------------------------------------------------------------------------------
// S3 target

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_target_writes_objects_from_the_python_sdk() {
    let aws = Aws::new().await;
    let bucket = unique("s3t");
    create_bucket(&aws, &bucket).await;
    let manifest = manifests(&[
        s3_target("archive", &bucket, ""),
        s3_target("raw", &bucket, "discardCloudEventContext: true"),
    ]);
    let adapter = Adapter::start(&manifest, &[]).await;
    let base = format!("http://{}", adapter.http_addr);
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let run = unique("s");

    // 1. A whole event (binary mode, subject with characters the binding percent-encodes).
    let key = "reports/2026/q1 été 100%.json";
    let sent = py_send(
        &format!("{base}/archive"),
        "binary",
        &[
            "--type",
            "com.example.report",
            "--source",
            "/reports",
            "--id",
            &format!("{run}-1"),
            "--subject",
            key,
            "--data",
            r#"{"total": 1}"#,
            "--extension",
            "tenant=acme",
        ],
    )
    .await;
    let data = assert_result(&sent, S3_RESULT, &bucket_arn);
    assert_eq!(data["bucket"], bucket.as_str());
    assert_eq!(data["key"], key, "the key is the decoded subject");
    assert!(data.get("versionId").is_some(), "{data}");
    let object = get_object(&aws, &bucket, key).await;
    assert_eq!(data["etag"].as_str(), object.etag.as_deref());
    assert_eq!(
        object.content_type.as_deref(),
        Some("application/cloudevents+json")
    );
    let event: Value = serde_json::from_slice(&object.body).expect("a structured event");
    assert_eq!(event["id"], format!("{run}-1"));
    assert_eq!(event["type"], "com.example.report");
    assert_eq!(event["source"], "/reports");
    assert_eq!(event["subject"], key);
    assert_eq!(event["tenant"], "acme");
    assert_eq!(structured_data(&event), &json!({"total": 1}));
    assert_eq!(
        object.metadata.get("ce-id").map(String::as_str),
        Some(format!("{run}-1").as_str()),
        "{:?}",
        object.metadata
    );
    assert_eq!(
        object.metadata.get("ce-type").map(String::as_str),
        Some("com.example.report")
    );
    assert_eq!(
        object.metadata.get("ce-source").map(String::as_str),
        Some("/reports")
    );
    assert_eq!(
        object.metadata.get("ce-specversion").map(String::as_str),
        Some("1.0")
    );
    assert_eq!(
        object.metadata.get("ce-tenant").map(String::as_str),
        Some("acme")
    );
    assert!(object.metadata.contains_key("ce-subject"));

    // 2. Type io.triggermesh.awss3.object.put (structured mode): the object is only data.
    let sent = py_send(
        &format!("{base}/archive"),
        "structured",
        &[
            "--type",
            "io.triggermesh.awss3.object.put",
            "--source",
            "/uploads",
            "--id",
            &format!("{run}-2"),
            "--subject",
            "uploads/data.json",
            "--data",
            r#"{"hello": "world"}"#,
        ],
    )
    .await;
    let data = assert_result(&sent, S3_RESULT, &bucket_arn);
    assert_eq!(data["key"], "uploads/data.json");
    let object = get_object(&aws, &bucket, "uploads/data.json").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&object.body).unwrap(),
        json!({"hello": "world"})
    );
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        object.metadata.get("ce-type").map(String::as_str),
        Some("io.triggermesh.awss3.object.put")
    );
    assert_eq!(
        object.metadata.get("ce-id").map(String::as_str),
        Some(format!("{run}-2").as_str())
    );

    // 3. discardCloudEventContext: only data, whatever the type.
    let sent = py_send(
        &format!("{base}/raw"),
        "binary",
        &[
            "--type",
            "com.example.raw",
            "--source",
            "/raw",
            "--id",
            &format!("{run}-3"),
            "--subject",
            "raw/r.json",
            "--data",
            r#"{"raw": true}"#,
        ],
    )
    .await;
    assert_result(&sent, S3_RESULT, &bucket_arn);
    let object = get_object(&aws, &bucket, "raw/r.json").await;
    assert_eq!(
        serde_json::from_slice::<Value>(&object.body).unwrap(),
        json!({"raw": true})
    );
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        object.metadata.get("ce-source").map(String::as_str),
        Some("/raw")
    );

    // 4. No subject: the same event twice (once per mode) lands on one deterministic key;
    // another event gets another key.
    let no_subject = |id: String| {
        [
            "--type".to_string(),
            "com.example.nosubject".to_string(),
            "--source".to_string(),
            "/nosubject".to_string(),
            "--id".to_string(),
            id,
            "--data".to_string(),
            r#"{"n": 1}"#.to_string(),
        ]
    };
    let mut keys = Vec::new();
    for (mode, id) in [
        ("binary", format!("{run}-4")),
        ("structured", format!("{run}-4")),
        ("binary", format!("{run}-5")),
    ] {
        let args = no_subject(id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sent = py_send(&format!("{base}/archive"), mode, &args).await;
        let data = assert_result(&sent, S3_RESULT, &bucket_arn);
        let key = data["key"].as_str().expect("key").to_string();
        assert!(!key.is_empty());
        keys.push(key);
    }
    assert_eq!(keys[0], keys[1], "the same event, the same key");
    assert_ne!(keys[0], keys[2], "another event, another key");
    let listed = list_keys(&aws, &bucket).await;
    assert_eq!(
        listed.len(),
        5,
        "three objects with subjects and two without: {listed:?}"
    );
    assert_eq!(listed.iter().filter(|k| **k == keys[0]).count(), 1);
    let object = get_object(&aws, &bucket, &keys[0]).await;
    let event: Value = serde_json::from_slice(&object.body).unwrap();
    assert_eq!(event["id"], format!("{run}-4"));

    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_target_events_total",
            "outcome=\"written\""
        ),
        6.0
    );
}

// ---------------------------------------------------------------------------------------------
// Errors

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
    assert!(
        adapter
            .metric(
                "aws_event_adapter_aws_errors_total",
                "name=\"ghost-bucket\""
            )
            .await
            >= 2.0
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
