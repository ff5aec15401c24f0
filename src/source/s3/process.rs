//! What happens to one SQS message: parse the body, turn each S3 record into a CloudEvent,
//! deliver them to the sink, and decide the message's fate — delete only once the sink accepted
//! every event; otherwise the dead-letter sink, or back to the queue with a growing delay.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::S3SourceConfig;
use super::heartbeat::InFlight;
use super::notification::{
    Body, Malformed, Record, S3Event, TestEvent, event_type_matches, parse_body,
};
use super::queue::Receipt;
use super::settle::{Settle, SettleSender};
use super::telemetry::SourceTelemetry;
use crate::cloudevents::OutEvent;
use crate::http::sink::{SendError, SinkClient};

/// Everything a message task needs, shared by all of them.
pub struct Context {
    pub config: S3SourceConfig,
    pub sink: SinkClient,
    pub telemetry: Arc<SourceTelemetry>,
    pub settle: SettleSender,
    pub in_flight: Arc<InFlight>,
    /// Fires when the shutdown grace period is spent: unfinished messages are released.
    pub hard_stop: CancellationToken,
}

/// Processes one message to the end. `permit` bounds the messages in flight.
pub async fn process(
    ctx: Arc<Context>,
    message: Message,
    received: Instant,
    permit: OwnedSemaphorePermit,
) {
    let message_id = message.message_id.clone().unwrap_or_default();
    let Some(handle) = message.receipt_handle.clone() else {
        tracing::warn!(message_id, "message without a receipt handle ignored");
        return;
    };
    let receipt = Receipt {
        message_id: message_id.clone(),
        handle,
    };
    let guard = ctx.in_flight.register(
        receipt.clone(),
        ctx.config.receive.visibility_timeout,
        received,
    );
    ctx.telemetry.in_flight(1.0);
    if let Some(sent) = system_attribute(&message, MessageSystemAttributeName::SentTimestamp)
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        ctx.telemetry
            .lag(now.saturating_sub(Duration::from_millis(sent)));
    }

    let outcome = tokio::select! {
        outcome = handle_message(&ctx, &message, &message_id) => outcome,
        () = ctx.hard_stop.cancelled() => Outcome::Release("shutdown"),
    };
    let settle = match outcome {
        Outcome::Delete => Settle::Delete(receipt),
        Outcome::Release(reason) => Settle::Release {
            delay: if reason == "shutdown" {
                Duration::ZERO
            } else {
                redelivery_delay(&ctx.config, &message)
            },
            receipt,
            reason,
        },
    };
    drop(guard);
    ctx.settle.send(settle).await;
    ctx.telemetry.in_flight(-1.0);
    drop(permit);
}

