//! The S3 source: long-polls the SQS queue that receives a bucket's notifications, turns every
//! S3 record into a CloudEvent, POSTs it to the sink, and deletes a message only once the sink
//! accepted every event it carried (at-least-once: nothing is lost).
//!
//! Shape of the running source:
//!
//! ```text
//!  pollers (N) ──ReceiveMessage──▶ one task per message ──▶ sink (HTTP, retries, DLS)
//!       ▲ permits (maxInFlightMessages)       │ register/unregister      │ delete / release
//!       └─────────────────────────────────────┤                          ▼
//!                                  heartbeat (extends visibility)   settler (batched calls)
//! ```
//!
//! A poller only asks for as many messages as it has permits for, so every received message
//! starts at once and its visibility clock is never wasted waiting in a buffer; one slow message
//! holds one permit, never the other nine of its batch.

pub mod config;
pub mod fifo;
pub mod heartbeat;
pub mod notification;
pub mod overlap;
pub mod pollers;
pub mod process;
pub mod provision;
pub mod queue;
pub mod settle;
pub mod sink_address;
pub mod sqs_message;
pub mod supervisor;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use futures::FutureExt;
use http::Uri;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::aws::arn::QueueArn;
use crate::aws::credentials;
use crate::aws::{error_label, error_message, with_fresh_credentials};
use crate::backoff::{Backoff, Curve, until_some};
use crate::http::health::ReadyFlag;
use crate::http::sink::SinkClient;
use crate::sources::SourceError;
use crate::telemetry::Component;
use config::{Conversion, S3SourceConfig};
use heartbeat::InFlight;
use pollers::{Next, Pollers, Received};
use process::Context;
use queue::{Queue, visibility_seconds};
use settle::{DeleteGate, Settle, Settler};
use sink_address::SinkAddress;
use supervisor::Supervisor;
use telemetry::SourceTelemetry;

