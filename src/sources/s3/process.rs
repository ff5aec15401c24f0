//! What happens to one SQS message: parse the body, turn each S3 record into a CloudEvent,
//! deliver them to the sink, and decide the message's fate — delete only once the sink accepted
//! every event; otherwise the dead-letter sink, or back to the queue with a growing delay.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt, stream};
use http::Uri;
use std::panic::AssertUnwindSafe;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{Conversion, Processor, Receive, S3SourceConfig};
use super::heartbeat::{InFlight, InFlightGuard};
use super::notification::{
    Body, Malformed, Record, S3Event, TestEvent, event_type_matches, parse_body,
};
use super::queue::Receipt;
use super::settle::{Settle, SettleSender};
use super::sink_address::SinkAddress;
use super::sqs_message::{Overrides, eventbridge_event, message_event};
use super::telemetry::SourceTelemetry;
use crate::aws::arn::QueueArn;
use crate::backoff::{Backoff, Curve};
use crate::cloudevents::OutEvent;
use crate::cloudevents::trace::TraceParent;
use crate::http::sink::{SendError, SinkClient};

/// Everything a message task needs, shared by all of them.
pub struct Context {
    pub config: S3SourceConfig,
    /// The sink's URL (looked up again from its `ref` when the sink keeps failing).
    pub sink_address: Arc<SinkAddress>,
    /// The queue consumed: the configured one, or the one provisioned for this source.
    pub queue_arn: QueueArn,
    pub sink: SinkClient,
    pub telemetry: Arc<SourceTelemetry>,
    pub settle: SettleSender,
    pub in_flight: Arc<InFlight>,
    /// Fires when the shutdown grace period is spent: unfinished messages are released.
    pub hard_stop: CancellationToken,
}

/// Events of one message delivered at the same time, at most.
const CONCURRENT_EVENTS_PER_MESSAGE: usize = 16;
/// Reasons named in the `adaptererror` extension of a dead letter, at most.
const REASONS_IN_DEAD_LETTER: usize = 3;

/// Why a message goes back to the queue instead of being deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The sink did not accept an event after the retries (and there is no dead-letter sink).
    DeliveryFailed,
    /// The body or a record is malformed (and there is no dead-letter sink).
    Malformed,
    /// The dead-letter sink did not accept it either.
    DeadLetterFailed,
    /// The shutdown grace period ran out: visible again at once, for another replica.
    Shutdown,
    /// Processing panicked (a bug): back to the queue, with the usual delay.
    Panicked,
}

impl Release {
    fn label(self) -> &'static str {
        match self {
            Release::DeliveryFailed => "delivery_failed",
            Release::Malformed => "malformed",
            Release::DeadLetterFailed => "dead_letter_failed",
            Release::Shutdown => "shutdown",
            Release::Panicked => "panicked",
        }
    }
}

enum Outcome {
    Delete,
    Release(Release),
}

/// Registers a message with the visibility heartbeat (from `received` on), so that it stays
/// hidden while it waits or is processed; `None` for a message without id or receipt handle.
pub fn register(
    ctx: &Context,
    message: &Message,
    received: Instant,
) -> Option<(Receipt, InFlightGuard)> {
    let Some(receipt) = Receipt::of(message) else {
        tracing::warn!(message_id = ?message.message_id, "message without an id or receipt handle ignored");
        return None;
    };
    let guard = ctx.in_flight.register(
        receipt.clone(),
        ctx.config.receive.visibility_timeout,
        received,
    );
    Some((receipt, guard))
}

/// Processes one message to the end. `permit` bounds the messages in flight. Returns whether
/// the message is done with (deleted, or dead-lettered), not released for another attempt.
pub async fn process(
    ctx: Arc<Context>,
    message: Message,
    received: Instant,
    permit: OwnedSemaphorePermit,
) -> bool {
    let Some(registered) = register(&ctx, &message, received) else {
        return true;
    };
    process_registered(ctx, message, registered, permit)
        .await
        .is_none()
}

