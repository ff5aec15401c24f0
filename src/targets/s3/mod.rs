//! The S3 target: CloudEvents → objects in a bucket.
//!
//! The object is the event's `data` for type `io.triggermesh.awss3.object.put` or with
//! `discardCloudEventContext`, otherwise the whole event as structured JSON. The key is the
//! event's `subject`; without one, a key derived from `type`, `source` and `id`, so a retried
//! event overwrites its object instead of duplicating it. The context goes along as object
//! metadata (`x-amz-meta-ce-*`, percent-encoded like `ce-` headers).

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use futures::future::join_all;
use http::StatusCode;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Outcome, TargetError, record_aws_error};
use crate::aws::credentials::{self, Refreshing};
use crate::aws::{error_label, s3, with_fresh_credentials};
use crate::cloudevents::encode_header_value;
use crate::cloudevents::inbound::{InboundData, InboundEvent};
use crate::http::health::ReadyFlag;
use crate::telemetry::Component;
use config::{COMPONENT, S3TargetConfig};

/// The event type whose `data` is the object, as TriggerMesh defined it.
pub const OBJECT_PUT_TYPE: &str = "io.triggermesh.awss3.object.put";

pub struct S3Target {
    config: S3TargetConfig,
    component: Component,
    credentials: Refreshing,
    /// Configuration in the default region, for `GetBucketLocation`.
    sdk: SdkConfig,
    /// A client in the bucket's region, once known.
    client: RwLock<Option<aws_sdk_s3::Client>>,
    /// The component's span (`start` runs in it), entered by request handling too.
    span: tracing::Span,
}

impl S3Target {
    /// Builds the target; readiness is raised once the bucket's region is known (retried in
    /// the background until then).
    /// `stop` ends its background tasks (the credentials' refresh, the readiness probe):
    /// cancel it only once the target has drained, so its last sends have fresh credentials.
    pub async fn start(
        config: S3TargetConfig,
        ready: ReadyFlag,
        stop: CancellationToken,
    ) -> Result<Arc<S3Target>, super::StartError> {
        let component = Component::of(COMPONENT, &config.metadata);
        // Buckets are global; their region is asked for from the default region.
        let region = crate::aws::default_region();
        let credentials = credentials::for_component(&component, &config.auth, &region).await?;
        // The first fetch happens in the background, like every later one: `start` (and so
        // the HTTP server, /healthz and SIGTERM) never waits for STS. Until it succeeds the
        // readiness probe fails and `/readyz` says so.
        tokio::spawn(credentials.clone().run(stop.clone()).in_current_span());
        let sdk = crate::aws::sdk_config(&region, &credentials, config.endpoint.as_deref()).await;
        let target = Arc::new(S3Target {
            config,
            component,
            credentials,
            sdk,
            client: RwLock::new(None),
            span: tracing::Span::current(),
        });
        let probe = target.clone();
        let bucket = probe.config.bucket.to_string();
        tokio::spawn(
            async move {
                // As for the SQS target: the first call waits for the first credentials.
                probe.credentials.first_fetch().await;
                super::become_ready(&bucket, ready, stop, || async {
                    probe.client().await.map(|_| ())
                })
                .await
            }
            .in_current_span(),
        );
        Ok(target)
    }

    pub fn name(&self) -> &str {
        &self.config.metadata.name
    }

    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    pub fn arn(&self) -> String {
        self.config.bucket.to_string()
    }

    /// A client in the bucket's region, once that is known.
    async fn client(&self) -> Result<aws_sdk_s3::Client, TargetError> {
        if let Some(client) = self.client.read().await.clone() {
            return Ok(client);
        }
        let probe = s3::client(&self.sdk, None, &self.component);
        match s3::bucket_region(&probe, &self.credentials, &self.config.bucket.bucket).await {
            Ok(region) => {
                let client = s3::client(&self.sdk, Some(&region), &self.component);
                *self.client.write().await = Some(client.clone());
                Ok(client)
            }
            Err(err) => {
                record_aws_error(
                    COMPONENT,
                    self.name(),
                    "GetBucketLocation",
                    &error_label(&err),
                    &crate::aws::error_message(&err),
                );
                Err(TargetError::from_aws("GetBucketLocation", &err))
            }
        }
    }