/// Runs the source until `shutdown` fires, then drains within `grace`: no new receives,
/// in-flight messages finish, pending deletes are flushed; what cannot finish in time is
/// released for other replicas.
pub async fn run(
    mut config: S3SourceConfig,
    ready: ReadyFlag,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), SourceError> {
    let name = config.metadata.name.clone();
    let component = Component::of(config.kind(), &config.metadata);
    // Credentials in the queue's region (or the default region until the queue is known).
    let region = config
        .queue
        .as_ref()
        .map_or_else(crate::aws::default_region, |q| q.region.clone());
    let credentials = credentials::for_component(&component, &config.auth, &region).await?;
    let telemetry = Arc::new(SourceTelemetry::new(
        config.kind(),
        &name,
        credentials.mode(),
    ));
    // The first credentials before the first call (a failure is logged and retried by the
    // background refresh), then refreshed in the background for as long as the source runs.
    let _ = credentials.refresh_now().await;
    let stop_credentials = CancellationToken::new();
    let _stop_credentials_on_return = stop_credentials.clone().drop_guard();
    tokio::spawn(credentials.clone().run(stop_credentials).in_current_span());
    // A sink (or dead-letter sink) given by `ref` is looked up first: until it is known the
    // source receives nothing, and it is not ready.
    let Some(namespace) = resolve_destinations(&mut config, &shutdown).await else {
        return Ok(()); // shut down first
    };
    let sink_address = SinkAddress::new(
        config.sink.clone(),
        config
            .sink_ref
            .clone()
            .map(|reference| (reference, namespace)),
    );
    let queue_arn = match config.queue.clone() {
        Some(arn) => arn,
        None => match provision_until_done(&config, &credentials, &shutdown).await {
            Some(arn) => arn,
            None => return Ok(()), // shut down first
        },
    };
    let sdk =
        crate::aws::sdk_config(&queue_arn.region, &credentials, config.endpoint.as_deref()).await;
    // Every call is bounded (so no shutdown can hang): a long poll may take its wait time
    // plus ten seconds.
    let long_poll = Duration::from_secs(config.receive.wait_time_seconds as u64 + 10);
    let client = crate::aws::sqs_client(&sdk, &component, long_poll);
    let settle_timeout = queue::settle_attempt_timeout(config.receive.visibility_timeout);
    let settle_client = crate::aws::sqs_client(&sdk, &component, settle_timeout);
    let resolved = Queue::resolve(
        client,
        settle_client,
        credentials,
        &queue_arn,
        telemetry.clone(),
        &shutdown,
    );
    let Some(queue) = resolved.await else {
        return Ok(()); // shut down before the queue was reachable
    };
    let queue = Arc::new(queue);
    telemetry.ready(&queue.url);
    ready.set(true);

    let in_flight = Arc::new(InFlight::new(telemetry.in_flight_gauge()));
    let deletes = Arc::new(DeleteGate::new(ready.clone()));
    let (settle, settler) =
        Settler::start(queue.clone(), in_flight.clone(), deletes.clone(), &name);
    let stop_heartbeat = CancellationToken::new();
    let heartbeat = config.receive.visibility_heartbeat.then(|| {
        tokio::spawn(
            heartbeat::run(
                in_flight.clone(),
                queue.clone(),
                config.receive.visibility_timeout,
                stop_heartbeat.clone(),
            )
            .in_current_span(),
        )
    });
    let ctx = Arc::new(Context {
        sink: SinkClient::new(config.delivery.clone())?,
        sink_address,
        queue_arn,
        config,
        telemetry: telemetry.clone(),
        settle,
        in_flight,
        hard_stop: CancellationToken::new(),
    });

    let tracker = TaskTracker::new();
    let receive = &ctx.config.receive;
    let batch = (receive.max_messages as usize).min(receive.max_in_flight_messages);
    let pollers = match receive.pollers {
        Some(pinned) => Pollers::new(pinned, pinned, pinned, telemetry.pollers_gauge()),
        None => {
            let ceiling = receive
                .max_in_flight_messages
                .div_ceil(batch)
                .min(MAX_POLLERS);
            Pollers::new(1, 1, ceiling, telemetry.pollers_gauge())
        }
    };
    let (grow, mut more_pollers) = mpsc::unbounded_channel();
    let shared = Arc::new(PollShared {
        permits: Arc::new(Semaphore::new(receive.max_in_flight_messages)),
        batch,
        pollers,
        grow,
        ctx: ctx.clone(),
        queue: queue.clone(),
        tracker: tracker.clone(),
        ready: ready.clone(),
        deletes,
        shutdown: shutdown.clone(),
    });
    let spawn = {
        let shared = shared.clone();
        move || poll(shared.clone()).boxed()
    };
    let mut pollers = Supervisor::new(
        spawn,
        ready.clone(),
        telemetry.poller_panics(),
        shutdown.clone(),
    );
    for _ in 0..shared.pollers.active() {
        pollers.start();
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = more_pollers.recv() => pollers.start(),
            Some(result) = pollers.ended() => pollers.handle(result),
        }
    }
    drop(shared);
    ready.set(false);
    // Everything below happens before `deadline`, whatever SQS or the sink do.
    let started = Instant::now();
    let deadline = started + grace;
    pollers.join_all().await;
    drop(pollers);
    tracker.close();
    // In-flight messages get nine tenths of the grace; the rest is for the final calls.
    let messages_deadline = started + grace.mul_f64(0.9);
    if timeout_at(messages_deadline, tracker.wait()).await.is_err() {
        tracing::warn!(
            in_flight = ctx.in_flight.len(),
            "grace period spent; releasing unfinished messages"
        );
        ctx.hard_stop.cancel();
        let _ = timeout_at(deadline, tracker.wait()).await;
    }
    stop_heartbeat.cancel();
    if let Some(heartbeat) = heartbeat {
        let _ = timeout_at(deadline, heartbeat).await;
    }
    // No message task is left to settle anything: close the settler, flush what is queued.
    if !settler.drain(deadline).await {
        tracing::warn!(
            "pending deletes not confirmed within the grace period; those messages will be delivered again"
        );
    }
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "source drained"
    );
    Ok(())
}

/// Between failed lookups of a `sink.ref`: 1 s, doubling up to 60 s, with equal jitter.
const RESOLVE_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_secs(1),
    Duration::from_secs(60),
)
.with_jitter();

/// Resolves `sink.ref` and `deadLetterSink.ref` through the Kubernetes API, retrying with
/// backoff until both are known; the namespace they were resolved in, or `None` if `shutdown`
/// fired first.
async fn resolve_destinations(
    config: &mut S3SourceConfig,
    shutdown: &CancellationToken,
) -> Option<String> {
    let namespace = config
        .metadata
        .namespace
        .clone()
        .or_else(crate::http::addressable::pod_namespace)
        .unwrap_or_else(|| "default".to_string());
    let shared: &S3SourceConfig = config;
    let (sink, dead_letter_sink) = until_some(RESOLVE_BACKOFF, shutdown, || async {
        resolve_both(shared, &namespace)
            .await
            .map_err(|err| {
                tracing::error!(
                    error = %err,
                    "cannot resolve the sink's ref; not receiving until it is known"
                )
            })
            .ok()
    })
    .await?;
    if let Some(sink) = sink {
        config.sink = sink;
    }
    if let Some(uri) = dead_letter_sink {
        config.delivery.dead_letter_sink = Some(uri);
        config.delivery.dead_letter_ref = None;
    }
    Some(namespace)
}