/// [`process`] for a message [`register`]ed already (a FIFO group's later messages are
/// registered when they are received, while they wait for the earlier ones). Returns `None`
/// when the message is done with, else the delay it went back to the queue with.
pub async fn process_registered(
    ctx: Arc<Context>,
    message: Message,
    (receipt, guard): (Receipt, InFlightGuard),
    permit: OwnedSemaphorePermit,
) -> Option<Duration> {
    let message_id = receipt.message_id.clone();
    if let Some(sent) = system_attribute(&message, MessageSystemAttributeName::SentTimestamp)
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        ctx.telemetry
            .lag(now.saturating_sub(Duration::from_millis(sent)));
    }

    // A panic is a bug, but it must not take the message (or the process) with it.
    let handled = AssertUnwindSafe(handle_message(&ctx, &message, &message_id)).catch_unwind();
    let outcome = tokio::select! {
        outcome = handled => outcome.unwrap_or_else(|_| {
            tracing::error!(message_id, "processing the message panicked; it goes back to the queue");
            Outcome::Release(Release::Panicked)
        }),
        () = ctx.hard_stop.cancelled() => Outcome::Release(Release::Shutdown),
    };
    let (settle, released_for) = match outcome {
        Outcome::Delete => (Settle::Delete { receipt, guard }, None),
        Outcome::Release(reason) => {
            drop(guard);
            let delay = if reason == Release::Shutdown {
                Duration::ZERO
            } else {
                redelivery_delay(&ctx.config.receive, &message)
            };
            let settle = Settle::Release {
                delay,
                receipt,
                reason: reason.label(),
            };
            (settle, Some(delay))
        }
    };
    ctx.settle.send(settle).await;
    drop(permit);
    released_for
}

async fn handle_message(ctx: &Context, message: &Message, message_id: &str) -> Outcome {
    let config = &ctx.config;
    let overrides = Overrides {
        source: config.event_source.as_deref(),
        ty: config.event_type.as_deref(),
    };
    let plain = || vec![message_event(&ctx.queue_arn, message, overrides)];
    let events = match config.conversion {
        Conversion::S3Notifications => return handle_notification(ctx, message, message_id).await,
        Conversion::SqsMessages(Processor::S3) => {
            // S3 notifications as the S3 source reads them; anything else as a plain message.
            if matches!(
                parse_body(message.body.as_deref().unwrap_or("")),
                Body::Records(_) | Body::TestEvent(_)
            ) {
                return handle_notification(ctx, message, message_id).await;
            }
            plain()
        }
        Conversion::SqsMessages(Processor::EventBridge) => {
            match eventbridge_event(&ctx.queue_arn, message, overrides) {
                Some(event) => vec![event],
                None => plain(),
            }
        }
        Conversion::SqsMessages(Processor::Default) => plain(),
    };
    let failed = deliver_all(ctx, message_id, traced(message, events)).await;
    if failed.is_empty() {
        Outcome::Delete
    } else {
        dead_letter(ctx, message, failed, Vec::new()).await
    }
}

/// An S3 notification (or what an `AWSS3Source` does with a body that is none).
async fn handle_notification(ctx: &Context, message: &Message, message_id: &str) -> Outcome {
    let body = message.body.as_deref().unwrap_or("");
    let config = &ctx.config;
    let (events, broken) = match parse_body(body) {
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
                    Record::Invalid(problem) => broken.push(problem),
                }
            }
            (events, broken)
        }
        Body::TestEvent(test) => {
            ctx.telemetry
                .test_event(message_id, config.forward_test_events);
            if !config.forward_test_events {
                return Outcome::Delete;
            }
            (vec![test_event(&ctx.queue_arn, test)], Vec::new())
        }
        Body::Unrecognized => {
            ctx.telemetry
                .unrecognized(message_id, config.forward_unrecognized);
            if !config.forward_unrecognized {
                // Neither forwarded nor dropped: dead-lettered whole, or left for the redrive.
                return dead_letter(ctx, message, Vec::new(), Vec::new()).await;
            }
            (vec![sqs_message_event(&ctx.queue_arn, message)], Vec::new())
        }
        Body::Malformed(problem) => (Vec::new(), vec![problem]),
    };
    if !broken.is_empty() {
        ctx.telemetry.malformed(message_id, &broken);
    }
    let failed = deliver_all(ctx, message_id, traced(message, events)).await;
    if failed.is_empty() && broken.is_empty() {
        Outcome::Delete
    } else {
        dead_letter(ctx, message, failed, broken).await
    }
}

