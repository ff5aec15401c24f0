//! FIFO queues: the messages of one `MessageGroupId` reach the sink in order, one after
//! another, while different groups go in parallel.
//!
//! SQS does most of it: while a message of a group is in flight, it returns no other message of
//! that group, to any poller. What is left to us is the order *within* one receive, which may
//! hold several messages of a group: they are handed to one task per group that processes them
//! in turn. When one is not done with (its event failed and it goes back to the queue), the
//! group's later messages of that receive go back too, unprocessed, with the same delay, so a
//! failure holds back its own group, never another.
//!
//! SQS hands out the failed one first because the group is locked while a message of it is in
//! flight: the later ones wait however they were released, and the shared delay costs nothing.
//! It matters where that lock is weaker: LocalStack 4.13 unlocks a group as soon as any of its
//! messages is visible again, and with the later ones released at once it delivered them
//! first. With the same delay they become visible together with the failed one (their calls
//! may still be milliseconds apart, in separate batches), not a whole delay before it.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::heartbeat::InFlightGuard;
use super::process::{Context, process_registered, register};
use super::queue::Receipt;
use super::settle::Settle;

/// The messages of one receive by group, each group in the order SQS returned it, the groups
/// in the order of their first message.
pub fn by_group<T>(messages: Vec<(Message, T)>) -> Vec<Vec<(Message, T)>> {
    type Group<T> = (Option<String>, Vec<(Message, T)>);
    let mut groups: Vec<Group<T>> = Vec::new();
    for (message, extra) in messages {
        let group = message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned();
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push((message, extra)),
            None => groups.push((group, vec![(message, extra)])),
        }
    }
    groups.into_iter().map(|(_, members)| members).collect()
}

/// Processes one group's messages of a receive in order; see the module doc for a failure.
pub async fn process_group(
    ctx: Arc<Context>,
    group: Vec<(Message, OwnedSemaphorePermit)>,
    received: Instant,
) {
    // All registered at once: the later ones stay hidden (the heartbeat) while they wait.
    let registered: Vec<_> = group
        .into_iter()
        .filter_map(|(message, permit)| {
            register(&ctx, &message, received).map(|registration| (message, registration, permit))
        })
        .collect();
    // Without the heartbeat (switched off, or visibility changes denied) the later messages
    // are hidden only until their first visibility timeout: SQS may hand them to another
    // poller after that. Such a message is not started; it goes back with the rest.
    let extended = ctx.config.receive.visibility_heartbeat && ctx.settle.visibility_allowed();
    let hidden_until = received + ctx.config.receive.visibility_timeout.mul_f64(0.9);
    let mut waiting = registered.into_iter();
    while let Some((message, registration, permit)) = waiting.next() {
        let delay = if !extended && Instant::now() >= hidden_until {
            release_behind(&ctx, registration, permit, Duration::ZERO).await;
            Duration::ZERO
        } else {
            match process_registered(ctx.clone(), message, registration, permit).await {
                None => continue,
                Some(delay) => delay,
            }
        };
        for (_, registration, permit) in waiting.by_ref() {
            release_behind(&ctx, registration, permit, delay).await;
        }
    }
}

/// Gives a message that waited behind its group back to the queue unprocessed, visible again
/// after `delay` (the delay of the message it waited behind).
async fn release_behind(
    ctx: &Context,
    (receipt, guard): (Receipt, InFlightGuard),
    permit: OwnedSemaphorePermit,
    delay: Duration,
) {
    drop(guard);
    ctx.settle
        .send(Settle::Release {
            receipt,
            delay,
            reason: "fifo_order",
        })
        .await;
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, group: &str) -> (Message, ()) {
        let message = Message::builder()
            .message_id(id)
            .attributes(MessageSystemAttributeName::MessageGroupId, group)
            .build();
        (message, ())
    }

    #[test]
    fn groups_keep_the_order_of_the_receive() {
        let groups = by_group(vec![
            message("a1", "A"),
            message("b1", "B"),
            message("a2", "A"),
            message("c1", "C"),
            message("b2", "B"),
            message("a3", "A"),
        ]);
        let ids: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|(m, _)| m.message_id().unwrap()).collect())
            .collect();
        assert_eq!(ids, [vec!["a1", "a2", "a3"], vec!["b1", "b2"], vec!["c1"]]);
    }
}
