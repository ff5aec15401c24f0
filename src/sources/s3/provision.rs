//! Creating the source's queue and bucket notification on the user's behalf (an `AWSS3Source`
//! without `destination.sqs.queueARN`), and removing them again.
//!
//! `provision` is idempotent and makes no write call when nothing changed: it reads the queue
//! (URL, tags, policy) and the bucket's notification configuration, and writes only what
//! differs. Only the seed's permissions are used: `s3:GetBucketLocation`,
//! `s3:GetBucketNotification`, `s3:PutBucketNotification`, and `sqs:CreateQueue`,
//! `DeleteQueue`, `GetQueueAttributes`, `SetQueueAttributes`, `GetQueueUrl`, `ListQueueTags`,
//! `TagQueue` — no `sts:GetCallerIdentity`: the account comes from the queue's own ARN.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_s3::types::{Event as S3Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use sha2::{Digest, Sha256};

use super::config::S3SourceConfig;
use super::overlap::{self, Subscription};
use crate::aws::arn::{BucketArn, QueueArn};
use crate::aws::credentials::Refreshing;
use crate::aws::{HttpStatus, error_message, is_access_denied, s3, with_fresh_credentials};
use crate::telemetry::Component;

/// The tag that marks a queue as created by (and for) one source: `<namespace>/<name>`.
pub const OWNER_TAG: &str = "aws-event-adapter:owner";
/// The tag naming the bucket the queue receives notifications from.
pub const BUCKET_TAG: &str = "aws-event-adapter:bucket";
/// Events notified when `spec.eventTypes` is empty.
const DEFAULT_EVENTS: [&str; 2] = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"];

/// What provisioning found or did.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub queue: QueueArn,
    pub queue_url: String,
    /// The write calls made, in words ("created queue ..."); empty when nothing changed.
    pub changes: Vec<String>,
}

/// A failed step, naming the AWS action when AWS denied it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

fn failed<E, R>(operation: &str, action: &str, err: &SdkError<E, R>) -> ProvisionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: HttpStatus + std::fmt::Debug,
{
    if is_access_denied(err) {
        ProvisionError(format!(
            "{operation} was denied: the identity needs the {action} permission ({})",
            error_message(err)
        ))
    } else {
        ProvisionError(format!("{operation} failed: {}", error_message(err)))
    }
}

/// The bucket of a source; only manifests name one (TriggerMesh's variables do not).
fn bucket_of(config: &S3SourceConfig) -> Result<&BucketArn, ProvisionError> {
    config.bucket.as_ref().ok_or_else(|| {
        ProvisionError(
            "the source names no bucket (spec.arn), so nothing can be provisioned".into(),
        )
    })
}

fn namespace(config: &S3SourceConfig) -> &str {
    config.metadata.namespace.as_deref().unwrap_or("default")
}

/// The source as a metric label set.
fn component(config: &S3SourceConfig) -> Component {
    Component::of(config.kind(), &config.metadata)
}

/// The owner tag's value for this source.
pub fn owner(config: &S3SourceConfig) -> String {
    format!("{}/{}", namespace(config), config.metadata.name)
}

/// A queue name that is valid for every bucket name (dots, 63 characters), unique per source
/// and bucket, and readable: `s3-<namespace>-<name>-<bucket>` with invalid characters
/// replaced, shortened to SQS's 80 characters, always ending in a hash of the three.
pub fn queue_name(namespace: &str, name: &str, bucket: &str) -> String {
    let hash = hex::encode(&Sha256::digest(format!("{namespace}/{name}/{bucket}").as_bytes())[..4]);
    let readable: String = format!("s3-{namespace}-{name}-{bucket}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let keep = 80 - hash.len() - 1;
    let readable = readable
        .get(..keep.min(readable.len()))
        .unwrap_or(&readable);
    format!("{readable}-{hash}")
}

/// The notification entry's id, unique per source.
pub fn notification_id(config: &S3SourceConfig) -> String {
    format!(
        "aws-event-adapter.{}.{}",
        namespace(config),
        config.metadata.name
    )
}

/// Lets S3 send this bucket's notifications (from the bucket owner's account) to the queue.
pub fn queue_policy(queue: &QueueArn, bucket: &BucketArn) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowS3BucketNotifications",
            "Effect": "Allow",
            "Principal": { "Service": "s3.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue.to_string(),
            "Condition": {
                "ArnEquals": { "aws:SourceArn": bucket.to_string() },
                "StringEquals": { "aws:SourceAccount": queue.account }
            }
        }]
    })
}