/// The addresses of `sink.ref` and `deadLetterSink.ref` (each `None` when there is no such ref).
async fn resolve_both(
    config: &S3SourceConfig,
    namespace: &str,
) -> Result<(Option<Uri>, Option<Uri>), String> {
    if config.sink_ref.is_none() && config.delivery.dead_letter_ref.is_none() {
        return Ok((None, None));
    }
    let cluster = crate::http::addressable::InCluster::from_env().map_err(|err| {
        let refs: Vec<String> = [
            config.sink_ref.as_ref(),
            config.delivery.dead_letter_ref.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|reference| reference.describe(namespace))
        .collect();
        format!("{}: {err}", refs.join(", "))
    })?;
    let mut sink = None;
    if let Some(reference) = &config.sink_ref {
        let uri = cluster.resolve(reference, namespace).await?;
        tracing::info!(sink = %uri, reference = reference.describe(namespace), "sink resolved");
        sink = Some(uri);
    }
    let mut dead_letter_sink = None;
    if let Some(reference) = &config.delivery.dead_letter_ref {
        let uri = cluster.resolve(reference, namespace).await?;
        tracing::info!(dead_letter_sink = %uri, reference = reference.describe(namespace), "dead-letter sink resolved");
        dead_letter_sink = Some(uri);
    }
    Ok((sink, dead_letter_sink))
}

/// Between provisioning attempts at start: 1 s, doubling up to 60 s. With equal
/// jitter, so that replicas do not retry in step.
const PROVISION_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_secs(1),
    Duration::from_secs(60),
)
.with_jitter();

/// Creates the source's queue and notification (no `destination`), retrying with backoff until
/// it works or `shutdown` fires (`None`).
async fn provision_until_done(
    config: &S3SourceConfig,
    credentials: &credentials::Refreshing,
    shutdown: &CancellationToken,
) -> Option<QueueArn> {
    until_some(PROVISION_BACKOFF, shutdown, || async {
        match provision::provision(config, credentials).await {
            Ok(provisioned) => {
                for change in &provisioned.changes {
                    tracing::info!(change, "provisioned");
                }
                Some(provisioned.queue)
            }
            Err(err) => {
                tracing::error!(
                    error = %err,
                    "cannot create the queue and bucket notification; retrying"
                );
                None
            }
        }
    })
    .await
}

/// How long a poller waits for more free slots before receiving with fewer than a batch.
const FILL_WAIT: Duration = Duration::from_millis(5);

/// Between failed `ReceiveMessage` calls: 0.5 s, doubling up to 30 s. With equal
/// jitter, so that replicas do not retry in step.
const RECEIVE_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_millis(500),
    Duration::from_secs(30),
)
.with_jitter();

/// The most concurrent long polls an adaptive source runs: 64 × 10 messages per 50 ms round
/// trip is 12,800 events/s, above this machine's CPU limit across regions too. Below it the
/// Little's-law bound in [`pollers`] keeps the count to what the rate needs (two at loopback
/// latency, where sixteen cost a quarter more CPU per event, BENCHMARKS.md).
const MAX_POLLERS: usize = 64;

/// What every poller of a source shares.
struct PollShared {
    ctx: Arc<Context>,
    queue: Arc<Queue>,
    /// In-flight slots (`maxInFlightMessages`).
    permits: Arc<Semaphore>,
    /// Messages asked for per receive, at most.
    batch: usize,
    pollers: Pollers,
    /// Asks `run` to start one more poller.
    grow: mpsc::UnboundedSender<()>,
    tracker: TaskTracker,
    ready: ReadyFlag,
    /// Closed while SQS denies deletes: then nobody receives.
    deletes: Arc<DeleteGate>,
    shutdown: CancellationToken,
}

/// One long-poller, until shutdown or until the controller finds it is not needed.
async fn poll(shared: Arc<PollShared>) {
    if poll_until_stopped(&shared).await == Ended::Shutdown {
        shared.pollers.stopped();
    }
}

#[derive(PartialEq, Eq)]
enum Ended {
    Shutdown,
    /// Counted out by the controller already.
    NotNeeded,
}