/// Each event carries the trace of its message: continued from the message's `AWSTraceHeader`
/// when it has one, else a new trace (the `traceparent` extension; in binary mode also W3C's
/// own header).
fn traced(message: &Message, mut events: Vec<OutEvent>) -> Vec<OutEvent> {
    let trace = system_attribute(message, MessageSystemAttributeName::AwsTraceHeader)
        .and_then(TraceParent::from_aws_trace_header)
        .unwrap_or_else(TraceParent::start);
    for event in &mut events {
        if !event
            .extensions
            .iter()
            .any(|(name, _)| name == "traceparent")
        {
            event
                .extensions
                .push(("traceparent".into(), trace.next_hop().to_string()));
        }
    }
    events
}

/// Encodes and POSTs one event with the delivery policy's retries.
async fn send(ctx: &Context, uri: &Uri, event: &OutEvent) -> Result<(), SendError> {
    let encoded = event.encode(ctx.config.encoding);
    ctx.sink
        .deliver(uri, &encoded, |attempt, err| {
            ctx.telemetry.sink_retry(&event.id, attempt, err);
        })
        .await
}

/// Delivers the events of one message concurrently (a bounded number at a time); returns
/// those the sink did not accept.
async fn deliver_all(
    ctx: &Context,
    message_id: &str,
    mut events: Vec<OutEvent>,
) -> Vec<(OutEvent, SendError)> {
    if events.len() <= 1 {
        // The common case (S3 puts one record in a message) skips the stream machinery.
        return match events.pop() {
            Some(event) => deliver(ctx, message_id, event).await.into_iter().collect(),
            None => Vec::new(),
        };
    }
    stream::iter(events)
        .map(|event| deliver(ctx, message_id, event))
        .buffer_unordered(CONCURRENT_EVENTS_PER_MESSAGE)
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// Delivers one event; returns it with the error if the sink did not accept it.
async fn deliver(
    ctx: &Context,
    message_id: &str,
    event: OutEvent,
) -> Option<(OutEvent, SendError)> {
    let started = Instant::now();
    match send(ctx, &ctx.sink_address.current(), &event).await {
        Ok(()) => {
            ctx.telemetry.delivered(started.elapsed());
            ctx.sink_address.delivered();
            None
        }
        Err(err) => {
            ctx.telemetry.delivery_failed(message_id, &event.id, &err);
            ctx.sink_address.failed();
            Some((event, err))
        }
    }
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
            Release::Malformed
        } else {
            Release::DeliveryFailed
        });
    };
    let message_id = message.message_id.as_deref().unwrap_or("");
    let mut letters: Vec<OutEvent> = failed
        .into_iter()
        .map(|(mut event, err)| {
            event.extensions.push((
                "knativeerrordest".into(),
                ctx.sink_address.current().to_string(),
            ));
            event
                .extensions
                .push(("knativeerrorcode".into(), error_code(&err)));
            event
        })
        .collect();
    if letters.is_empty() || !broken.is_empty() {
        // The message itself could not be understood: dead-letter it whole.
        let mut event = sqs_message_event(&ctx.queue_arn, message);
        event
            .extensions
            .push(("adaptererror".into(), dead_letter_reason(&broken)));
        letters.push(event);
    }
    for letter in letters {
        match send(ctx, dead_letter_sink, &letter).await {
            Ok(()) => ctx.telemetry.dead_lettered(message_id, &letter.id),
            Err(err) => {
                ctx.telemetry.dead_letter_failed(message_id, &err);
                return Outcome::Release(Release::DeadLetterFailed);
            }
        }
    }
    Outcome::Delete
}

