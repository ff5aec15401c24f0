//! The SQS queue as the source uses it: resolving its URL, and the batched calls that settle
//! messages — deletes after delivery, visibility changes to release a message or to keep it
//! hidden while it is in flight.
//!
//! Only `sqs:GetQueueUrl`, `sqs:ReceiveMessage` and `sqs:DeleteMessage` are required. Visibility
//! changes are optional: when AWS denies them, [`Queue`] switches them off with one warning and
//! the source goes on with SQS's own visibility timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use tokio_util::sync::CancellationToken;

use super::telemetry::SourceTelemetry;
use crate::aws::arn::QueueArn;
use crate::aws::credentials::Refreshing;
use crate::aws::{
    error_label, error_message, is_access_denied, is_throttling, with_fresh_credentials,
};
use crate::backoff::{Backoff, Curve, until_some};
use crate::batch::Flushed;

/// SQS batch calls take at most ten entries.
pub const MAX_BATCH: usize = 10;

/// Between `GetQueueUrl` attempts until the queue is found: 0.5 s, doubling up to 30 s. With equal
/// jitter, so that replicas do not retry in step.
const RESOLVE_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_millis(500),
    Duration::from_secs(30),
)
.with_jitter();

/// `DeleteMessageBatch` is tried this many times before its messages are given up on (they
/// come back after their visibility timeout).
const DELETE_ATTEMPTS: u32 = 3;
/// Between `DeleteMessageBatch` attempts: 200 ms, then 400 ms. With equal
/// jitter, so that replicas do not retry in step.
const DELETE_BACKOFF: Backoff = Backoff::fixed(
    Curve::Linear,
    Duration::from_millis(200),
    Duration::from_secs(1),
)
.with_jitter();

/// How a [`Queue::delete_batch`] ended.
#[derive(Debug)]
pub enum Deleted {
    /// SQS took a call: every entry deleted, or the failures reported one by one.
    Settled(Flushed),
    /// Every attempt failed (not for lack of permission); the failures are reported.
    Failed(Flushed),
    /// SQS denied the call (no `sqs:DeleteMessage`); `pending` were not deleted.
    Denied {
        pending: Vec<Receipt>,
        code: String,
        message: String,
    },
}

/// A message handle that can be deleted or have its visibility changed.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub message_id: String,
    pub handle: String,
}

impl Receipt {
    /// The receipt of a received message (SQS always sends both fields).
    pub fn of(message: &aws_sdk_sqs::types::Message) -> Option<Receipt> {
        Some(Receipt {
            message_id: message.message_id.clone()?,
            handle: message.receipt_handle.clone()?,
        })
    }
}

