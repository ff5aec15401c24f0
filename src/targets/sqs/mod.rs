//! The SQS target: CloudEvents → messages in a queue.
//!
//! The message body is the whole event in structured JSON, or only `data` with
//! `discardCloudEventContext` (the context then travels in message attributes). FIFO queues get
//! the configured group id and a deduplication id derived from the event's `source` and `id`, so
//! an event posted twice within SQS's five-minute window is stored once. Entries from all
//! requests are coalesced into `SendMessageBatch` calls by the crate's batcher ([`crate::batch`]);
//! on shutdown [`SqsTarget::drain`] sends what it accepted before the process exits.

pub mod batch;
pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use cloudevents::{AttributesReader, Event};
use futures::future::join_all;
use http::StatusCode;
use tokio::sync::{RwLock, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Outcome, TargetError, record_aws_error};
use crate::aws::credentials::{self, Refreshing};
use crate::aws::{error_label, error_message, with_fresh_credentials};
use crate::batch::{self as batching, Batcher};
use crate::cloudevents::inbound::InboundEvent;
use crate::http::health::ReadyFlag;
use crate::telemetry::Component;
use batch::{Pending, Sends};
use config::{COMPONENT, SqsTargetConfig};

/// Used until the queue's `MaximumMessageSize` is known (and when reading it is not allowed).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS allows at most ten message attributes.
const MAX_ATTRIBUTES: usize = 10;

/// One message to send.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// The `AWSTraceHeader` system attribute: the event's trace, one hop on.
    pub trace_header: Option<String>,
}

impl Message {
    /// Size as SQS counts it: body plus attribute names, types and values.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }

    pub fn attribute_values(&self) -> Option<HashMap<String, MessageAttributeValue>> {
        if self.attributes.is_empty() {
            return None;
        }
        Some(
            self.attributes
                .iter()
                .filter_map(|(name, value)| {
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .ok()
                        .map(|v| (name.clone(), v))
                })
                .collect(),
        )
    }
}

/// The queue as the target uses it; shared with the batcher.
pub struct Queue {
    pub client: aws_sdk_sqs::Client,
    pub credentials: Refreshing,
    pub config: SqsTargetConfig,
    url: RwLock<Option<String>>,
    pub max_message_bytes: AtomicUsize,
}

impl Queue {
    /// The queue URL, resolved with `GetQueueUrl` on first need.
    pub async fn url(&self) -> Result<String, TargetError> {
        if let Some(url) = self.url.read().await.clone() {
            return Ok(url);
        }
        let arn = &self.config.queue;
        let result = with_fresh_credentials(&self.credentials, || {
            self.client
                .get_queue_url()
                .queue_name(&arn.name)
                .queue_owner_aws_account_id(&arn.account)
                .send()
        })
        .await;
        match result {
            Ok(output) => match output.queue_url.filter(|url| !url.is_empty()) {
                Some(url) => {
                    *self.url.write().await = Some(url.clone());
                    Ok(url)
                }
                // Never cached: the next request asks again.
                None => {
                    record_aws_error(
                        COMPONENT,
                        &self.config.metadata.name,
                        "GetQueueUrl",
                        "other",
                        "the answer has no queue URL",
                    );
                    Err(TargetError::new(
                        StatusCode::BAD_GATEWAY,
                        "GetQueueUrl answered without a queue URL",
                    ))
                }
            },
            Err(err) => {
                record_aws_error(
                    COMPONENT,
                    &self.config.metadata.name,
                    "GetQueueUrl",
                    &error_label(&err),
                    &crate::aws::error_message(&err),
                );
                Err(TargetError::from_aws("GetQueueUrl", &err))
            }
        }
    }

