//! The S3 source end to end against the AWS emulator: real bucket notifications into a real
//! queue, the adapter binary as a child process, and a recording sink.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cloudevents::{AttributesReader, Data, Event};
use common::*;
use http::StatusCode;

const LONG: Duration = Duration::from_secs(60);

fn data_json(event: &Event) -> serde_json::Value {
    match event.data() {
        Some(Data::Json(value)) => value.clone(),
        Some(Data::Binary(bytes)) => serde_json::from_slice(bytes).expect("data is JSON"),
        Some(Data::String(text)) => serde_json::from_str(text).expect("data is JSON"),
        None => panic!("event without data: {event}"),
    }
}

/// A bucket notifying a fresh queue, the adapter consuming it, and a sink.
struct Setup {
    aws: Aws,
    bucket: String,
    queue_url: String,
    sink: TestSink,
    adapter: Adapter,
}

async fn setup(event_types: &str, notify: &[&str]) -> Setup {
    let aws = Aws::new().await;
    let bucket = unique("src");
    let (queue_url, queue_arn) = aws.create_queue(&bucket).await;
    aws.create_bucket_notifying(&bucket, &queue_arn, notify)
        .await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = source_manifest(
        "uploads",
        &bucket,
        &queue_arn,
        &sink.uri(),
        &format!("eventTypes: {event_types}\nreceive: {{ waitTimeSeconds: 1 }}"),
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    Setup {
        aws,
        bucket,
        queue_url,
        sink,
        adapter,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_arrive_once_with_the_original_key() {
    let s = setup(
        r#"["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]"#,
        &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    )
    .await;
    let keys = [
        "plain.txt",
        "dir/sub dir/with space.txt",
        "a+b=c.txt",
        "100% done.txt",
        "été/naïve café.jpg",
        "emoji 😀 party.png",
    ];
    for key in keys {
        s.aws.put_object(&s.bucket, key, b"hello").await;
    }
    let accepted = s.sink.wait_accepted(keys.len(), LONG).await;
    let mut by_subject: HashMap<String, Vec<Event>> = HashMap::new();
    for (_, event) in &accepted {
        by_subject
            .entry(event.subject().unwrap_or_default().to_string())
            .or_default()
            .push(event.clone());
    }
    for key in keys {
        let events = by_subject.get(key).unwrap_or_else(|| {
            panic!(
                "no event with subject {key:?}; subjects: {:?}",
                by_subject.keys()
            )
        });
        assert_eq!(events.len(), 1, "{key:?} delivered {} times", events.len());
        let event = &events[0];
        assert_eq!(event.ty(), "com.amazon.s3.objectcreated");
        assert_eq!(event.source(), &format!("arn:aws:s3:::{}", s.bucket));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        let record = data_json(event);
        assert_eq!(record["s3"]["bucket"]["name"], s.bucket.as_str());
        let event_time: chrono::DateTime<chrono::Utc> =
            record["eventTime"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            event.time(),
            Some(&event_time),
            "time is the record's eventTime"
        );
    }
    // The key travels percent-encoded in the ce-subject header, as the HTTP binding requires.
    let (raw, _) = accepted
        .iter()
        .find(|(_, e)| e.subject() == Some("100% done.txt"))
        .unwrap();
    assert_eq!(raw.headers["ce-subject"], "100%25%20done.txt");

    s.aws
        .s3
        .delete_object()
        .bucket(&s.bucket)
        .key("plain.txt")
        .send()
        .await
        .unwrap();
    let accepted = s.sink.wait_accepted(keys.len() + 1, LONG).await;
    let removed: Vec<_> = accepted
        .iter()
        .filter(|(_, e)| e.ty() == "com.amazon.s3.objectremoved")
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].1.subject(), Some("plain.txt"));

    s.aws.wait_queue_empty(&s.queue_url, LONG).await;
    // The s3:TestEvent sent when the notification was configured was counted, not forwarded.
    s.adapter
        .wait_metric(
            "aws_event_adapter_source_test_events_total",
            "action=\"dropped\"",
            1.0,
            LONG,
        )
        .await;
    assert!(
        s.sink
            .accepted()
            .iter()
            .all(|(_, e)| e.ty() != "com.amazon.s3.testevent"),
        "the test event must not be forwarded"
    );
    assert_eq!(
        s.sink.accepted().len(),
        keys.len() + 1,
        "nothing delivered twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_outside_event_types_are_dropped_and_their_messages_deleted() {
    let s = setup(
        r#"["s3:ObjectCreated:*"]"#,
        &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
    )
    .await;
    s.aws.put_object(&s.bucket, "kept.txt", b"x").await;
    s.sink.wait_accepted(1, LONG).await;
    s.aws
        .s3
        .delete_object()
        .bucket(&s.bucket)
        .key("kept.txt")
        .send()
        .await
        .unwrap();
    s.adapter
        .wait_metric(
            "aws_event_adapter_source_records_filtered_total",
            "",
            1.0,
            LONG,
        )
        .await;
    s.aws.wait_queue_empty(&s.queue_url, LONG).await;
    let accepted = s.sink.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].1.ty(), "com.amazon.s3.objectcreated");
}

