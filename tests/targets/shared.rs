//! What the target tests share: the targets' manifests, the CloudEvents Python SDK and a plain
//! HTTP client to post events, and reading back from moto what the targets wrote.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::common::*;

pub const LONG: Duration = Duration::from_secs(60);
pub const SQS_RESULT: &str = "io.triggermesh.targets.aws.sqs.result";
pub const S3_RESULT: &str = "io.triggermesh.targets.aws.s3.result";
pub const SEND_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/send_cloudevent.py"
);

// ---------------------------------------------------------------------------------------------
// Manifests

pub const AUTH: &str = "  auth:
    credentials:
      accessKeyID: { value: testing }
      secretAccessKey: { value: testing }
";

pub fn queue_arn(queue: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{}:{queue}", account())
}

/// An AWSSQSTarget; `extra` lines go under `spec:` (indented by two spaces).
pub fn sqs_target(name: &str, queue: &str, extra: &str) -> String {
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
pub fn s3_target(name: &str, bucket: &str, extra: &str) -> String {
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

pub fn manifests(documents: &[String]) -> String {
    documents.join("---\n")
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What `send_cloudevent.py` printed: the HTTP answer and the reply decoded by the Python SDK.
#[derive(Debug)]
pub struct PySent {
    pub status: u16,
    pub headers: Value,
    pub body: String,
    /// The reply's attributes and `data`, as the SDK's `from_http` read them (200 only).
    pub reply: Value,
}

/// Posts one event with the official CloudEvents Python SDK (`mode`: binary or structured).
/// `args` are further arguments of the script: `--type`, `--source`, `--id`, `--subject`,
/// `--data`, `--datacontenttype`, `--extension`.
pub async fn py_send(url: &str, mode: &str, args: &[&str]) -> PySent {
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
pub fn assert_result(sent: &PySent, ty: &str, source: &str) -> Value {
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

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer: this status, a JSON body with a non-empty `error`; returns it.
    pub fn assert_error(&self, status: StatusCode, what: &str) -> Value {
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

pub async fn request(
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

pub async fn post(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    request(client, Method::POST, addr, path, headers, body).await
}

/// Posts a valid binary-mode event with JSON data.
pub async fn post_binary(client: &HttpClient, addr: SocketAddr, path: &str, id: &str) -> Reply {
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

/// Posts `n` binary events to `path` at once, with ids `<run>-0`, `<run>-1`, …; the answers
/// come back through the handles, in the same order.
pub fn spawn_binary_posts(
    client: &HttpClient,
    addr: SocketAddr,
    path: &'static str,
    run: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Reply>> {
    (0..n)
        .map(|i| {
            let (client, id) = (client.clone(), format!("{run}-{i}"));
            tokio::spawn(async move { post_binary(&client, addr, path, &id).await })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading back from moto

/// Receives until `n` distinct messages were seen (each kept in flight for 5 minutes), with
/// their message attributes and system attributes.
pub async fn receive(
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

pub fn body_json(message: &aws_sdk_sqs::types::Message) -> Value {
    let body = message.body.as_deref().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("message body is not JSON ({e}): {body}"))
}

/// The `data` of a structured event whose `datacontenttype` is JSON: the JSON event format
/// (§3.1) requires it as a JSON value in `data`, never as `data_base64`.
pub fn structured_data(event: &Value) -> &Value {
    assert!(
        event.get("data_base64").is_none(),
        "JSON data must be stored as a JSON value in `data`, not `data_base64`: {event}"
    );
    &event["data"]
}

pub fn string_attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    message
        .message_attributes
        .as_ref()?
        .get(name)?
        .string_value
        .clone()
}

/// Polls until the queue reports `expected` visible messages.
pub async fn wait_visible(aws: &Aws, queue_url: &str, expected: u64, timeout: Duration) {
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

pub struct Object {
    pub body: Bytes,
    pub content_type: Option<String>,
    pub metadata: HashMap<String, String>,
    pub etag: Option<String>,
}

pub async fn get_object(aws: &Aws, bucket: &str, key: &str) -> Object {
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

pub async fn list_keys(aws: &Aws, bucket: &str) -> Vec<String> {
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

pub async fn create_bucket(aws: &Aws, bucket: &str) {
    aws.s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("create bucket");
}