    /// Reads `MaximumMessageSize`; keeps the default when not permitted.
    async fn read_max_size(&self, url: &str) {
        let result = with_fresh_credentials(&self.credentials, || {
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::MaximumMessageSize)
                .send()
        })
        .await;
        match result {
            Ok(output) => {
                if let Some(size) = output
                    .attributes
                    .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize).cloned())
                    .and_then(|v| v.parse::<usize>().ok())
                {
                    self.max_message_bytes.store(size, Ordering::Relaxed);
                }
            }
            Err(err) => tracing::info!(
                error = %error_message(&err),
                "cannot read the queue's MaximumMessageSize (sqs:GetQueueAttributes); assuming 256 KiB"
            ),
        }
    }
}

pub struct SqsTarget {
    queue: Arc<Queue>,
    batcher: batching::Sender<Pending>,
    /// The batcher's handle: its explicit drain.
    batching: Batcher,
    /// The component's span (`start` runs in it), entered by request handling too.
    span: tracing::Span,
}

impl SqsTarget {
    /// Builds the target and starts its batcher (at most `max_calls` `SendMessageBatch` calls
    /// in flight: `--max-concurrent-requests`); readiness is raised once the queue URL is
    /// known (retried in the background until then).
    /// `stop` ends its background tasks (the credentials' refresh, the readiness probe):
    /// cancel it only once the target has drained, so its last sends have fresh credentials.
    pub async fn start(
        config: SqsTargetConfig,
        ready: ReadyFlag,
        stop: CancellationToken,
        max_calls: usize,
    ) -> Result<Arc<SqsTarget>, super::StartError> {
        let component = Component::of(COMPONENT, &config.metadata);
        let credentials =
            credentials::for_component(&component, &config.auth, &config.queue.region).await?;
        // The first fetch happens in the background, like every later one: `start` (and so
        // the HTTP server, /healthz and SIGTERM) never waits for STS. Until it succeeds the
        // readiness probe fails and `/readyz` says so.
        tokio::spawn(credentials.clone().run(stop.clone()).in_current_span());
        let sdk = crate::aws::sdk_config(
            &config.queue.region,
            &credentials,
            config.endpoint.as_deref(),
        )
        .await;
        let client = crate::aws::sqs_client(&sdk, &component, Duration::from_secs(10));
        let queue = Arc::new(Queue {
            client,
            credentials,
            config,
            url: RwLock::new(None),
            max_message_bytes: AtomicUsize::new(DEFAULT_MAX_MESSAGE_BYTES),
        });
        let options = batch::options(&queue.config.metadata.name, max_calls);
        let (batcher, batching) = Batcher::start(Sends(queue.clone()), options);
        let probe = queue.clone();
        tokio::spawn(
            async move {
                let arn = probe.config.queue.to_string();
                // Its first call waits for its first credentials (never for long: STS fetches
                // time out), so that it is not refused for keys not loaded yet.
                probe.credentials.first_fetch().await;
                super::become_ready(&arn, ready, stop, || async {
                    let url = probe.url().await?;
                    probe.read_max_size(&url).await;
                    Ok(())
                })
                .await
            }
            .in_current_span(),
        );
        Ok(Arc::new(SqsTarget {
            queue,
            batcher,
            batching,
            span: tracing::Span::current(),
        }))
    }

    pub fn name(&self) -> &str {
        &self.queue.config.metadata.name
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    pub fn arn(&self) -> String {
        self.queue.config.queue.to_string()
    }

    /// Stops accepting messages (a request from now on gets 503 "shutting down"), sends those
    /// accepted, and waits for their calls; `false` if they did not return by `deadline`.
    pub async fn drain(&self, deadline: Instant) -> bool {
        self.batching.drain(deadline).await
    }

    /// Sends every event as one message; the batcher groups them with other requests'.
    pub async fn write(&self, events: Vec<InboundEvent>) -> Vec<Outcome> {
        let sends = events.into_iter().map(|event| async move {
            let message = to_message(&self.queue.config, &event)?;
            let limit = self.queue.max_message_bytes.load(Ordering::Relaxed);
            if message.size() > limit {
                return Err(TargetError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the message would be {} bytes; the queue takes at most {limit}",
                        message.size()
                    ),
                ));
            }
            let (reply, answer) = oneshot::channel();
            // Refused after the drain began, or dropped unanswered by a stopped batcher.
            let shutting_down =
                || TargetError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
            self.batcher
                .submit(Pending { message, reply })
                .await
                .map_err(|_| shutting_down())?;
            answer.await.unwrap_or_else(|_| Err(shutting_down()))
        });
        join_all(sends).await
    }
}