    pub async fn write(&self, events: Vec<InboundEvent>) -> Vec<Outcome> {
        join_all(events.iter().map(|event| self.put(event))).await
    }

    async fn put(&self, event: &InboundEvent) -> Outcome {
        let client = self.client().await?;
        let object = to_object(&self.config, event)?;
        let bucket = &self.config.bucket.bucket;
        let result = with_fresh_credentials(&self.credentials, || {
            client
                .put_object()
                .bucket(bucket)
                .key(&object.key)
                .content_type(&object.content_type)
                .set_metadata(Some(object.metadata.clone()))
                .body(object.body.clone().into())
                .send()
        })
        .await;
        match result {
            Ok(output) => Ok(serde_json::json!({
                "bucket": bucket,
                "key": object.key,
                "etag": output.e_tag,
                "versionId": output.version_id,
            })),
            Err(err) => {
                record_aws_error(
                    COMPONENT,
                    self.name(),
                    "PutObject",
                    &error_label(&err),
                    &crate::aws::error_message(&err),
                );
                Err(TargetError::from_aws("PutObject", &err))
            }
        }
    }
}

/// What is written for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub key: String,
    pub body: Bytes,
    pub content_type: String,
    pub metadata: HashMap<String, String>,
}

/// The object for an event (§3 of the reference).
pub fn to_object(config: &S3TargetConfig, inbound: &InboundEvent) -> Result<Object, TargetError> {
    let event = inbound.attributes();
    let data_only = config.discard_context || event.ty() == OBJECT_PUT_TYPE;
    let (body, content_type) = if data_only {
        // The data byte for byte (JSON as the sender wrote it, not re-encoded).
        let body = match inbound.data() {
            None => Bytes::new(),
            Some(InboundData::Json(json)) => json.clone(),
            Some(data) => Bytes::copy_from_slice(data.as_bytes()),
        };
        let content_type = event
            .datacontenttype()
            .map(str::to_string)
            .unwrap_or_else(|| match inbound.data() {
                Some(InboundData::Json(_)) => "application/json".to_string(),
                Some(InboundData::Text(_)) => "text/plain".to_string(),
                _ => "application/octet-stream".to_string(),
            });
        (body, content_type)
    } else {
        (
            Bytes::from(inbound.to_structured()),
            "application/cloudevents+json".to_string(),
        )
    };
    let key = match event.subject() {
        Some(subject) if !subject.is_empty() => subject.to_string(),
        _ => derived_key(event),
    };
    if key.len() > 1024 {
        return Err(TargetError::new(
            StatusCode::BAD_REQUEST,
            "the subject is longer than S3's 1024-byte key limit",
        ));
    }
    let metadata: HashMap<String, String> = event
        .iter_attributes()
        // The subject is the key already.
        .filter(|(name, _)| *name != "subject")
        .map(|(name, value)| (format!("ce-{name}"), value.to_string()))
        .chain(
            event
                .iter_extensions()
                .map(|(name, value)| (format!("ce-{name}"), value.to_string())),
        )
        // Metadata travels in HTTP headers: percent-encoded like ce- headers.
        .map(|(name, value)| {
            let value = encode_header_value(&value)
                .to_str()
                .unwrap_or_default()
                .to_string();
            (name, value)
        })
        .collect();
    check_metadata_size(&metadata)?;
    Ok(Object {
        key,
        body,
        content_type,
        metadata,
    })
}

/// S3's limit on user-defined metadata: the UTF-8 bytes of every name and value, summed.
const MAX_METADATA_BYTES: usize = 2048;