/// A queue without a bucket, fed raw bodies.
struct RawQueue {
    aws: Aws,
    queue_url: String,
    queue_arn: String,
}

async fn raw_queue() -> RawQueue {
    let aws = Aws::new().await;
    let (queue_url, queue_arn) = aws.create_queue(&unique("raw")).await;
    RawQueue {
        aws,
        queue_url,
        queue_arn,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_samples_give_the_documented_results() {
    let q = raw_queue().await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let dead_letters = TestSink::start(always(StatusCode::OK)).await;
    let manifest = source_manifest(
        "samples",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        &format!(
            "delivery: {{ deadLetterSink: {{ uri: {} }} }}\nreceive: {{ waitTimeSeconds: 1 }}",
            dead_letters.uri()
        ),
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    let mut ids = HashMap::new();
    for name in [
        "s3-records-put.json",
        "s3-records-multi.json",
        "s3-test-event.json",
        "sns-wrapped-s3-records.json",
        "eventbridge-object-created.json",
        "malformed-not-json.txt",
        "malformed-record-missing-bucket.json",
        "malformed-records-not-array.json",
    ] {
        ids.insert(name, q.aws.send(&q.queue_url, &sample(name)).await);
    }
    // put: 1, multi: 2, sns: 1, eventbridge: 1, not-json forwarded as an SQS message: 1.
    let accepted = sink.wait_accepted(6, LONG).await;
    let find = |subject: &str| -> Vec<Event> {
        accepted
            .iter()
            .filter(|(_, e)| e.subject() == Some(subject))
            .map(|(_, e)| e.clone())
            .collect()
    };
    // Plain and SNS-wrapped: the same record, so the same event (same id), key decoded.
    let put = find("photos/2026/red flower(1) été.jpg");
    assert_eq!(put.len(), 2, "plain and SNS-wrapped put");
    assert_eq!(put[0].id(), put[1].id());
    assert_eq!(put[0].source(), "arn:aws:s3:::media-uploads");
    assert_eq!(put[0].ty(), "com.amazon.s3.objectcreated");
    // Several records in one message: one event each.
    let created = find("2026/11/28/app.log.gz");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].source(), "arn:aws:s3:::logs.example.com");
    let removed = find("2026/11/27/old report.csv");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].ty(), "com.amazon.s3.objectremoved");
    // EventBridge keys are not encoded: taken as they are.
    let bridged = find("photos/raw key with spaces+plus%25.jpg");
    assert_eq!(bridged.len(), 1);
    assert_eq!(bridged[0].ty(), "com.amazon.s3.objectcreated");
    assert_eq!(bridged[0].id(), "17793124-05d4-b198-2fde-7ededc63b103");
    // Not JSON: forwarded as TriggerMesh did, as an SQS message.
    let raw: Vec<_> = accepted
        .iter()
        .filter(|(_, e)| e.ty() == "com.amazon.sqs.message")
        .collect();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].1.id(), ids["malformed-not-json.txt"]);
    assert_eq!(raw[0].1.source(), q.queue_arn.as_str());
    assert_eq!(&raw[0].0.body[..], b"this is not json");

    // The two broken S3 notifications went to the dead-letter sink, whole, with the reason.
    let letters = dead_letters.wait_accepted(2, LONG).await;
    let mut letter_ids: Vec<String> = letters.iter().map(|(_, e)| e.id().to_string()).collect();
    letter_ids.sort();
    let mut expected = vec![
        ids["malformed-record-missing-bucket.json"].clone(),
        ids["malformed-records-not-array.json"].clone(),
    ];
    expected.sort();
    assert_eq!(letter_ids, expected);
    for (_, letter) in &letters {
        assert_eq!(letter.ty(), "com.amazon.sqs.message");
        assert!(letter.extension("adaptererror").is_some(), "{letter}");
    }
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_source_malformed_total",
            "reason=\"invalid_record\""
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aws_event_adapter_source_malformed_total",
            "reason=\"records_not_array\""
        ),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, "aws_event_adapter_source_test_events_total", ""),
        1.0
    );
    assert_eq!(sink.accepted().len(), 6, "nothing else was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_notification_twice_gives_the_same_id_in_structured_mode() {
    let q = raw_queue().await;
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let manifest = source_manifest(
        "twice",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "eventEncoding: structured\nreceive: { waitTimeSeconds: 1 }",
    );
    let _adapter = Adapter::start(&manifest, &[]).await;
    let body = sample("s3-records-put.json");
    q.aws.send(&q.queue_url, &body).await;
    q.aws.send(&q.queue_url, &body).await;
    let accepted = sink.wait_accepted(2, LONG).await;
    assert_eq!(accepted[0].1.id(), accepted[1].1.id());
    let (request, event) = &accepted[0];
    assert_eq!(
        request.headers["content-type"],
        "application/cloudevents+json"
    );
    assert_eq!(event.subject(), Some("photos/2026/red flower(1) été.jpg"));
    let time: chrono::DateTime<chrono::Utc> = "2026-11-28T12:34:56.789Z".parse().unwrap();
    assert_eq!(event.time(), Some(&time));
    // The record is embedded exactly as S3 wrote it.
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(data_json(event), record["Records"][0]);
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failing_three_times_gets_the_event_and_the_message_is_deleted_once() {
    let q = raw_queue().await;
    let sink = TestSink::start(refusing_first(3)).await;
    let manifest = source_manifest(
        "flaky",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { retry: 5, backoffDelay: PT0.05S }\nreceive: { waitTimeSeconds: 1 }",
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    q.aws
        .send(&q.queue_url, &sample("s3-records-put.json"))
        .await;
    let accepted = sink.wait_accepted(1, LONG).await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(sink.attempts(), 4, "three 503s then one 200");
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_deleted_total",
            "",
            1.0,
            LONG,
        )
        .await;
    let metrics = adapter.metrics().await;
    assert_eq!(
        metric_value(&metrics, "aws_event_adapter_sqs_messages_deleted_total", ""),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, "aws_event_adapter_sink_retries_total", ""),
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_longer_than_the_retries_leaves_the_message_in_the_queue() {
    let q = raw_queue().await;
    let sink = TestSink::start(always(StatusCode::SERVICE_UNAVAILABLE)).await;
    let manifest = source_manifest(
        "down",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { retry: 2, backoffDelay: PT0.05S }\nreceive: { waitTimeSeconds: 1, redeliveryDelay: 1s }",
    );
    let mut adapter = Adapter::start(&manifest, &[]).await;
    let body = sample("s3-records-put.json");
    let message_id = q.aws.send(&q.queue_url, &body).await;
    adapter
        .wait_metric(
            "aws_event_adapter_sqs_messages_released_total",
            "reason=\"delivery_failed\"",
            1.0,
            LONG,
        )
        .await;
    assert!(sink.attempts() >= 3, "first attempt and two retries");
    adapter.signal("TERM");
    assert!(adapter.wait_exit(LONG).await.success());
    // The message is still there: visible again after the redelivery delay.
    let mut found = None;
    for _ in 0..20 {
        let out = q
            .aws
            .sqs
            .receive_message()
            .queue_url(&q.queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(message) = out.messages.unwrap_or_default().into_iter().next() {
            found = Some(message);
            break;
        }
    }
    let message = found.expect("the message is still in the queue");
    assert_eq!(message.message_id.as_deref(), Some(message_id.as_str()));
    assert_eq!(message.body.as_deref(), Some(body.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_retries_the_event_goes_to_the_dead_letter_sink() {
    let q = raw_queue().await;
    let sink = TestSink::start(always(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let dead_letters = TestSink::start(always(StatusCode::ACCEPTED)).await;
    let manifest = source_manifest(
        "dls",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        &format!(
            "delivery: {{ retry: 1, backoffDelay: PT0.05S, deadLetterSink: {{ uri: {} }} }}\nreceive: {{ waitTimeSeconds: 1 }}",
            dead_letters.uri()
        ),
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    q.aws
        .send(&q.queue_url, &sample("s3-records-put.json"))
        .await;
    let letters = dead_letters.wait_accepted(1, LONG).await;
    let letter = &letters[0].1;
    assert_eq!(letter.ty(), "com.amazon.s3.objectcreated");
    assert_eq!(letter.subject(), Some("photos/2026/red flower(1) été.jpg"));
    assert_eq!(
        letter
            .extension("knativeerrorcode")
            .map(ToString::to_string),
        Some("500".to_string())
    );
    assert_eq!(sink.attempts(), 2, "one attempt and one retry at the sink");
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
    adapter
        .wait_metric(
            "aws_event_adapter_sink_events_total",
            "outcome=\"dead_lettered\"",
            1.0,
            LONG,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_slower_than_the_visibility_timeout_causes_no_redelivery() {
    let q = raw_queue().await;
    let sink = TestSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_secs(5)))).await;
    let manifest = source_manifest(
        "slow",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { timeout: PT20S }\nreceive: { waitTimeSeconds: 1, visibilityTimeout: 2s }",
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    q.aws
        .send(&q.queue_url, &sample("s3-records-put.json"))
        .await;
    sink.wait_accepted(1, LONG).await;
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
    // Had the visibility run out, another poller would have received the message again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.attempts(), 1, "delivered exactly once");
    assert!(
        adapter
            .metric("aws_event_adapter_sqs_visibility_extensions_total", "")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_events_finish_and_exits_zero() {
    let q = raw_queue().await;
    let sink = TestSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_secs(3)))).await;
    let manifest = source_manifest(
        "drain",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "receive: { waitTimeSeconds: 1 }",
    );
    let mut adapter = Adapter::start(&manifest, &["--shutdown-grace", "20s"]).await;
    for name in [
        "s3-records-put.json",
        "s3-records-multi.json",
        "eventbridge-object-created.json",
    ] {
        q.aws.send(&q.queue_url, &sample(name)).await;
    }
    // Four events are at the sink, none answered yet.
    sink.wait_attempts(4, LONG).await;
    assert!(sink.accepted().is_empty());
    let signalled = tokio::time::Instant::now();
    adapter.signal("TERM");
    let status = adapter.wait_exit(LONG).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        adapter.log()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "exited within the grace period"
    );
    assert_eq!(sink.accepted().len(), 4, "in-flight events completed");
    q.aws
        .wait_queue_empty(&q.queue_url, Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_message_does_not_hold_back_the_others_of_its_batch() {
    let q = raw_queue().await;
    let sink = TestSink::start(Arc::new(|_, event: &Event| {
        let delay = if event.subject() == Some("slow.bin") {
            20
        } else {
            0
        };
        (StatusCode::OK, Duration::from_secs(delay))
    }))
    .await;
    let manifest = source_manifest(
        "hol",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { timeout: PT30S }\nreceive: { pollers: 1, waitTimeSeconds: 1 }",
    );
    let _adapter = Adapter::start(&manifest, &[]).await;
    let put = sample("s3-records-put.json");
    let encoded_key = "photos/2026/red+flower%281%29+%C3%A9t%C3%A9.jpg";
    let mut bodies = vec![put.replace(encoded_key, "slow.bin")];
    bodies.extend((0..9).map(|i| put.replace(encoded_key, &format!("fast-{i}.bin"))));
    let entries: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .unwrap()
        })
        .collect();
    q.aws
        .sqs
        .send_message_batch()
        .queue_url(&q.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    // The nine fast ones arrive while the slow one is still at the sink.
    let accepted = sink.wait_accepted(9, Duration::from_secs(15)).await;
    assert!(
        accepted
            .iter()
            .all(|(_, e)| e.subject() != Some("slow.bin"))
    );
    assert_eq!(
        sink.attempts(),
        10,
        "the slow one is in flight at the same time"
    );
    sink.wait_accepted(10, LONG).await;
    q.aws.wait_queue_empty(&q.queue_url, LONG).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_message_does_not_stop_receiving_when_few_slots_are_free() {
    let q = raw_queue().await;
    let sink = TestSink::start(Arc::new(|_, event: &Event| {
        let delay = if event.subject() == Some("slow.bin") {
            20
        } else {
            0
        };
        (StatusCode::OK, Duration::from_secs(delay))
    }))
    .await;
    // Two slots: while the slow message holds one, the other keeps the queue moving.
    let manifest = source_manifest(
        "slots",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { timeout: PT30S }\nreceive: { pollers: 1, maxInFlightMessages: 2, waitTimeSeconds: 1 }",
    );
    let _adapter = Adapter::start(&manifest, &[]).await;
    q.aws
        .send(&q.queue_url, &put_sample_with_key("slow.bin"))
        .await;
    sink.wait_attempts(1, LONG).await;
    for i in 0..4 {
        q.aws
            .send(&q.queue_url, &put_sample_with_key(&format!("fast-{i}.bin")))
            .await;
    }
    let accepted = sink.wait_accepted(4, Duration::from_secs(15)).await;
    assert!(
        accepted
            .iter()
            .all(|(_, e)| e.subject() != Some("slow.bin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stuck_sink_exits_within_the_grace_and_releases_the_message() {
    let q = raw_queue().await;
    let sink = TestSink::start(Arc::new(|_, _| (StatusCode::OK, Duration::from_secs(120)))).await;
    let manifest = source_manifest(
        "stuck",
        "media-uploads",
        &q.queue_arn,
        &sink.uri(),
        "delivery: { timeout: PT120S }\nreceive: { waitTimeSeconds: 1, visibilityTimeout: 60s }",
    );
    let mut adapter = Adapter::start(&manifest, &["--shutdown-grace", "3s"]).await;
    let message_id = q
        .aws
        .send(&q.queue_url, &put_sample_with_key("stuck.bin"))
        .await;
    sink.wait_attempts(1, LONG).await;
    let signalled = tokio::time::Instant::now();
    adapter.signal("TERM");
    let status = adapter.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        adapter.log()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exited {:?} after SIGTERM with a 3 s grace",
        signalled.elapsed()
    );
    // Released at once for another replica, not hidden for the rest of its 60 s visibility.
    let out = q
        .aws
        .sqs
        .receive_message()
        .queue_url(&q.queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let message = out.messages.unwrap_or_default().into_iter().next();
    assert_eq!(
        message.and_then(|m| m.message_id),
        Some(message_id),
        "the unfinished message is visible again"
    );
}
