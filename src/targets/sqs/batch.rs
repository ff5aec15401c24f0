//! Coalescing messages of concurrent requests (and of batch-mode requests) into
//! `SendMessageBatch` calls: at most ten entries and the queue's size limit per call, because
//! SQS bills per request. Each message's outcome goes back to the request that sent it.
//!
//! A batch is sent as soon as it is full, or when no more messages arrive within [`LINGER`];
//! while [`CONCURRENT_CALLS`] calls are in flight, new messages queue up and fill the next
//! batches — under load batching happens by itself, and a lone request waits at most `LINGER`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use http::StatusCode;
use metrics::counter;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tracing::Instrument;

use super::config::COMPONENT;
use super::{Message, Queue};
use crate::aws::{error_label, with_fresh_credentials};
use crate::targets::{Outcome, TargetError, record_aws_error, status_for_code};

/// How long a partial batch waits for more messages.
const LINGER: Duration = Duration::from_millis(2);
/// `SendMessageBatch` calls in flight at once.
const CONCURRENT_CALLS: usize = 8;
/// SQS takes at most ten entries per batch.
const MAX_ENTRIES: usize = 10;

/// A message waiting to be sent, with where its outcome goes.
pub struct Pending {
    pub message: Message,
    pub reply: oneshot::Sender<Outcome>,
}

pub struct Batcher {
    queue: Arc<Queue>,
    receiver: mpsc::Receiver<Pending>,
    calls: Arc<Semaphore>,
}

impl Batcher {
    pub fn new(queue: Arc<Queue>, receiver: mpsc::Receiver<Pending>) -> Self {
        Batcher {
            queue,
            receiver,
            calls: Arc::new(Semaphore::new(CONCURRENT_CALLS)),
        }
    }

    /// Runs until every sender is gone, then sends what is left.
    pub async fn run(mut self) {
        let mut carry: Option<Pending> = None;
        loop {
            // Wait for a free call slot first: while all calls are busy, messages pile up in
            // the channel and the next batch fills by itself.
            let Ok(slot) = self.calls.clone().acquire_owned().await else {
                return;
            };
            let first = match carry.take() {
                Some(pending) => pending,
                None => match self.receiver.recv().await {
                    Some(pending) => pending,
                    None => return,
                },
            };
            let limit = self.queue.max_message_bytes.load(Ordering::Relaxed);
            let mut size = first.message.size();
            let mut batch = vec![first];
            let linger_until = Instant::now() + LINGER;
            while batch.len() < MAX_ENTRIES {
                let next = match self.receiver.try_recv() {
                    Ok(pending) => pending,
                    Err(_) => match timeout_at(linger_until, self.receiver.recv()).await {
                        Ok(Some(pending)) => pending,
                        Ok(None) | Err(_) => break,
                    },
                };
                if size + next.message.size() > limit {
                    carry = Some(next); // starts the next batch
                    break;
                }
                size += next.message.size();
                batch.push(next);
            }
            let queue = self.queue.clone();
            tokio::spawn(
                async move {
                    send_batch(&queue, batch).await;
                    drop(slot);
                }
                .in_current_span(),
            );
        }
    }
}

/// One `SendMessageBatch` call; every entry's outcome is answered, whatever happens.
async fn send_batch(queue: &Queue, batch: Vec<Pending>) {
    let name = queue.config.metadata.name.clone();
    counter!("aws_event_adapter_sqs_send_batches_total", "component" => COMPONENT, "name" => name.clone()).increment(1);
    counter!("aws_event_adapter_sqs_send_entries_total", "component" => COMPONENT, "name" => name.clone())
        .increment(batch.len() as u64);
    let url = match queue.url().await {
        Ok(url) => url,
        Err(error) => return answer_all(batch, &error),
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
            record_aws_error(COMPONENT, &name, "SendMessageBatch", &error_label(&err));
            return answer_all(batch, &TargetError::from_aws("SendMessageBatch", &err));
        }
    };
    let mut replies: Vec<Option<oneshot::Sender<Outcome>>> =
        batch.into_iter().map(|p| Some(p.reply)).collect();
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
