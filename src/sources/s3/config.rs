//! `AWSS3Source` manifests: TriggerMesh's fields plus our documented options for receiving,
//! delivery and event encoding.
//!
//! ```yaml
//! spec:
//!   arn: arn:aws:s3:::media-uploads                      # required: the bucket
//!   eventTypes: ["s3:ObjectCreated:*"]                   # optional: default, every event
//!   destination: { sqs: { queueARN: arn:aws:sqs:... } }  # optional: provisioned when absent
//!   auth: { credentials: {...} }                         # optional: default chain otherwise
//!   sink: { uri: http://broker/ }                        # required
//!   delivery:                                            # optional, Knative's shape
//!     retry: 5
//!     backoffPolicy: exponential                         # or linear
//!     backoffDelay: PT0.5S
//!     backoffMaxDelay: PT30S                             # ours: ceiling of one wait
//!     timeout: PT30S                                     # one attempt
//!     deadLetterSink: { uri: http://dead-letters/ }
//!   eventEncoding: binary                                # or structured
//!   forwardTestEvents: false                             # forward s3:TestEvent as com.amazon.s3.testevent
//!   forwardUnrecognized: true                            # forward other bodies as com.amazon.sqs.message
//!   receive:
//!     pollers: 4                                         # pins the concurrent long polls (default: adaptive)
//!     maxMessages: 10                                    # per ReceiveMessage, 1-10
//!     waitTimeSeconds: 20                                # long-poll wait, 0-20
//!     visibilityTimeout: 30s                             # asked for on every receive
//!     maxInFlightMessages: 1000                          # messages processed at once
//!     visibilityHeartbeat: true                          # extend visibility while in flight
//!     redeliveryDelay: 10s                               # first delay of a failed message
//!     maxRedeliveryDelay: 15m                            # ceiling of the growing delay
//! ```

use std::time::Duration;

use http::Uri;

use crate::aws::arn::{BucketArn, QueueArn};
use crate::cloudevents::Encoding;
use crate::config::LoadOptions;
use crate::config::auth::{self, Auth};
use crate::config::common::{self, Delivery, DestinationRef, Metadata};
use crate::config::decode::{Obj, Problems};

/// The kind name used in metric labels and logs.
pub const COMPONENT: &str = "awss3source";
/// The kind name of an `AWSSQSSource`, which runs on the same machinery.
pub const SQS_COMPONENT: &str = "awssqssource";

/// How a message becomes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// An `AWSS3Source`: S3 notifications (records, SNS-wrapped, EventBridge, test events).
    S3Notifications,
    /// An `AWSSQSSource`: every message, by its `messageProcessor`.
    SqsMessages(Processor),
}

/// An `AWSSQSSource`'s `spec.messageProcessor` (TriggerMesh's names and behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    /// One `com.amazon.sqs.message` event per message, the message object as data.
    Default,
    /// S3 notifications as the S3 source reads them; other bodies as `Default`.
    S3,
    /// EventBridge events as `com.amazon.events.event`; other bodies as `Default`.
    EventBridge,
}

impl Processor {
    /// TriggerMesh's names: `default`, `s3`, `eventbridge`.
    pub fn from_name(name: &str) -> Result<Processor, String> {
        match name {
            "default" => Ok(Processor::Default),
            "s3" => Ok(Processor::S3),
            "eventbridge" => Ok(Processor::EventBridge),
            other => Err(format!(
                "expected \"default\", \"s3\" or \"eventbridge\", found {other:?}"
            )),
        }
    }
}

/// `spec.receive`: how the queue is polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receive {
    /// Concurrent long polls, when pinned; `None`: as many as the queue needs (see
    /// [`super::pollers`]), from one up to one per batch of `max_in_flight_messages`.
    pub pollers: Option<usize>,
    pub max_messages: i32,
    pub wait_time_seconds: i32,
    pub visibility_timeout: Duration,
    pub max_in_flight_messages: usize,
    pub visibility_heartbeat: bool,
    pub redelivery_delay: Duration,
    pub max_redelivery_delay: Duration,
}