/// The first few reasons, so a body of thousands of broken records cannot make a header too
/// large for the dead-letter sink to accept.
fn dead_letter_reason(broken: &[Malformed]) -> String {
    if broken.is_empty() {
        return "not an S3 notification".to_string();
    }
    let mut reason = broken
        .iter()
        .take(REASONS_IN_DEAD_LETTER)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if broken.len() > REASONS_IN_DEAD_LETTER {
        reason.push_str(&format!(
            "; and {} more",
            broken.len() - REASONS_IN_DEAD_LETTER
        ));
    }
    reason
}

fn error_code(err: &SendError) -> String {
    match err {
        SendError::Status { status, .. } => status.to_string(),
        other => other.label().to_string(),
    }
}

/// The delay before a failed message is seen again: `redeliveryDelay × 2^(receives − 1)`,
/// capped — never 0, so a failing sink is not hammered in a tight loop.
fn redelivery_delay(receive: &Receive, message: &Message) -> Duration {
    let receives = system_attribute(message, MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|count| count.parse::<u32>().ok())
        .unwrap_or(1);
    let (base, ceiling) = (receive.redelivery_delay, receive.max_redelivery_delay);
    // A first delay above the ceiling (the configuration allows it) means the ceiling at once.
    let backoff = Backoff::fixed(Curve::Exponential, base.min(ceiling), ceiling);
    backoff.delay(receives).max(Duration::from_secs(1))
}

fn system_attribute(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message.attributes.as_ref()?.get(&name).map(String::as_str)
}

/// The CloudEvent of one S3 record (the attribute table of the reference, §2).
pub fn s3_event(event: S3Event) -> OutEvent {
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

fn test_event(queue: &QueueArn, test: TestEvent) -> OutEvent {
    OutEvent {
        id: test.id,
        // The bucket is in the queue's partition (S3 notifies queues of its own region).
        source: format!("arn:{}:s3:::{}", queue.partition, test.bucket),
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
fn sqs_message_event(queue: &QueueArn, message: &Message) -> OutEvent {
    let body = message.body.clone().unwrap_or_default();
    let is_json = serde_json::from_str::<&serde_json::value::RawValue>(&body).is_ok();
    let time = system_attribute(message, MessageSystemAttributeName::SentTimestamp)
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    OutEvent {
        id: message.message_id.clone().unwrap_or_default(),
        source: queue.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn received(count: &str) -> Message {
        Message::builder()
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, count)
            .build()
    }

    #[test]
    fn redelivery_delay_doubles_per_receive_within_bounds() {
        let secs = Duration::from_secs;
        let receive = Receive {
            redelivery_delay: secs(10),
            max_redelivery_delay: secs(900),
            ..Receive::default()
        };
        let delays: Vec<Duration> = ["1", "2", "3", "7", "8", "4000000000"]
            .into_iter()
            .map(|count| redelivery_delay(&receive, &received(count)))
            .collect();
        assert_eq!(
            delays,
            [
                secs(10),
                secs(20),
                secs(40),
                secs(640),
                secs(900),
                secs(900)
            ]
        );
        // No count: the first receive.
        assert_eq!(
            redelivery_delay(&receive, &Message::builder().build()),
            secs(10)
        );
        // Never below 1 s; a first delay above the ceiling is the ceiling.
        let zero = Receive {
            redelivery_delay: Duration::ZERO,
            ..receive.clone()
        };
        assert_eq!(redelivery_delay(&zero, &received("5")), secs(1));
        let inverted = Receive {
            redelivery_delay: secs(2000),
            ..receive
        };
        assert_eq!(redelivery_delay(&inverted, &received("1")), secs(900));
    }
}