fn events(config: &S3SourceConfig) -> Vec<String> {
    let mut events = if config.event_types.is_empty() {
        DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect()
    } else {
        config.event_types.clone()
    };
    events.sort();
    events.dedup();
    events
}

/// Clients in the bucket's region (S3 notifies only queues in the bucket's region).
struct Clients {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    region: String,
}

async fn clients(
    config: &S3SourceConfig,
    credentials: &Refreshing,
) -> Result<Clients, ProvisionError> {
    let bucket_arn = bucket_of(config)?;
    let sdk = crate::aws::sdk_config(
        &crate::aws::default_region(),
        credentials,
        config.endpoint.as_deref(),
    )
    .await;
    let probe = s3::client(&sdk, None, &component(config));
    let region = s3::bucket_region(&probe, credentials, &bucket_arn.bucket)
        .await
        .map_err(|err| failed("GetBucketLocation", "s3:GetBucketLocation", &err))?;
    let regional = crate::aws::sdk_config(&region, credentials, config.endpoint.as_deref()).await;
    Ok(Clients {
        s3: s3::client(&regional, Some(&region), &component(config)),
        sqs: crate::aws::sqs_client(&regional, &component(config), Duration::from_secs(10)),
        region,
    })
}

/// Creates or updates the queue (tags, policy) and the bucket's notification entry.
pub async fn provision(
    config: &S3SourceConfig,
    credentials: &Refreshing,
) -> Result<Provisioned, ProvisionError> {
    let bucket_arn = bucket_of(config)?;
    let clients = clients(config, credentials).await?;
    let name = queue_name(namespace(config), &config.metadata.name, &bucket_arn.bucket);
    let mut changes = Vec::new();

    // The bucket's notification configuration first: real S3 refuses an entry that overlaps
    // another (moto does not), and that is found out before anything is created.
    let bucket = &bucket_arn.bucket;
    let s3 = &clients.s3;
    let current = read_notifications(s3, credentials, bucket).await?;
    let id = notification_id(config);
    let wanted = events(config);
    let mine = Subscription {
        id: id.clone(),
        destination: format!("queue {name}"),
        events: wanted.clone(),
        prefix: String::new(),
        suffix: String::new(),
    };
    let others = overlap::subscriptions(
        current.queue_configurations(),
        current.topic_configurations(),
        current.lambda_function_configurations(),
    );
    if let Some(overlap) = overlap::find_overlap(&mine, &others) {
        return Err(ProvisionError(format!(
            "cannot add this source's notification entry {id:?} to bucket {bucket}: {overlap}"
        )));
    }

    let tags = HashMap::from([
        (OWNER_TAG.to_string(), owner(config)),
        (BUCKET_TAG.to_string(), bucket_arn.to_string()),
    ]);

    // The queue, with our tags.
    let sqs = &clients.sqs;
    let existing =
        with_fresh_credentials(credentials, || sqs.get_queue_url().queue_name(&name).send()).await;
    let queue_url = match existing {
        Ok(output) => {
            let url = output.queue_url.unwrap_or_default();
            let current = with_fresh_credentials(credentials, || {
                sqs.list_queue_tags().queue_url(&url).send()
            })
            .await
            .map_err(|err| failed("ListQueueTags", "sqs:ListQueueTags", &err))?
            .tags
            .unwrap_or_default();
            match current.get(OWNER_TAG) {
                Some(owner) if Some(owner) != tags.get(OWNER_TAG) => {
                    return Err(ProvisionError(format!(
                        "queue {name} belongs to another source ({owner}); refusing to take it over"
                    )));
                }
                Some(_) => {}
                // Not ours: someone else's queue that happens to have this name.
                None => {
                    return Err(ProvisionError(format!(
                        "queue {name} exists but was not created by aws-event-adapter (no {OWNER_TAG} tag); \
                         name it in destination.sqs.queueARN to use it, or delete it"
                    )));
                }
            }
            if tags.iter().any(|(k, v)| current.get(k) != Some(v)) {
                write_call("TagQueue", &name);
                with_fresh_credentials(credentials, || {
                    sqs.tag_queue()
                        .queue_url(&url)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await
                .map_err(|err| failed("TagQueue", "sqs:TagQueue", &err))?;
                changes.push(format!("tagged queue {name}"));
            }
            url
        }
        Err(err) if is_missing_queue(&err) => {
            write_call("CreateQueue", &name);
            let url = with_fresh_credentials(credentials, || {
                sqs.create_queue()
                    .queue_name(&name)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await
            .map_err(|err| failed("CreateQueue", "sqs:CreateQueue and sqs:TagQueue", &err))?
            .queue_url
            .unwrap_or_default();
            changes.push(format!("created queue {name}"));
            url
        }
        Err(err) => return Err(failed("GetQueueUrl", "sqs:GetQueueUrl", &err)),
    };

    // Its ARN (and so the account) and policy.
    let attributes = with_fresh_credentials(credentials, || {
        sqs.get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::Policy)
            .send()
    })
    .await
    .map_err(|err| failed("GetQueueAttributes", "sqs:GetQueueAttributes", &err))?
    .attributes
    .unwrap_or_default();
    let queue: QueueArn = attributes
        .get(&QueueAttributeName::QueueArn)
        .ok_or_else(|| ProvisionError("GetQueueAttributes returned no QueueArn".into()))?
        .parse()
        .map_err(ProvisionError)?;
    let policy = queue_policy(&queue, bucket_arn);
    let current_policy = attributes
        .get(&QueueAttributeName::Policy)
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    if current_policy.as_ref() != Some(&policy) {
        write_call("SetQueueAttributes", &name);
        with_fresh_credentials(credentials, || {
            sqs.set_queue_attributes()
                .queue_url(&queue_url)
                .attributes(QueueAttributeName::Policy, policy.to_string())
                .send()
        })
        .await
        .map_err(|err| failed("SetQueueAttributes", "sqs:SetQueueAttributes", &err))?;
        changes.push(format!(
            "set the policy of queue {name} (s3.amazonaws.com may send from {})",
            bucket_arn
        ));
    }

    // Our entry in the bucket's notification configuration (read above), the others untouched.
    let ours = QueueConfiguration::builder()
        .id(&id)
        .queue_arn(queue.to_string())
        .set_events(Some(
            wanted.iter().map(|e| S3Event::from(e.as_str())).collect(),
        ))
        .build()
        .map_err(|err| ProvisionError(err.to_string()))?;
    let mut queues = current.queue_configurations.clone().unwrap_or_default();
    let position = queues.iter().position(|q| q.id() == Some(id.as_str()));
    let unchanged = position.is_some_and(|i| same_entry(&queues[i], &queue, &wanted));
    if !unchanged {
        match position {
            Some(i) => queues[i] = ours,
            None => queues.push(ours),
        }
        put_notifications(s3, credentials, bucket, &current, queues).await?;
        changes.push(format!(
            "{} notification entry {id} of bucket {bucket} for {}",
            if position.is_some() {
                "updated"
            } else {
                "added"
            },
            wanted.join(", ")
        ));
    }
    tracing::info!(queue = %queue, region = %clients.region, changes = changes.len(), "provisioned");
    Ok(Provisioned {
        queue,
        queue_url,
        changes,
    })
}

/// Removes our notification entry, then deletes the queue if (and only if) its tags say this
/// source owns it. What is already gone is not an error. Returns what was done, in words.
pub async fn deprovision(
    config: &S3SourceConfig,
    credentials: &Refreshing,
) -> Result<Vec<String>, ProvisionError> {
    let bucket_arn = bucket_of(config)?;
    let mut done = Vec::new();
    if config.queue.is_some() {
        done.push(
            "the source uses an existing queue (destination.sqs.queueARN): nothing to remove"
                .to_string(),
        );
        return Ok(done);
    }
    let clients = match clients(config, credentials).await {
        Ok(clients) => Some(clients),
        Err(err) if err.0.contains("NoSuchBucket") => {
            done.push(format!("bucket {} does not exist", bucket_arn.bucket));
            None
        }
        Err(err) => return Err(err),
    };
    let sqs = match &clients {
        Some(clients) => clients.sqs.clone(),
        None => crate::aws::sqs_client(
            &crate::aws::sdk_config(
                &crate::aws::default_region(),
                credentials,
                config.endpoint.as_deref(),
            )
            .await,
            &component(config),
            Duration::from_secs(10),
        ),
    };
    if let Some(clients) = &clients {
        let bucket = &bucket_arn.bucket;
        let s3 = &clients.s3;
        let current = read_notifications(s3, credentials, bucket).await?;
        let id = notification_id(config);
        let mut queues = current.queue_configurations.clone().unwrap_or_default();
        let before = queues.len();
        queues.retain(|q| q.id() != Some(id.as_str()));
        if queues.len() != before {
            put_notifications(s3, credentials, bucket, &current, queues).await?;
            done.push(format!(
                "removed notification entry {id} of bucket {bucket}"
            ));
        }
    }
    let name = queue_name(namespace(config), &config.metadata.name, &bucket_arn.bucket);
    let url =
        match with_fresh_credentials(credentials, || sqs.get_queue_url().queue_name(&name).send())
            .await
        {
            Ok(output) => output.queue_url.unwrap_or_default(),
            Err(err) if is_missing_queue(&err) => {
                done.push(format!("queue {name} does not exist"));
                return Ok(done);
            }
            Err(err) => return Err(failed("GetQueueUrl", "sqs:GetQueueUrl", &err)),
        };
    let tags = with_fresh_credentials(credentials, || sqs.list_queue_tags().queue_url(&url).send())
        .await
        .map_err(|err| failed("ListQueueTags", "sqs:ListQueueTags", &err))?
        .tags
        .unwrap_or_default();
    if tags.get(OWNER_TAG) == Some(&owner(config)) {
        write_call("DeleteQueue", &name);
        with_fresh_credentials(credentials, || sqs.delete_queue().queue_url(&url).send())
            .await
            .map_err(|err| failed("DeleteQueue", "sqs:DeleteQueue", &err))?;
        done.push(format!("deleted queue {name}"));
    } else {
        done.push(format!(
            "left queue {name} alone: its tags do not say this source created it"
        ));
    }
    Ok(done)
}

/// Writes the bucket's notification configuration with `queues` as its queue entries and every
/// other kind of entry (topics, Lambda functions, EventBridge) as it was.
/// The bucket's notification configuration.
async fn read_notifications(
    s3: &aws_sdk_s3::Client,
    credentials: &Refreshing,
    bucket: &str,
) -> Result<
    aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
    ProvisionError,
>{
    with_fresh_credentials(credentials, || {
        s3.get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
    })
    .await
    .map_err(|err| {
        failed(
            "GetBucketNotificationConfiguration",
            "s3:GetBucketNotification",
            &err,
        )
    })
}

async fn put_notifications(
    s3: &aws_sdk_s3::Client,
    credentials: &Refreshing,
    bucket: &str,
    current: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
    queues: Vec<QueueConfiguration>,
) -> Result<(), ProvisionError> {
    let merged = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(current.topic_configurations.clone())
        .set_lambda_function_configurations(current.lambda_function_configurations.clone())
        .set_event_bridge_configuration(current.event_bridge_configuration.clone())
        .build();
    write_call("PutBucketNotificationConfiguration", bucket);
    with_fresh_credentials(credentials, || {
        s3.put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(merged.clone())
            .send()
    })
    .await
    .map_err(|err| {
        failed(
            "PutBucketNotificationConfiguration",
            "s3:PutBucketNotification",
            &err,
        )
    })?;
    Ok(())
}

fn same_entry(entry: &QueueConfiguration, queue: &QueueArn, events: &[String]) -> bool {
    let mut current: Vec<String> = entry
        .events()
        .iter()
        .map(|e| e.as_str().to_string())
        .collect();
    current.sort();
    current.dedup();
    entry.queue_arn() == queue.to_string() && current == events && entry.filter().is_none()
}

fn is_missing_queue<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(service)
        if matches!(service.err().code(), Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")))
}

/// Every write call is logged, so an operator (and the tests) can see that a second run of
/// `provision` changes nothing.
fn write_call(operation: &'static str, resource: &str) {
    tracing::info!(operation, resource, "AWS write call");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_valid_distinct_and_stable() {
        let dotted = queue_name("default", "logs", "logs.example.com");
        let long_bucket = "a".repeat(63);
        let long = queue_name(
            "a-rather-long-namespace",
            "a-rather-long-source-name",
            &long_bucket,
        );
        let other = queue_name("a-rather-long-namespace", "another-source", &long_bucket);
        for name in [&dotted, &long, &other] {
            assert!(name.len() <= 80, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{name}"
            );
        }
        assert!(
            dotted.starts_with("s3-default-logs-logs-example-com-"),
            "{dotted}"
        );
        assert_ne!(long, other);
        assert_eq!(dotted, queue_name("default", "logs", "logs.example.com"));
    }
}
