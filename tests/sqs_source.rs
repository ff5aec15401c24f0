//! The SQS source (`AWSSQSSource`) end to end against moto: each `messageProcessor` on a queue
//! of its own, messages sent with the AWS SDK, events read at a recording sink, and
//! TriggerMesh's environment-variable mode.

mod common;

use std::time::Duration;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;
use cloudevents::{AttributesReader, Event};
use common::*;
use http::StatusCode;
use serde_json::Value;

const LONG: Duration = Duration::from_secs(60);

fn sqs_source(name: &str, queue_arn: &str, sink: &str, processor: &str) -> String {
    format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSSQSSource
metadata: {{ name: {name} }}
spec:
  arn: {queue_arn}
  messageProcessor: {processor}
  receiveOptions: {{ visibilityTimeout: 30s }}
  auth:
    credentials:
      accessKeyID: {{ value: testing }}
      secretAccessKey: {{ value: testing }}
  sink: {{ uri: "{sink}" }}
  receive: {{ waitTimeSeconds: 1 }}
"#
    )
}

fn text_attribute(data_type: &str, value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .unwrap()
}

fn extension(event: &Event, name: &str) -> Option<String> {
    event.extension(name).map(ToString::to_string)
}

/// The accepted event with this SQS message id, and the body the sink received for it.
fn event_for(sink: &TestSink, message_id: &str) -> (Event, Vec<u8>) {
    sink.accepted()
        .into_iter()
        .find(|(_, event)| event.id() == message_id)
        .map(|(received, event)| (event, received.body.to_vec()))
        .unwrap_or_else(|| panic!("no event for message {message_id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_processor_turns_messages_into_its_events() {
    let aws = Aws::new().await;
    let (plain_url, plain_arn) = aws.create_queue(&unique("sqs-default")).await;
    let (s3_url, s3_arn) = aws.create_queue(&unique("sqs-s3")).await;
    let (bridge_url, bridge_arn) = aws.create_queue(&unique("sqs-eb")).await;
    let bucket = unique("sqs-s3");
    aws.create_bucket_notifying(&bucket, &s3_arn, &["s3:ObjectCreated:*"])
        .await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = [
        sqs_source("plain", &plain_arn, &sink.uri(), "default"),
        sqs_source("objects", &s3_arn, &sink.uri(), "s3"),
        sqs_source("bridge", &bridge_arn, &sink.uri(), "eventbridge"),
    ]
    .join("---\n");
    let adapter = Adapter::start(&manifest, &[]).await;

    // default: a JSON body with String, Number and Binary attributes, and a text body.
    let json_body = r#"{"order": 7, "total": 12345678901234567890123}"#;
    let with_attributes = aws
        .sqs
        .send_message()
        .queue_url(&plain_url)
        .message_body(json_body)
        .message_attributes("Customer-ID", text_attribute("String", "c 42"))
        .message_attributes("Total.Cents", text_attribute("Number", "1250"))
        .message_attributes(
            "Thumb",
            MessageAttributeValue::builder()
                .data_type("Binary")
                .binary_value(Blob::new(b"\x00\x01".to_vec()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    let text_id = aws.send(&plain_url, "just some text").await;
    // s3: a real bucket notification, and a body that is none.
    aws.put_object(&bucket, "reports/q1.csv", b"a,b").await;
    let not_s3 = aws.send(&s3_url, r#"{"hello": "world"}"#).await;
    // eventbridge: an EventBridge event, and a body that is none.
    let bridge_body = r#"{"version":"0","id":"eb-1","detail-type":"Order Placed","source":"com.shop","account":"123456789012","time":"2026-12-01T10:00:00Z","region":"us-east-1","resources":[],"detail":{"order":7}}"#;
    aws.send(&bridge_url, bridge_body).await;
    let not_bridge = aws.send(&bridge_url, "plain").await;

    // The S3 test event of the notification setup, the put, and the five sent messages.
    sink.wait_accepted(7, LONG).await;

    let (event, body) = event_for(&sink, &with_attributes);
    assert_eq!(event.ty(), "com.amazon.sqs.message");
    assert_eq!(event.source().to_string(), plain_arn);
    assert_eq!(event.datacontenttype(), Some("application/json"));
    assert_eq!(
        extension(&event, "sqsmsgcustomerid").as_deref(),
        Some("c 42")
    );
    assert_eq!(
        extension(&event, "sqsmsgtotalcents").as_deref(),
        Some("1250")
    );
    assert_eq!(
        extension(&event, "sqsmsgthumb"),
        None,
        "binary attributes are no extension"
    );
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(&format!("\"Body\":{json_body}")),
        "the JSON body is embedded as it was sent: {text}"
    );
    let data: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data["MessageId"], with_attributes.as_str());
    assert!(
        data["ReceiptHandle"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(data["MD5OfBody"].as_str().is_some());
    assert!(data["Attributes"]["SentTimestamp"].as_str().is_some());
    assert_eq!(data["MessageAttributes"]["Thumb"]["DataType"], "Binary");
    assert_eq!(data["MessageAttributes"]["Thumb"]["BinaryValue"], "AAE=");
    let (_, body) = event_for(&sink, &text_id);
    let data: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(data["Body"], "just some text");

    let accepted = sink.accepted();
    let put = accepted
        .iter()
        .find(|(_, e)| e.ty() == "com.amazon.s3.objectcreated")
        .expect("the put as an S3 event");
    assert_eq!(put.1.subject(), Some("reports/q1.csv"));
    assert!(
        accepted
            .iter()
            .any(|(_, e)| e.ty() == "com.amazon.s3.testevent"),
        "the s3 processor forwards the test event"
    );
    assert_eq!(event_for(&sink, &not_s3).0.ty(), "com.amazon.sqs.message");

    let bridge = accepted
        .iter()
        .find(|(_, e)| e.ty() == "com.amazon.events.event")
        .map(|(_, e)| e.clone())
        .expect("the EventBridge event");
    assert_eq!(bridge.id(), "eb-1");
    assert_eq!(bridge.source().to_string(), bridge_arn);
    assert_eq!(
        extension(&bridge, "awseventssource").as_deref(),
        Some("com.shop")
    );
    assert_eq!(
        extension(&bridge, "awseventsdetailtype").as_deref(),
        Some("Order Placed")
    );
    assert_eq!(
        event_for(&sink, &not_bridge).0.ty(),
        "com.amazon.sqs.message"
    );

    // Every message was deleted once its event was accepted.
    for url in [&plain_url, &s3_url, &bridge_url] {
        aws.wait_queue_empty(url, LONG).await;
    }
    assert!(
        adapter
            .metric(
                "aws_event_adapter_sqs_messages_deleted_total",
                "component=\"awssqssource\""
            )
            .await
            >= 7.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggermesh_variables_run_the_sqs_source() {
    let aws = Aws::new().await;
    let (url, arn) = aws.create_queue(&unique("tm-sqs")).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let sink_uri = sink.uri();
    let env = [
        ("K_COMPONENT", "awssqssource"),
        ("ARN", arn.as_str()),
        ("K_SINK", sink_uri.as_str()),
        ("NAME", "orders"),
        ("SQS_VISIBILITY_TIMEOUT", "30s"),
        ("CE_TYPE", "com.example.order"),
    ];
    let adapter = Adapter::spawn_with_env("", &[], &env);
    adapter.wait_ready(LONG).await;
    let id = aws.send(&url, r#"{"order": 1}"#).await;
    let accepted = sink.wait_accepted(1, LONG).await;
    assert_eq!(accepted[0].1.id(), id);
    assert_eq!(accepted[0].1.ty(), "com.example.order");
    assert_eq!(accepted[0].1.source().to_string(), arn);
    aws.wait_queue_empty(&url, LONG).await;
}

/// The group and sequence number of an event made from a `{"group": .., "seq": ..}` body.
fn group_and_seq(event: &Event) -> (String, u64) {
    let data: Value = match event.data() {
        Some(cloudevents::Data::Json(value)) => value.clone(),
        other => panic!("no JSON data: {other:?}"),
    };
    let body = &data["Body"];
    (
        body["group"].as_str().unwrap().to_string(),
        body["seq"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_are_delivered_in_order_and_a_failure_holds_back_only_its_group() {
    let aws = Aws::new().await;
    let queue = format!("{}.fifo", unique("fifo"));
    let url = aws
        .sqs
        .create_queue()
        .queue_name(&queue)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = format!("arn:aws:sqs:{REGION}:{}:{queue}", account());
    // A slow sink that refuses B's seq 5 the first two times.
    let refusals = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sink = TestSink::start({
        let refusals = refusals.clone();
        std::sync::Arc::new(move |_, event: &Event| {
            let delay = Duration::from_millis(40);
            if group_and_seq(event) == ("B".to_string(), 5)
                && refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
            {
                return (StatusCode::SERVICE_UNAVAILABLE, delay);
            }
            (StatusCode::OK, delay)
        })
    })
    .await;
    let manifest = sqs_source("orders", &arn, &sink.uri(), "default").replace(
        "  receive: { waitTimeSeconds: 1 }\n",
        "  receive: { waitTimeSeconds: 1, redeliveryDelay: 1s }\n  delivery: { retry: 0 }\n",
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    for seq in 0..20u64 {
        for group in ["A", "B", "C"] {
            aws.sqs
                .send_message()
                .queue_url(&url)
                .message_body(format!(r#"{{"group":"{group}","seq":{seq}}}"#))
                .message_group_id(group)
                .message_deduplication_id(format!("{group}-{seq}"))
                .send()
                .await
                .unwrap();
        }
    }
    sink.wait_accepted(60, LONG).await;
    aws.wait_queue_empty(&url, LONG).await;

    let accepted: Vec<(String, u64)> = sink
        .accepted()
        .iter()
        .map(|(_, event)| group_and_seq(event))
        .collect();
    for group in ["A", "B", "C"] {
        let order: Vec<u64> = accepted
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, seq)| *seq)
            .collect();
        assert_eq!(
            order,
            (0..20).collect::<Vec<_>>(),
            "group {group} in send order, once each"
        );
    }
    assert_eq!(
        refusals.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "B-5 refused twice"
    );
    // While B waited for its two redeliveries (between B-4 and B-5), A and C went on.
    let position = |wanted: (&str, u64)| {
        accepted
            .iter()
            .position(|(g, s)| (g.as_str(), *s) == wanted)
            .unwrap()
    };
    let stuck = &accepted[position(("B", 4))..position(("B", 5))];
    for group in ["A", "C"] {
        let went_on = stuck.iter().filter(|(g, _)| g == group).count();
        assert!(
            went_on >= 3,
            "{group} delivered {went_on} events while B was held back: {accepted:?}"
        );
    }
    assert!(
        adapter
            .metric(
                "aws_event_adapter_sqs_messages_released_total",
                "reason=\"delivery_failed\""
            )
            .await
            >= 2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_ref_outside_a_cluster_leaves_the_source_unready_naming_the_ref() {
    let aws = Aws::new().await;
    let (_, arn) = aws.create_queue(&unique("sqs-noref")).await;
    let manifest = sqs_source("orders", &arn, "http://unused/", "default").replace(
        "  sink: { uri: \"http://unused/\" }\n",
        "  sink: { ref: { apiVersion: eventing.knative.dev/v1, kind: Broker, name: default, namespace: shop } }\n",
    );
    let adapter = Adapter::spawn(&manifest, &[]);
    wait_until(LONG, "the lookup error", || {
        adapter.log().contains("cannot resolve the sink's ref")
    })
    .await;
    let log = adapter.log();
    assert!(
        log.contains("Broker shop/default (eventing.knative.dev/v1): not in a Kubernetes pod"),
        "log:\n{log}"
    );
    let (status, body) = http_get(adapter.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"orders\":false"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_continue_the_trace_of_their_message() {
    use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};
    let aws = Aws::new().await;
    let (url, arn) = aws.create_queue(&unique("sqs-trace")).await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let _adapter = Adapter::start(&sqs_source("traced", &arn, &sink.uri(), "default"), &[]).await;
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let traced = aws
        .sqs
        .send_message()
        .queue_url(&url)
        .message_body("traced")
        .message_system_attributes(
            MessageSystemAttributeNameForSends::AwsTraceHeader,
            MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(header)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap();
    let untraced = aws.send(&url, "untraced").await;
    sink.wait_accepted(2, LONG).await;
    let traceparent = |id: &str| {
        let (received, event) = sink
            .accepted()
            .into_iter()
            .find(|(_, e)| e.id() == id)
            .expect("the event");
        let header = received.headers["traceparent"]
            .to_str()
            .unwrap()
            .to_string();
        let extension = extension(&event, "traceparent").expect("the traceparent extension");
        assert_eq!(header, extension, "W3C's header and the extension agree");
        header
    };
    let continued = traceparent(&traced);
    assert!(
        continued.starts_with("00-5759e988bd862e3fe1be46a994272793-")
            && continued.ends_with("-01")
            && !continued.contains("53995c3f42cd8ad8"),
        "the message's trace, one hop on: {continued}"
    );
    let started = traceparent(&untraced);
    let parts: Vec<&str> = started.split('-').collect();
    assert_eq!(parts.len(), 4, "{started}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len()),
        ("00", 32, 16),
        "{started}"
    );
}