/// Reserve capacity, receive, hand each message to its own task; then ask the controller
/// whether the queue wants more pollers, or fewer.
async fn poll_until_stopped(shared: &PollShared) -> Ended {
    let PollShared {
        ctx,
        queue,
        permits,
        tracker,
        ready,
        deletes,
        shutdown,
        batch,
        ..
    } = shared;
    let batch = *batch;
    let receive = &ctx.config.receive;
    // An S3 notification needs three system attributes; a plain message is handed on whole
    // (TriggerMesh's message object), its attributes too.
    let (system_attributes, message_attributes) = match ctx.config.conversion {
        Conversion::S3Notifications => (
            vec![
                MessageSystemAttributeName::SentTimestamp,
                MessageSystemAttributeName::ApproximateReceiveCount,
                MessageSystemAttributeName::AwsTraceHeader,
            ],
            None,
        ),
        Conversion::SqsMessages(_) => (
            vec![MessageSystemAttributeName::All],
            Some(vec!["All".to_string()]),
        ),
    };
    let mut failures = 0u32;
    loop {
        // Messages received now could not be deleted: wait until deletes work again.
        if !deletes.is_open() {
            tokio::select! {
                () = deletes.opened() => {},
                () = shutdown.cancelled() => return Ended::Shutdown,
            }
        }
        // Wait for one free slot, then take as many more as are free (up to a batch): ask SQS
        // for only what can start at once, without waiting for a whole batch to be free.
        let mut reserved = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ended::Shutdown,
            },
            () = shutdown.cancelled() => return Ended::Shutdown,
        };
        // Under load slots free up one by one: waiting a moment for a fuller batch saves
        // ReceiveMessage calls (SQS bills per request) without letting a slow message hold
        // the others back for longer than FILL_WAIT.
        let fill_until = Instant::now() + FILL_WAIT;
        while reserved.num_permits() < batch {
            let more = match permits.clone().try_acquire_owned() {
                Ok(more) => more,
                Err(_) => match timeout_at(fill_until, permits.clone().acquire_owned()).await {
                    Ok(Ok(more)) => more,
                    _ => break,
                },
            };
            reserved.merge(more);
        }
        let wanted = reserved.num_permits() as i32;
        let started = Instant::now();
        let call = with_fresh_credentials(&queue.credentials, || {
            queue
                .client
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(wanted)
                .wait_time_seconds(receive.wait_time_seconds)
                .visibility_timeout(visibility_seconds(receive.visibility_timeout))
                .set_message_system_attribute_names(Some(system_attributes.clone()))
                .set_message_attribute_names(message_attributes.clone())
                .send()
        });
        // Dropping a long poll on shutdown is safe: messages it would have returned stay in
        // the queue (at worst hidden for one visibility timeout).
        let result = tokio::select! {
            biased;
            result = call => result,
            () = shutdown.cancelled() => return Ended::Shutdown,
        };
        let received = Instant::now();
        let messages = match result {
            Ok(output) => {
                failures = 0;
                if deletes.is_open() {
                    ready.set(true);
                }
                output.messages.unwrap_or_default()
            }
            Err(err) => {
                failures += 1;
                ctx.telemetry
                    .sqs_error("ReceiveMessage", &error_label(&err), &error_message(&err));
                if failures >= 3 {
                    ready.set(false);
                }
                drop(reserved);
                tokio::select! {
                    () = tokio::time::sleep(RECEIVE_BACKOFF.delay(failures)) => continue,
                    () = shutdown.cancelled() => return Ended::Shutdown,
                }
            }
        };
        ctx.telemetry.messages_received(messages.len());
        let got = messages.len();
        let empty = messages.is_empty();
        let mut started_now = Vec::with_capacity(messages.len());
        for message in messages {
            // SQS never returns more than asked for; should it, the extra waits for a slot.
            let permit = match reserved.split(1) {
                Some(permit) => permit,
                None => match permits.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return Ended::Shutdown,
                },
            };
            if shutdown.is_cancelled() {
                // Received but not started: make it visible to other replicas at once.
                release_now(ctx, &message).await;
                drop(permit);
                continue;
            }
            started_now.push((message, permit));
        }
        drop(reserved);
        if ctx.queue_arn.is_fifo() {
            // One task per message group, its messages in order (see `fifo`).
            for group in fifo::by_group(started_now) {
                tracker.spawn(fifo::process_group(ctx.clone(), group, received).in_current_span());
            }
        } else {
            for (message, permit) in started_now {
                tracker.spawn(
                    process::process(ctx.clone(), message, received, permit).in_current_span(),
                );
            }
        }
        let outcome = Received {
            asked: wanted as usize,
            got,
            batch,
            latency: received - started,
            capacity_free: permits.available_permits() > 0,
        };
        match shared.pollers.after_receive(outcome, received) {
            Next::Grow => {
                let _ = shared.grow.send(());
            }
            Next::Stop => return Ended::NotNeeded,
            Next::Continue => {}
        }
        if empty && receive.wait_time_seconds == 0 {
            // Short polling: do not turn an empty queue into a tight (and billed) loop.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {},
                () = shutdown.cancelled() => return Ended::Shutdown,
            }
        }
    }
}

async fn release_now(ctx: &Context, message: &aws_sdk_sqs::types::Message) {
    if let Some(receipt) = queue::Receipt::of(message) {
        ctx.settle
            .send(Settle::Release {
                receipt,
                delay: Duration::ZERO,
                reason: "shutdown",
            })
            .await;
    }
}