/// The SQS message for an event (§3 of the reference).
pub fn to_message(config: &SqsTargetConfig, event: &InboundEvent) -> Result<Message, TargetError> {
    let (body, attributes) = if config.discard_context {
        (
            data_as_text(event)?,
            context_attributes(event.attributes())?,
        )
    } else {
        // JSON throughout: attributes are strings, JSON data is spliced in as received.
        let body = String::from_utf8(event.to_structured()).map_err(|_| {
            TargetError::new(StatusCode::BAD_REQUEST, "the event is not UTF-8 text")
        })?;
        (body, Vec::new())
    };
    if body.is_empty() {
        return Err(TargetError::new(
            StatusCode::BAD_REQUEST,
            "the event has no data, and SQS messages cannot be empty",
        ));
    }
    let fifo = config.queue.is_fifo();
    Ok(Message {
        body,
        attributes,
        group_id: config.message_group_id.clone().filter(|_| fifo),
        deduplication_id: fifo.then(|| deduplication_id(event.attributes())),
        trace_header: event
            .trace_parent()
            .map(|trace| trace.next_hop().to_aws_trace_header()),
    })
}

/// Same `source` and `id` — the same event, per the CloudEvents spec — same id.
pub fn deduplication_id(event: &Event) -> String {
    super::event_identity_hash(event)
}

/// The data as the message body, byte for byte: SQS bodies are text, so bytes must be UTF-8.
fn data_as_text(event: &InboundEvent) -> Result<String, TargetError> {
    let bytes = event.data().map(|data| data.as_bytes()).unwrap_or_default();
    String::from_utf8(bytes.to_vec()).map_err(|_| {
            TargetError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "binary data that is not UTF-8 text cannot be an SQS message body; send it without discardCloudEventContext",
            )
        })
}