/// The attempt timeout of settling calls (deletes, releases, heartbeat extensions): an eighth
/// of the visibility timeout, from 1 to 5 s, so that the SDK's three attempts of one stalled
/// call end well within the heartbeat's margin (half the visibility timeout) and the next
/// extension still lands before SQS hands the message to another replica.
pub fn settle_attempt_timeout(visibility: Duration) -> Duration {
    (visibility / 8).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// The queue, its clients, and which optional calls are permitted.
pub struct Queue {
    /// For long polls: its attempt timeout is the wait time plus ten seconds.
    pub client: Client,
    /// For deletes and visibility changes: attempts bounded by [`settle_attempt_timeout`].
    settle_client: Client,
    /// For the forced refresh when AWS answers `ExpiredToken`.
    pub credentials: Refreshing,
    pub url: String,
    telemetry: Arc<SourceTelemetry>,
    visibility_allowed: AtomicBool,
}

impl Queue {
    /// Resolves the queue URL with `GetQueueUrl` (name and owner account from the ARN), retrying
    /// with backoff until it succeeds or `shutdown` fires (`None`).
    pub async fn resolve(
        client: Client,
        settle_client: Client,
        credentials: Refreshing,
        arn: &QueueArn,
        telemetry: Arc<SourceTelemetry>,
        shutdown: &CancellationToken,
    ) -> Option<Queue> {
        let url = until_some(RESOLVE_BACKOFF, shutdown, || async {
            let call = with_fresh_credentials(&credentials, || {
                client
                    .get_queue_url()
                    .queue_name(&arn.name)
                    .queue_owner_aws_account_id(&arn.account)
                    .send()
            });
            match call.await {
                Ok(output) => {
                    if output.queue_url.is_none() {
                        telemetry.sqs_error("GetQueueUrl", "other", "the answer has no queue URL");
                    }
                    output.queue_url
                }
                Err(err) => {
                    telemetry.sqs_error("GetQueueUrl", &error_label(&err), &error_message(&err));
                    None
                }
            }
        })
        .await?;
        Some(Queue {
            client,
            settle_client,
            credentials,
            url,
            telemetry,
            visibility_allowed: AtomicBool::new(true),
        })
    }

    pub fn telemetry(&self) -> &SourceTelemetry {
        &self.telemetry
    }

    pub fn visibility_allowed(&self) -> bool {
        self.visibility_allowed.load(Ordering::Relaxed)
    }

    /// Deletes up to ten messages in one call; entries that fail are reported one by one (their
    /// messages come back after the visibility timeout: a duplicate, never a loss). The call is
    /// tried again after an error, and so are the entries SQS failed through no fault of the
    /// sender (`SenderFault: false`), up to [`DELETE_ATTEMPTS`] in all. Every failed call is
    /// counted. A call denied for lack of permission ends at once with [`Deleted::Denied`] and
    /// the receipts still to delete: the caller decides what to do (see `settle`). Otherwise
    /// says what the attempts tell of SQS's capacity: `Throttled` if any was throttled,
    /// `Failed` if any failed otherwise.
    pub async fn delete_batch(&self, receipts: &[Receipt]) -> Deleted {
        // Entry ids are indices into `receipts`, on every attempt.
        let mut pending: Vec<usize> = (0..receipts.len()).collect();
        let mut attempt = 0;
        let mut feedback = Flushed::Done;
        loop {
            let entries: Vec<DeleteMessageBatchRequestEntry> = pending
                .iter()
                .filter_map(|&index| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(&receipts[index].handle)
                        .build()
                        .ok()
                })
                .collect();
            let result = with_fresh_credentials(&self.credentials, || {
                self.settle_client
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries.clone()))
                    .send()
            })
            .await;
            attempt += 1;
            let last = attempt >= DELETE_ATTEMPTS;
            match result {
                Ok(output) => {
                    self.telemetry.messages_deleted(output.successful.len());
                    let mut again = Vec::new();
                    for failed in &output.failed {
                        let index = failed.id.parse::<usize>().ok();
                        match index {
                            Some(index)
                                if !failed.sender_fault && !last && index < receipts.len() =>
                            {
                                again.push(index);
                            }
                            _ => self.telemetry.delete_failed(
                                entry_message_id(receipts, &failed.id),
                                &crate::aws::bounded_code(&failed.code),
                                failed.message.as_deref().unwrap_or(""),
                            ),
                        }
                    }
                    if again.is_empty() {
                        return Deleted::Settled(feedback);
                    }
                    // Failed on SQS's side: says as much as a failed call.
                    if feedback == Flushed::Done {
                        feedback = Flushed::Failed;
                    }
                    pending = again;
                }
                Err(err) => {
                    let (code, message) = (error_label(&err), error_message(&err));
                    self.telemetry
                        .sqs_error("DeleteMessageBatch", &code, &message);
                    if is_access_denied(&err) {
                        let pending = pending.iter().map(|&i| receipts[i].clone()).collect();
                        return Deleted::Denied {
                            pending,
                            code,
                            message,
                        };
                    }
                    feedback = worse(feedback, &code);
                    if last {
                        for &index in &pending {
                            self.telemetry.delete_failed(
                                &receipts[index].message_id,
                                &code,
                                &message,
                            );
                        }
                        return Deleted::Failed(feedback);
                    }
                }
            }
            tokio::time::sleep(DELETE_BACKOFF.delay(attempt)).await;
        }
    }

    /// Sets the visibility timeout of up to ten messages (each its own value). Returns the
    /// indices (in `changes`) of the changes that succeeded (none when visibility changes are
    /// off), or, when the call itself failed (reported here), what that says about SQS's
    /// capacity.
    pub async fn change_visibility_batch(
        &self,
        changes: &[(Receipt, Duration)],
        operation: &'static str,
    ) -> Result<Vec<usize>, Flushed> {
        if !self.visibility_allowed() || changes.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = changes
            .iter()
            .enumerate()
            .filter_map(|(index, (receipt, timeout))| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(&receipt.handle)
                    .visibility_timeout(visibility_seconds(*timeout))
                    .build()
                    .ok()
            })
            .collect();
        let result = with_fresh_credentials(&self.credentials, || {
            self.settle_client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries.clone()))
                .send()
        })
        .await;
        match result {
            Ok(output) => {
                for failed in &output.failed {
                    // Usually the message was deleted meanwhile, or hit SQS's 12-hour limit.
                    tracing::debug!(
                        message_id = entry_message_id(changes.iter().map(|(r, _)| r), &failed.id),
                        code = failed.code,
                        operation,
                        "visibility change refused for one message"
                    );
                }
                Ok(output
                    .successful
                    .iter()
                    .filter_map(|ok| ok.id.parse().ok())
                    .collect())
            }
            Err(err) if is_access_denied(&err) => {
                if self.visibility_allowed.swap(false, Ordering::Relaxed) {
                    self.telemetry
                        .feature_disabled("visibility_changes", "sqs:ChangeMessageVisibility");
                }
                Ok(Vec::new())
            }
            Err(err) => {
                let code = error_label(&err);
                self.telemetry
                    .sqs_error(operation, &code, &error_message(&err));
                Err(worse(Flushed::Done, &code))
            }
        }
    }
}