enum Outcome {
    Delete,
    Release(&'static str),
}

async fn handle_message(ctx: &Context, message: &Message, message_id: &str) -> Outcome {
    let body = message.body.as_deref().unwrap_or("");
    let config = &ctx.config;
    match parse_body(body) {
        Body::Records(records) => {
            let mut events = Vec::with_capacity(records.len());
            let mut broken = Vec::new();
            for record in records {
                match record {
                    Record::Event(event)
                        if event_type_matches(&config.event_types, &event.event_name) =>
                    {
                        events.push(s3_event(event));
                    }
                    Record::Event(event) => ctx.telemetry.record_filtered(&event.event_name),
                    Record::Invalid(problem) => {
                        ctx.telemetry.malformed(message_id, &problem);
                        broken.push(problem);
                    }
                }
            }
            let failed = deliver_all(ctx, message_id, events).await;
            if failed.is_empty() && broken.is_empty() {
                Outcome::Delete
            } else {
                dead_letter(ctx, message, failed, broken).await
            }
        }
        Body::TestEvent(test) => {
            ctx.telemetry
                .test_event(message_id, config.forward_test_events);
            if !config.forward_test_events {
                return Outcome::Delete;
            }
            let event = test_event(config, test);
            let failed = deliver_all(ctx, message_id, vec![event]).await;
            if failed.is_empty() {
                Outcome::Delete
            } else {
                dead_letter(ctx, message, failed, Vec::new()).await
            }
        }
        Body::Unrecognized => {
            ctx.telemetry
                .unrecognized(message_id, config.forward_unrecognized);
            let event = sqs_message_event(config, message);
            if !config.forward_unrecognized {
                return dead_letter(ctx, message, Vec::new(), Vec::new()).await;
            }
            let failed = deliver_all(ctx, message_id, vec![event]).await;
            if failed.is_empty() {
                Outcome::Delete
            } else {
                dead_letter(ctx, message, failed, Vec::new()).await
            }
        }
        Body::Malformed(problem) => {
            ctx.telemetry.malformed(message_id, &problem);
            dead_letter(ctx, message, Vec::new(), vec![problem]).await
        }
    }
}

/// Delivers the events of one message concurrently; returns those the sink did not accept.
async fn deliver_all(
    ctx: &Context,
    message_id: &str,
    events: Vec<OutEvent>,
) -> Vec<(OutEvent, SendError)> {
    let deliveries = events.into_iter().map(|event| async move {
        let encoded = event.encode(ctx.config.encoding);
        let started = Instant::now();
        let result = ctx
            .sink
            .deliver(&ctx.config.sink, &encoded, |attempt, err| {
                ctx.telemetry.sink_retry(&event.id, attempt, err);
            })
            .await;
        match result {
            Ok(()) => {
                ctx.telemetry.delivered(started.elapsed());
                None
            }
            Err(err) => {
                ctx.telemetry.delivery_failed(message_id, &event.id, &err);
                Some((event, err))
            }
        }
    });
    join_all(deliveries).await.into_iter().flatten().collect()
}

/// After the retries: events (and broken records, as the raw message) go to the dead-letter
/// sink, and the message is deleted once it accepted all of them. Without a dead-letter sink, or
/// when it fails too, the message goes back to the queue, where SQS's redrive policy takes over.
async fn dead_letter(
    ctx: &Context,
    message: &Message,
    failed: Vec<(OutEvent, SendError)>,
    broken: Vec<Malformed>,
) -> Outcome {
    let Some(dead_letter_sink) = &ctx.config.delivery.dead_letter_sink else {
        return Outcome::Release(if failed.is_empty() {
            "malformed"
        } else {
            "delivery_failed"
        });
    };
    let message_id = message.message_id.as_deref().unwrap_or("");
    let mut letters: Vec<OutEvent> = failed
        .into_iter()
        .map(|(mut event, err)| {
            event
                .extensions
                .push(("knativeerrordest", ctx.config.sink.to_string()));
            event
                .extensions
                .push(("knativeerrorcode", error_code(&err)));
            event
        })
        .collect();
    if letters.is_empty() || !broken.is_empty() {
        // The message itself could not be understood: dead-letter it whole.
        let mut event = sqs_message_event(&ctx.config, message);
        let reason = broken
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let reason = if reason.is_empty() {
            "not an S3 notification".to_string()
        } else {
            reason
        };
        event.extensions.push(("adaptererror", reason));
        letters.push(event);
    }
    for letter in letters {
        let encoded = letter.encode(ctx.config.encoding);
        let result = ctx
            .sink
            .deliver(dead_letter_sink, &encoded, |attempt, err| {
                ctx.telemetry.sink_retry(&letter.id, attempt, err);
            })
            .await;
        match result {
            Ok(()) => ctx.telemetry.dead_lettered(message_id, &letter.id),
            Err(err) => {
                ctx.telemetry.dead_letter_failed(message_id, &err);
                return Outcome::Release("dead_letter_failed");
            }
        }
    }
    Outcome::Delete
}

fn error_code(err: &SendError) -> String {
    match err {
        SendError::Status { status, .. } => status.to_string(),
        other => other.label().to_string(),
    }
}

/// The delay before a failed message is seen again: `redeliveryDelay × 2^(receives − 1)`,
/// capped — never 0, so a failing sink is not hammered in a tight loop.
fn redelivery_delay(config: &S3SourceConfig, message: &Message) -> Duration {
    let receives = system_attribute(message, MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|count| count.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 20);
    let delay = config
        .receive
        .redelivery_delay
        .saturating_mul(1 << (receives - 1));
    delay
        .min(config.receive.max_redelivery_delay)
        .max(Duration::from_secs(1))
}

fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message.attributes.as_ref()?.get(&name).map(String::as_str)
}

fn s3_event(event: S3Event) -> OutEvent {
    OutEvent {
        id: event.id,
        source: event.source,
        ty: event.ce_type,
        subject: Some(event.subject),
        time: event.time,
        datacontenttype: "application/json",
        extensions: Vec::new(),
        data: event.data,
    }
}

fn test_event(config: &S3SourceConfig, test: TestEvent) -> OutEvent {
    OutEvent {
        id: test.id,
        source: format!("arn:{}:s3:::{}", config.bucket.partition, test.bucket),
        ty: "com.amazon.s3.testevent".into(),
        subject: None,
        time: test.time,
        datacontenttype: "application/json",
        extensions: Vec::new(),
        data: test.data,
    }
}

/// A body that is not an S3 notification, as TriggerMesh forwarded it: type
/// `com.amazon.sqs.message`, source the queue ARN, id the SQS MessageId.
fn sqs_message_event(config: &S3SourceConfig, message: &Message) -> OutEvent {
    let body = message.body.clone().unwrap_or_default();
    let is_json = serde_json::from_str::<&serde_json::value::RawValue>(&body).is_ok();
    let time = system_attribute(message, MessageSystemAttributeName::SentTimestamp)
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    OutEvent {
        id: message.message_id.clone().unwrap_or_default(),
        source: config.queue.to_string(),
        ty: "com.amazon.sqs.message".into(),
        subject: None,
        time,
        datacontenttype: if is_json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        },
        extensions: Vec::new(),
        data: Bytes::from(body),
    }
}
