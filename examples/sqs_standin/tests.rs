//! Tests of the stand-in against the real AWS SDK for Rust (the one the adapter uses).

use super::*;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use std::time::{Duration, Instant};

async fn standin(extra: &[&str]) -> (SocketAddr, Arc<App>) {
    let mut argv = vec!["sqs_standin", "--addr", "127.0.0.1:0"];
    argv.extend_from_slice(extra);
    let (listener, app) = start(&Args::parse_from(argv)).await.unwrap();
    tokio::spawn(serve(listener, app.clone()));
    (app.bound, app)
}

fn client(addr: SocketAddr) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .build();
    Client::from_conf(config)
}

async fn http(addr: SocketAddr, method: Method, path: &str) -> (StatusCode, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn url(sqs: &Client, name: &str) -> String {
    sqs.get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id("123456789012")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// `SendMessage` of one body, which must succeed.
async fn send(
    sqs: &Client,
    url: &str,
    body: impl Into<String>,
) -> aws_sdk_sqs::operation::send_message::SendMessageOutput {
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn source_cycle_with_the_sdk() {
    let (addr, _app) = standin(&["--queue", "uploads", "--preload", "25"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "uploads").await;
    assert_eq!(url, format!("http://{addr}/123456789012/uploads"));

    let missing = sqs.get_queue_url().queue_name("nope").send().await;
    let error = missing.unwrap_err().into_service_error();
    assert!(error.is_queue_does_not_exist(), "{error:?}");

    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let attribute = |name: QueueAttributeName| attributes[&name].clone();
    assert_eq!(
        attribute(QueueAttributeName::ApproximateNumberOfMessages),
        "25"
    );
    assert_eq!(attribute(QueueAttributeName::MaximumMessageSize), "262144");
    assert_eq!(
        attribute(QueueAttributeName::QueueArn),
        "arn:aws:sqs:us-east-1:123456789012:uploads"
    );

    let mut deleted = 0;
    let mut handles = Vec::new();
    while deleted < 25 {
        let messages = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        assert!(!messages.is_empty() && messages.len() <= 10);
        let mut entries = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let body = message.body().unwrap();
            assert!(body.starts_with("{\"Records\":["));
            assert_eq!(
                message.md5_of_body().unwrap(),
                protocol::md5_hex(body.as_bytes())
            );
            let system = message.attributes().unwrap();
            assert_eq!(
                system[&MessageSystemAttributeName::ApproximateReceiveCount],
                "1"
            );
            assert!(
                system[&MessageSystemAttributeName::SentTimestamp]
                    .parse::<u64>()
                    .unwrap()
                    > 1_600_000_000_000
            );
            let handle = message.receipt_handle().unwrap().to_string();
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&handle)
                    .build()
                    .unwrap(),
            );
            handles.push(handle);
        }
        let output = sqs
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(output.failed.is_empty());
        deleted += output.successful.len();
    }
    // Deleted handles are no longer valid; the batch reports each entry.
    let output = sqs
        .delete_message_batch()
        .queue_url(&url)
        .entries(
            DeleteMessageBatchRequestEntry::builder()
                .id("again")
                .receipt_handle(&handles[0])
                .build()
                .unwrap(),
        )
        .entries(
            DeleteMessageBatchRequestEntry::builder()
                .id("bogus")
                .receipt_handle("not-a-receipt")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(output.failed.len(), 2);
    assert!(
        output
            .failed
            .iter()
            .all(|f| f.code == "ReceiptHandleIsInvalid" && f.sender_fault)
    );
    let single = sqs
        .delete_message()
        .queue_url(&url)
        .receipt_handle(&handles[1])
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(single.is_receipt_handle_is_invalid(), "{single:?}");

    let (status, stats) = http(addr, Method::GET, "/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["deleted"], 25);
    assert_eq!(stats["visible"], 0);
    assert_eq!(stats["in_flight"], 0);
    assert_eq!(stats["preloaded"], 25);
    assert_eq!(stats["invalid_receipts"], 3);
    assert_eq!(stats["requests"]["GetQueueUrl"], 2);
    assert_eq!(stats["requests"]["DeleteMessage"], 1);
    assert_eq!(stats["requests"]["ReceiveMessage"], 3);

    let (status, preloaded) = http(addr, Method::POST, "/preload?n=7&records=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(preloaded["visible"], 7);
    let message = &sqs
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap()[0];
    let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(body["Records"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn visibility_and_long_polling() {
    let (addr, _app) = standin(&["--queue", "q", "--queue", "other"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "q").await;
    send(&sqs, &url, "one").await;

    // Received with a 1 s visibility timeout: hidden, then back with a count of 2 and a
    // new receipt handle; the first handle is then stale.
    let receive = |visibility: i32| {
        sqs.receive_message()
            .queue_url(&url)
            .visibility_timeout(visibility)
            .wait_time_seconds(5)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
    };
    let first = receive(1).await.unwrap().messages.unwrap().remove(0);
    let started = Instant::now();
    let second = receive(30).await.unwrap().messages.unwrap().remove(0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(first.message_id, second.message_id);
    assert_ne!(first.receipt_handle, second.receipt_handle);
    let count =
        &second.attributes.as_ref().unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount];
    assert_eq!(count, "2");
    let stale = sqs
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(first.receipt_handle.unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(stale.is_receipt_handle_is_invalid(), "{stale:?}");

    // A visibility change to 0 wakes a waiting long poll at once.
    let waiting = tokio::spawn({
        let sqs = sqs.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .wait_time_seconds(10)
                .send()
                .await
                .unwrap();
            (started.elapsed(), got.messages.unwrap_or_default().len())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let output = sqs
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id("a")
                .receipt_handle(second.receipt_handle.unwrap())
                .visibility_timeout(0)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(output.successful.len(), 1);
    let (waited, got) = waiting.await.unwrap();
    assert_eq!(got, 1);
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // An empty queue: the long poll waits its whole time and returns nothing.
    let other = url.replace("/q", "/other");
    let started = Instant::now();
    let empty = sqs
        .receive_message()
        .queue_url(&other)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(empty.messages.unwrap_or_default().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(950));

    let too_many = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(11)
        .send()
        .await;
    let error = too_many.unwrap_err().into_service_error();
    assert_eq!(
        aws_sdk_sqs::error::ProvideErrorMetadata::code(&error),
        Some("InvalidParameterValue")
    );
}

#[tokio::test]
async fn send_batch_like_the_sqs_target() {
    let (addr, app) = standin(&["--queue", "orders", "--queue", "pay.fifo"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "orders").await;
    let attribute = MessageAttributeValue::builder()
        .data_type("String")
        .string_value("com.example.created")
        .build()
        .unwrap();
    let entries: Vec<_> = (0..10)
        .map(|i| {
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(format!("hello {i}"))
                .message_attributes("ce_type", attribute.clone())
                .build()
                .unwrap()
        })
        .collect();
    let output = sqs
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    assert!(output.failed.is_empty());
    assert_eq!(output.successful.len(), 10);
    for ok in &output.successful {
        let i: usize = ok.id.parse().unwrap();
        assert_eq!(
            ok.md5_of_message_body,
            protocol::md5_hex(format!("hello {i}").as_bytes())
        );
        assert!(ok.md5_of_message_attributes.is_some());
    }
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(received.len(), 10);
    assert_eq!(
        received[0].message_attributes.as_ref().unwrap()["ce_type"].string_value(),
        Some("com.example.created")
    );
    assert_eq!(
        received[0].md5_of_message_attributes,
        output.successful[0].md5_of_message_attributes
    );

    // Batch-level errors.
    let too_many = sqs
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(
            (0..11)
                .map(|i| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body("x")
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        too_many.is_too_many_entries_in_batch_request(),
        "{too_many:?}"
    );
    let big = "x".repeat(200_000);
    let too_long = sqs
        .send_message_batch()
        .queue_url(&url)
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("a")
                .message_body(&big)
                .build()
                .unwrap(),
        )
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("b")
                .message_body(&big)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(too_long.is_batch_request_too_long(), "{too_long:?}");

    // FIFO: a group id is required; sequence numbers come back.
    let fifo = url.replace("/orders", "/pay.fifo");
    let output = sqs
        .send_message_batch()
        .queue_url(&fifo)
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("a")
                .message_body("x")
                .message_group_id("g")
                .message_deduplication_id("d")
                .build()
                .unwrap(),
        )
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("b")
                .message_body("y")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(output.successful.len(), 1);
    assert!(output.successful[0].sequence_number.is_some());
    assert_eq!(output.failed[0].id, "b");
    assert_eq!(output.failed[0].code, "MissingParameter");

    let stats = app.stats();
    assert_eq!(stats["sent"], 11);
    assert_eq!(stats["requests"]["SendMessageBatch"], 4);
    assert_eq!(stats["queues"]["orders"]["in_flight"], 10);
}

/// The STS client of the SDK, pointed at the stand-in.
fn sts_client(addr: SocketAddr) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new("base", "base", None, None, "test"))
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// How long after `since` the credentials expire: ~`--sts-expiry-secs` (truncated to the
/// second as STS does).
fn lifetime(expiration: std::time::SystemTime, since: std::time::SystemTime) -> Duration {
    expiration.duration_since(since).unwrap_or_default()
}

#[tokio::test]
async fn assume_role_with_the_sdk() {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    use aws_sdk_sts::operation::RequestId;
    let (addr, _app) = standin(&["--sts-expiry-secs", "3"]).await;
    let sts = sts_client(addr);
    let assume = |session: &'static str| {
        sts.assume_role()
            .role_arn("arn:aws:iam::210987654321:role/team/cross")
            .role_session_name(session)
            .external_id("ext")
            .duration_seconds(3600)
            .send()
    };
    let before = std::time::SystemTime::now();
    let first = assume("one").await.unwrap();
    let second = assume("two").await.unwrap();
    assert!(first.request_id().is_some());
    let (a, b) = (first.credentials.unwrap(), second.credentials.unwrap());
    for keys in [&a, &b] {
        assert!(keys.access_key_id.starts_with("ASIA"), "{keys:?}");
        assert!(!keys.secret_access_key.is_empty() && !keys.session_token.is_empty());
        let expiration = std::time::SystemTime::try_from(keys.expiration).unwrap();
        let left = lifetime(expiration, before);
        assert!(
            left >= Duration::from_secs(2) && left <= Duration::from_secs(4),
            "{left:?} (DurationSeconds 3600 is overridden)"
        );
    }
    assert_ne!(a.access_key_id, b.access_key_id);
    assert_ne!(a.secret_access_key, b.secret_access_key);
    assert_ne!(a.session_token, b.session_token);
    let user = second.assumed_role_user.unwrap();
    assert_eq!(user.arn, "arn:aws:sts::210987654321:assumed-role/cross/two");
    assert!(user.assumed_role_id.starts_with("AROA") && user.assumed_role_id.ends_with(":two"));

    // Errors in the query shape, decoded by the SDK.
    let missing = sts
        .assume_role()
        .role_session_name("three")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.raw_response().unwrap().status().as_u16(), 400);
    let missing = missing.into_service_error();
    assert_eq!(missing.code(), Some("MissingParameter"), "{missing:?}");
    assert!(missing.message().unwrap().contains("RoleArn"));
    let unknown = sts
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(unknown.code(), Some("InvalidAction"), "{unknown:?}");

    // Counted apart: SQS requests stay SQS-only.
    let (status, stats) = http(addr, Method::GET, "/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["assume_role"], 3);
    assert_eq!(stats["requests_total"], 0);
    assert!(stats["requests"].get("AssumeRole").is_none());
}

#[tokio::test]
async fn assume_role_provider_of_aws_config() {
    use aws_credential_types::provider::ProvideCredentials;
    let (addr, app) = standin(&["--sts-expiry-secs", "3", "--queue", "q"]).await;
    // As the adapter builds it (src/aws/credentials): an SdkConfig with the endpoint, the
    // base keys as the provider of the AssumeRole calls.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .load()
        .await;
    let provider =
        aws_config::sts::AssumeRoleProvider::builder("arn:aws:iam::123456789012:role/bench")
            .session_name("aws-event-adapter.bench")
            .external_id("ext")
            .session_length(Duration::from_secs(900))
            .region(Region::new("us-east-1"))
            .configure(&config)
            .build_from_provider(Credentials::new("base", "base", None, None, "test"))
            .await;
    let before = std::time::SystemTime::now();
    let first = provider.provide_credentials().await.unwrap();
    let second = provider.provide_credentials().await.unwrap();
    assert_ne!(first.access_key_id(), second.access_key_id());
    assert_ne!(first.session_token(), second.session_token());
    assert!(first.access_key_id().starts_with("ASIA"));
    let left = lifetime(first.expiry().unwrap(), before);
    assert!(
        left >= Duration::from_secs(2) && left <= Duration::from_secs(4),
        "{left:?}"
    );

    // The assumed keys work for SQS against the stand-in; only the SQS call is an SQS
    // request.
    let sqs = Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(second)
            .build(),
    );
    url(&sqs, "q").await;
    let (_, stats) = http(addr, Method::GET, "/stats").await;
    assert_eq!(stats["assume_role"], 2);
    assert_eq!(stats["requests_total"], 1);
    assert_eq!(app.stats()["assume_role"], 2);
}

#[tokio::test]
async fn discard_sent_keeps_nothing() {
    let (addr, app) = standin(&["--queue", "q", "--discard-sent", "--preload", "3"]).await;
    let sqs = client(addr);
    let url = url(&sqs, "q").await;
    let sent = send(&sqs, &url, "hello").await;
    assert_eq!(
        sent.md5_of_message_body(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    assert!(sent.message_id().is_some());
    let stats = app.stats();
    assert_eq!(
        (stats["sent"].as_u64(), stats["visible"].as_u64()),
        (Some(1), Some(3))
    );
}

#[path = "tests/latency.rs"]
mod latency;