/// The worse of `so_far` and what an error with `code` says about SQS's capacity.
fn worse(so_far: Flushed, code: &str) -> Flushed {
    match so_far {
        Flushed::Throttled => so_far,
        _ if is_throttling(code) => Flushed::Throttled,
        _ => Flushed::Failed,
    }
}

/// Maps a batch entry id (its index) back to the message id.
fn entry_message_id<'a, I>(receipts: I, entry_id: &str) -> &'a str
where
    I: IntoIterator<Item = &'a Receipt>,
{
    entry_id
        .parse::<usize>()
        .ok()
        .and_then(|index| receipts.into_iter().nth(index))
        .map_or("unknown", |receipt| receipt.message_id.as_str())
}

/// SQS takes whole seconds, 0 to 43,200.
pub fn visibility_seconds(duration: Duration) -> i32 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.min(43_200) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_outweighs_failures() {
        assert_eq!(worse(Flushed::Done, "timeout"), Flushed::Failed);
        assert_eq!(worse(Flushed::Done, "RequestThrottled"), Flushed::Throttled);
        assert_eq!(worse(Flushed::Done, "http_429"), Flushed::Throttled);
        assert_eq!(
            worse(Flushed::Failed, "ThrottlingException"),
            Flushed::Throttled
        );
        assert_eq!(worse(Flushed::Throttled, "network"), Flushed::Throttled);
    }

    #[test]
    fn visibility_is_whole_seconds_within_sqs_range() {
        assert_eq!(visibility_seconds(Duration::ZERO), 0);
        assert_eq!(visibility_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(visibility_seconds(Duration::from_secs(30)), 30);
        assert_eq!(visibility_seconds(Duration::from_secs(100_000)), 43_200);
    }
}