impl Default for Receive {
    fn default() -> Self {
        Receive {
            pollers: None,
            max_messages: 10,
            wait_time_seconds: 20,
            visibility_timeout: Duration::from_secs(30),
            // Enough for this machine's CPU limit (~8,000 events/s) at 50 ms SQS latency, where
            // each message holds its slot for about one receive and one delivery (README).
            max_in_flight_messages: 1000,
            visibility_heartbeat: true,
            redelivery_delay: Duration::from_secs(10),
            max_redelivery_delay: Duration::from_secs(900),
        }
    }
}

/// A decoded `AWSS3Source`.
#[derive(Debug, Clone)]
pub struct S3SourceConfig {
    pub metadata: Metadata,
    /// The bucket (`spec.arn`); unknown in TriggerMesh's environment-variable mode, which
    /// names only the queue.
    pub bucket: Option<BucketArn>,
    /// `spec.eventTypes`; empty means every event.
    pub event_types: Vec<String>,
    /// The queue S3 notifies; `None`: created and wired on the user's behalf (see
    /// [`super::provision`]).
    pub queue: Option<QueueArn>,
    pub auth: Auth,
    /// With `sink_ref`, a placeholder until [`super::run`] resolves the reference.
    pub sink: Uri,
    /// `spec.sink.ref`: the Addressable whose URL is the sink.
    pub sink_ref: Option<DestinationRef>,
    pub delivery: Delivery,
    pub encoding: Encoding,
    pub forward_test_events: bool,
    pub forward_unrecognized: bool,
    pub receive: Receive,
    /// `spec.endpoint.url`: where this component's SQS and S3 calls go (before
    /// `AWS_ENDPOINT_URL*`).
    pub endpoint: Option<String>,
    pub conversion: Conversion,
    /// TriggerMesh's `CE_SOURCE` / `CE_TYPE` (environment-variable mode of the SQS source):
    /// the source and type of events made from plain messages, instead of the queue ARN and
    /// `com.amazon.sqs.message`.
    pub event_source: Option<String>,
    pub event_type: Option<String>,
}

impl S3SourceConfig {
    /// The kind name of metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self.conversion {
            Conversion::S3Notifications => COMPONENT,
            Conversion::SqsMessages(_) => SQS_COMPONENT,
        }
    }
}

/// The fields every queue-consuming source shares: `sink`, `delivery` (with the sink's CA
/// certificates) and `eventEncoding`.
pub fn decode_sink_and_delivery(
    spec: &mut Obj<'_>,
    problems: &mut Problems,
) -> (Option<common::Destination>, Delivery, Encoding) {
    let sink = match spec.require("sink", problems) {
        Some((value, path)) => common::destination(value, &path, problems),
        None => None,
    };
    let mut delivery = common::delivery(spec, problems);
    if let Some(sink) = &sink {
        delivery.ca_certs.extend(sink.ca_certs.clone());
    }
    let encoding = match spec.string("eventEncoding", problems).as_deref() {
        None | Some("binary") => Encoding::Binary,
        Some("structured") => Encoding::Structured,
        Some(other) => {
            problems.add(
                &spec.path_of("eventEncoding"),
                format!("expected \"binary\" or \"structured\", found {other:?}"),
            );
            Encoding::Binary
        }
    };
    (sink, delivery, encoding)
}

/// SQS accepts visibility timeouts up to 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(43_200);