/// The event's context as message attributes `ce-<name>` (and `content-type`): the context
/// attributes first, then the extensions by name. SQS takes at most ten message attributes;
/// an event with more is refused (400) with the names that do not fit, never cut silently.
fn context_attributes(event: &Event) -> Result<Vec<(String, String)>, TargetError> {
    let mut attributes: Vec<(String, String)> = event
        .iter_attributes()
        .filter(|(name, _)| *name != "datacontenttype")
        .map(|(name, value)| (format!("ce-{name}"), value.to_string()))
        .collect();
    if let Some(content_type) = event.datacontenttype() {
        attributes.push(("content-type".into(), content_type.to_string()));
    }
    let mut extensions: Vec<(String, String)> = event
        .iter_extensions()
        .map(|(name, value)| (format!("ce-{name}"), value.to_string()))
        .collect();
    extensions.sort();
    attributes.extend(extensions);
    if attributes.len() > MAX_ATTRIBUTES {
        let left_out: Vec<&str> = attributes[MAX_ATTRIBUTES..]
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        return Err(TargetError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "with discardCloudEventContext the event's context goes into SQS message attributes, \
                 and SQS takes at most {MAX_ATTRIBUTES}: this event needs {}, so {} would not fit \
                 (send fewer extensions, or use a target without discardCloudEventContext)",
                attributes.len(),
                left_out.join(", ")
            ),
        ));
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auth::Auth;
    use crate::config::common::Metadata;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn config(queue: &str, discard: bool, group: Option<&str>) -> SqsTargetConfig {
        SqsTargetConfig {
            metadata: Metadata {
                name: "q".into(),
                namespace: None,
            },
            queue: format!("arn:aws:sqs:us-east-1:123456789012:{queue}")
                .parse()
                .unwrap(),
            discard_context: discard,
            message_group_id: group.map(str::to_string),
            auth: Auth::default(),
            endpoint: None,
        }
    }

    fn event(id: &str) -> InboundEvent {
        EventBuilderV10::new()
            .id(id)
            .source("https://example.com/orders")
            .ty("order.created")
            .subject("o-1")
            .data("application/json", serde_json::json!({"total": 3}))
            .build()
            .unwrap()
            .into()
    }

    #[test]
    fn structured_body_by_default() {
        let message = to_message(&config("orders", false, None), &event("1")).unwrap();
        let body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(body["id"], "1");
        assert_eq!(body["data"]["total"], 3);
        assert!(message.attributes.is_empty());
        assert_eq!(message.group_id, None);
        assert_eq!(message.deduplication_id, None);
    }

    #[test]
    fn data_only_keeps_the_context_in_attributes() {
        let message = to_message(&config("orders", true, None), &event("1")).unwrap();
        assert_eq!(message.body, r#"{"total":3}"#);
        let attributes: HashMap<_, _> = message.attributes.iter().cloned().collect();
        assert_eq!(attributes["ce-id"], "1");
        assert_eq!(attributes["ce-type"], "order.created");
        assert_eq!(attributes["ce-subject"], "o-1");
        assert_eq!(attributes["content-type"], "application/json");
        assert!(message.attributes.len() <= 10);
    }

    #[test]
    fn more_than_ten_attributes_are_refused_with_the_names_left_out() {
        // An event with `count` extensions `ext00`, `ext01`, … valued `v0`, `v1`, …
        let with_extensions = |count: usize| {
            let mut builder = EventBuilderV10::new()
                .id("1")
                .source("s")
                .ty("t")
                .subject("o-1")
                .data("application/json", serde_json::json!({"total": 3}));
            for n in 0..count {
                builder = builder.extension(&format!("ext{n:02}"), format!("v{n}"));
            }
            InboundEvent::from(builder.build().unwrap())
        };
        let event = with_extensions(12);
        let err = to_message(&config("orders", true, None), &event).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        // specversion, id, source, type, subject, content-type, then ext00..ext03 fit.
        assert!(err.message.contains("needs 18"), "{}", err.message);
        assert!(
            err.message
                .contains("ce-ext04, ce-ext05, ce-ext06, ce-ext07, ce-ext08, ce-ext09, ce-ext10, ce-ext11 would not fit"),
            "{}",
            err.message
        );
        // Without discardCloudEventContext the extensions travel in the body.
        let message = to_message(&config("orders", false, None), &event).unwrap();
        assert!(
            message.body.contains("\"ext11\":\"v11\""),
            "{}",
            message.body
        );

        // Ten exactly still go.
        let message = to_message(&config("orders", true, None), &with_extensions(4)).unwrap();
        assert_eq!(message.attributes.len(), 10);
        assert_eq!(message.attributes[9].0, "ce-ext03");
    }

    #[test]
    fn fifo_messages_carry_group_and_stable_dedup_id() {
        let config = config("orders.fifo", false, Some("g"));
        let a = to_message(&config, &event("1")).unwrap();
        let b = to_message(&config, &event("1")).unwrap();
        let c = to_message(&config, &event("2")).unwrap();
        assert_eq!(a.group_id.as_deref(), Some("g"));
        assert_eq!(a.deduplication_id, b.deduplication_id);
        assert_ne!(a.deduplication_id, c.deduplication_id);
        assert!(a.deduplication_id.unwrap().len() <= 128);
    }

    #[test]
    fn an_event_without_data_cannot_be_a_data_only_message() {
        let event = EventBuilderV10::new()
            .id("1")
            .source("s")
            .ty("t")
            .build()
            .unwrap();
        let err = to_message(&config("orders", true, None), &event.into()).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }
}
