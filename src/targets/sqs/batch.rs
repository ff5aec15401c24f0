//! The SQS target's `SendMessageBatch` calls, as a [`Flush`] of the crate's one batcher
//! ([`crate::batch`]): the messages of concurrent requests (and of batch-mode requests) are
//! coalesced into calls of at most ten entries and the queue's size limit, because SQS bills
//! per request. Each message's outcome goes back to the request that sent it.
//!
//! A partial batch waits at most [`MAX_LINGER`] (less when a whole batch is expected to fill
//! sooner, not at all when arrivals have stopped); calls in flight start at [`INITIAL_CALLS`]
//! and adapt to the demand and to throttling, up to `--max-concurrent-requests`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageSystemAttributeNameForSends, MessageSystemAttributeValue, SendMessageBatchRequestEntry,
};
use http::StatusCode;
use metrics::counter;
use tokio::sync::oneshot;

use super::config::COMPONENT;
use super::{Message, Queue};
use crate::aws::{error_label, with_fresh_credentials};
use crate::batch::{Flush, Flushed, Options};
use crate::targets::{Outcome, TargetError, record_aws_error, status_for_code};

/// The longest a partial batch waits for more messages.
const MAX_LINGER: Duration = Duration::from_millis(2);
/// `SendMessageBatch` calls in flight at start (the fixed number this replaced).
const INITIAL_CALLS: usize = 8;
/// Messages queued before requests wait.
const CAPACITY: usize = 4096;

/// A message waiting to be sent, with where its outcome goes.
pub struct Pending {
    pub message: Message,
    pub reply: oneshot::Sender<Outcome>,
}

/// The batcher's options for a target named `name`, with at most `max_calls` in flight.
pub fn options(name: &str, max_calls: usize) -> Options {
    Options {
        max_linger: MAX_LINGER,
        initial_calls: INITIAL_CALLS,
        max_calls,
        capacity: CAPACITY,
        component: COMPONENT,
        name: name.to_string(),
        operation: "SendMessageBatch",
    }
}

/// `SendMessageBatch` into the target's queue.
pub struct Sends(pub Arc<Queue>);

impl Flush for Sends {
    type Item = Pending;

    fn size(pending: &Pending) -> usize {
        pending.message.size()
    }

    fn limit(&self) -> usize {
        self.0.max_message_bytes.load(Ordering::Relaxed)
    }

    async fn flush(&self, batch: Vec<Pending>) -> Flushed {
        send_batch(&self.0, batch).await
    }
}

/// What a failed call tells the concurrency controller: throttling and the service's or the
/// network's trouble (503 to the caller) slow the batcher down; the adapter's setup being
/// wrong (502) says nothing about capacity.
fn feedback(error: &TargetError) -> Flushed {
    if error.status != StatusCode::SERVICE_UNAVAILABLE {
        return Flushed::Done;
    }
    match error.code.as_deref() {
        Some(code) if crate::aws::is_throttling(code) => Flushed::Throttled,
        _ => Flushed::Failed,
    }
}

/// One `SendMessageBatch` call; every entry's outcome is answered, whatever happens.
async fn send_batch(queue: &Queue, batch: Vec<Pending>) -> Flushed {
    let name = queue.config.metadata.name.clone();
    counter!("aws_event_adapter_sqs_send_batches_total", "component" => COMPONENT, "name" => name.clone()).increment(1);
    counter!("aws_event_adapter_sqs_send_entries_total", "component" => COMPONENT, "name" => name.clone())
        .increment(batch.len() as u64);
    let url = match queue.url().await {
        Ok(url) => url,
        Err(error) => {
            answer_all(batch, &error);
            return feedback(&error);
        }
    };
    let entries: Vec<SendMessageBatchRequestEntry> = batch
        .iter()
        .enumerate()
        .filter_map(|(index, pending)| {
            let message = &pending.message;
            SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(&message.body)
                .set_message_attributes(message.attribute_values())
                .set_message_group_id(message.group_id.clone())
                .set_message_deduplication_id(message.deduplication_id.clone())
                .set_message_system_attributes(message.trace_header.as_ref().and_then(|header| {
                    let value = MessageSystemAttributeValue::builder()
                        .data_type("String")
                        .string_value(header)
                        .build()
                        .ok()?;
                    Some(std::collections::HashMap::from([(
                        MessageSystemAttributeNameForSends::AwsTraceHeader,
                        value,
                    )]))
                }))
                .build()
                .ok()
        })
        .collect();
    let result = with_fresh_credentials(&queue.credentials, || {
        queue
            .client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries.clone()))
            .send()
    })
    .await;
    let output = match result {
        Ok(output) => output,
        Err(err) => {
            record_aws_error(
                COMPONENT,
                &name,
                "SendMessageBatch",
                &error_label(&err),
                &crate::aws::error_message(&err),
            );
            let error = TargetError::from_aws("SendMessageBatch", &err);
            answer_all(batch, &error);
            return feedback(&error);
        }
    };
    let mut replies: Vec<Option<oneshot::Sender<Outcome>>> =
        batch.into_iter().map(|p| Some(p.reply)).collect();
    let mut flushed = Flushed::Done;
    for ok in output.successful {
        if let Some(reply) = take(&mut replies, &ok.id) {
            let mut data = serde_json::json!({
                "messageId": ok.message_id,
                "md5OfMessageBody": ok.md5_of_message_body,
            });
            if let Some(sequence) = ok.sequence_number {
                data["sequenceNumber"] = serde_json::Value::String(sequence);
            }
            let _ = reply.send(Ok(data));
        }
    }
    for failed in output.failed {
        if let Some(reply) = take(&mut replies, &failed.id) {
            record_aws_error(
                COMPONENT,
                &name,
                "SendMessageBatch",
                &crate::aws::bounded_code(&failed.code),
                failed.message.as_deref().unwrap_or(&failed.code),
            );
            let status = if failed.sender_fault {
                match status_for_code(&failed.code, 400) {
                    StatusCode::BAD_GATEWAY => StatusCode::BAD_REQUEST,
                    other => other,
                }
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let error = TargetError {
                status,
                message: format!(
                    "SendMessageBatch: {}",
                    failed.message.unwrap_or_else(|| failed.code.clone())
                ),
                retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
                code: Some(failed.code),
            };
            if flushed == Flushed::Done {
                flushed = feedback(&error);
            }
            let _ = reply.send(Err(error));
        }
    }
    // An entry SQS did not mention at all (should not happen) must not hang its request.
    for reply in replies.into_iter().flatten() {
        let _ = reply.send(Err(TargetError::new(
            StatusCode::BAD_GATEWAY,
            "SendMessageBatch did not report on this message",
        )));
    }
    flushed
}

fn take(
    replies: &mut [Option<oneshot::Sender<Outcome>>],
    id: &str,
) -> Option<oneshot::Sender<Outcome>> {
    id.parse::<usize>()
        .ok()
        .and_then(|index| replies.get_mut(index)?.take())
}

fn answer_all(batch: Vec<Pending>, error: &TargetError) {
    for pending in batch {
        let _ = pending.reply.send(Err(error.clone()));
    }
}