impl S3SourceConfig {
    pub fn decode(
        doc: &mut Obj<'_>,
        options: &LoadOptions,
        problems: &mut Problems,
    ) -> Option<Self> {
        let metadata = common::metadata(doc, problems);
        let mut spec = doc.require_obj("spec", problems)?;

        let bucket = spec.require_parsed::<BucketArn>("arn", problems);
        let event_types = spec.strings("eventTypes", problems).unwrap_or_default();
        for (index, pattern) in event_types.iter().enumerate() {
            if !pattern.starts_with("s3:") && pattern != "*" {
                problems.add(
                    &format!("{}[{index}]", spec.path_of("eventTypes")),
                    format!("expected an S3 event type such as \"s3:ObjectCreated:*\", found {pattern:?}"),
                );
            }
        }
        let queue = decode_destination(&mut spec, problems);
        let auth = auth::decode(&mut spec, options, problems);
        let endpoint = common::endpoint(&mut spec, problems);
        let (sink, delivery, encoding) = decode_sink_and_delivery(&mut spec, problems);
        let forward_test_events = spec.bool("forwardTestEvents", problems).unwrap_or(false);
        let forward_unrecognized = spec.bool("forwardUnrecognized", problems).unwrap_or(true);
        let receive = decode_receive(&mut spec, problems);
        // TriggerMesh's Kubernetes-only deployment options: accepted, meaningless here.
        spec.get("adapterOverrides");
        spec.finish(problems);

        Some(S3SourceConfig {
            metadata: metadata?,
            bucket: Some(bucket?),
            event_types,
            queue: queue?,
            auth: auth?,
            endpoint,
            sink_ref: sink.as_ref().and_then(|s| s.reference.clone()),
            sink: sink?.uri,
            delivery,
            encoding,
            forward_test_events,
            forward_unrecognized,
            receive,
            conversion: Conversion::S3Notifications,
            event_source: None,
            event_type: None,
        })
    }
}

/// `destination.sqs.queueARN`: `Some(Some(arn))` for an existing queue, `Some(None)` when
/// absent (the queue is provisioned), `None` when broken (already reported).
fn decode_destination(spec: &mut Obj<'_>, problems: &mut Problems) -> Option<Option<QueueArn>> {
    let Some(mut destination) = spec.obj("destination", problems) else {
        return if spec.has("destination") {
            None
        } else {
            Some(None)
        };
    };
    let sqs = destination.require_obj("sqs", problems);
    destination.finish(problems);
    let mut sqs = sqs?;
    let queue = sqs.require_parsed::<QueueArn>("queueARN", problems);
    let path = sqs.path_of("queueARN");
    sqs.finish(problems);
    let queue = queue?;
    if queue.is_fifo() {
        // S3 cannot notify FIFO queues.
        problems.add(&path, "S3 event notifications cannot target a FIFO queue");
    }
    Some(Some(queue))
}

/// A `visibilityTimeout` field (ours under `receive`, TriggerMesh's under `receiveOptions`):
/// what SQS accepts, 1 second to 12 hours.
pub fn visibility_timeout(obj: &mut Obj<'_>, problems: &mut Problems) -> Option<Duration> {
    let timeout = obj.duration("visibilityTimeout", problems)?;
    if timeout < Duration::from_secs(1) || timeout > MAX_VISIBILITY {
        problems.add(
            &obj.path_of("visibilityTimeout"),
            "must be from 1 second to 12 hours",
        );
        return None;
    }
    Some(timeout)
}

/// `spec.receive`, our options of the poll loop.
pub fn decode_receive(spec: &mut Obj<'_>, problems: &mut Problems) -> Receive {
    let mut out = Receive::default();
    let Some(mut receive) = spec.obj("receive", problems) else {
        return out;
    };
    if let Some(n) = receive.integer("pollers", 1, 64, problems) {
        out.pollers = Some(n as usize);
    }
    if let Some(n) = receive.integer("maxMessages", 1, 10, problems) {
        out.max_messages = n as i32;
    }
    if let Some(n) = receive.integer("waitTimeSeconds", 0, 20, problems) {
        out.wait_time_seconds = n as i32;
    }
    if let Some(d) = visibility_timeout(&mut receive, problems) {
        out.visibility_timeout = d;
    }
    if let Some(n) = receive.integer("maxInFlightMessages", 1, 10_000, problems) {
        out.max_in_flight_messages = n as usize;
    }
    if let Some(b) = receive.bool("visibilityHeartbeat", problems) {
        out.visibility_heartbeat = b;
    }
    if let Some(d) = receive.duration("redeliveryDelay", problems) {
        out.redelivery_delay = d.min(MAX_VISIBILITY);
    }
    if let Some(d) = receive.duration("maxRedeliveryDelay", problems) {
        out.max_redelivery_delay = d.min(MAX_VISIBILITY);
    }
    receive.finish(problems);
    out
}