/// Refuses (400) an event whose context would not fit in S3's metadata limit: S3 itself would
/// answer 400 too, and a sender must not retry it.
fn check_metadata_size(metadata: &HashMap<String, String>) -> Result<(), TargetError> {
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size <= MAX_METADATA_BYTES {
        return Ok(());
    }
    let (largest, largest_size) = metadata
        .iter()
        .map(|(k, v)| (k.as_str(), k.len() + v.len()))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .unwrap_or(("", 0));
    Err(TargetError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "the event's context attributes and extensions would be {size} bytes of S3 object \
             metadata, and S3 takes at most {MAX_METADATA_BYTES} (the largest is {largest}, \
             {largest_size} bytes); send fewer or shorter extensions"
        ),
    ))
}

/// `<type>/<hash of source and id>`: the same event always lands on the same key.
pub fn derived_key(event: &Event) -> String {
    let hash = super::event_identity_hash(event);
    format!("{}/{}", event.ty(), &hash[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::auth::Auth;
    use crate::config::common::Metadata;
    use cloudevents::{EventBuilder, EventBuilderV10};

    fn config(discard: bool) -> S3TargetConfig {
        S3TargetConfig {
            metadata: Metadata {
                name: "b".into(),
                namespace: None,
            },
            bucket: "arn:aws:s3:::archive".parse().unwrap(),
            discard_context: discard,
            auth: Auth::default(),
            endpoint: None,
        }
    }

    fn event(ty: &str, subject: Option<&str>) -> InboundEvent {
        let mut builder = EventBuilderV10::new()
            .id("1")
            .source("https://example.com/a b")
            .ty(ty)
            .data("text/csv", "a,b\n1,2\n");
        if let Some(subject) = subject {
            builder = builder.subject(subject);
        }
        builder.build().unwrap().into()
    }

    #[test]
    fn object_put_events_write_their_data_under_the_subject() {
        let object = to_object(
            &config(false),
            &event(OBJECT_PUT_TYPE, Some("dir/report é.csv")),
        )
        .unwrap();
        assert_eq!(object.key, "dir/report é.csv");
        assert_eq!(&object.body[..], b"a,b\n1,2\n");
        assert_eq!(object.content_type, "text/csv");
        assert_eq!(object.metadata["ce-id"], "1");
        assert_eq!(object.metadata["ce-source"], "https://example.com/a%20b");
        assert!(
            !object.metadata.contains_key("ce-subject"),
            "the subject is the key"
        );
    }

    #[test]
    fn metadata_over_s3s_two_kilobytes_is_refused_before_the_call() {
        let big = |size: usize| {
            EventBuilderV10::new()
                .id("1")
                .source("s")
                .ty("order.created")
                .subject("x".repeat(1000))
                .extension("note", "n".repeat(size))
                .build()
                .unwrap()
                .into()
        };
        // A 1000-byte subject does not count: it is the key, not metadata.
        assert!(to_object(&config(false), &big(1900)).is_ok());
        let err = to_object(&config(false), &big(2100)).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message.contains("S3 takes at most 2048")
                && err.message.contains("the largest is ce-note, 2107 bytes"),
            "{}",
            err.message
        );
    }

    #[test]
    fn other_events_are_written_whole_under_a_deterministic_key() {
        let a = to_object(&config(false), &event("order.created", None)).unwrap();
        let b = to_object(&config(false), &event("order.created", None)).unwrap();
        assert_eq!(a.key, b.key, "a retried event overwrites its object");
        assert!(a.key.starts_with("order.created/"), "{}", a.key);
        assert_eq!(a.content_type, "application/cloudevents+json");
        let whole: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(whole["type"], "order.created");
        let data_only = to_object(&config(true), &event("order.created", None)).unwrap();
        assert_eq!(&data_only.body[..], b"a,b\n1,2\n");
    }
}
