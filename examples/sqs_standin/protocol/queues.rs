//! The queue operations: `GetQueueUrl`, `CreateQueue` (name checks, the attributes the stand-in
//! honours), `ListQueues`, `GetQueueAttributes`, and the input of `PurgeQueue`.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::json;

use crate::App;

use super::*;

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct GetQueueUrlInput {
    queue_name: String,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    queue_owner_aws_account_id: Option<String>,
}

pub(super) fn get_queue_url(
    app: &App,
    input: GetQueueUrlInput,
    host: &str,
) -> Result<Vec<u8>, SqsError> {
    if input.queue_name.is_empty() {
        return Err(missing("QueueName"));
    }
    let queue = app
        .queue(&input.queue_name)
        .filter(|q| {
            input
                .queue_owner_aws_account_id
                .as_ref()
                .is_none_or(|account| *account == q.account)
        })
        .ok_or_else(no_such_queue)?;
    Ok(to_body(&json!({"QueueUrl": app.url_of(&queue, host)})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct CreateQueueInput {
    queue_name: String,
    attributes: HashMap<String, String>,
}

pub(super) fn create_queue(
    app: &App,
    input: CreateQueueInput,
    host: &str,
) -> Result<Vec<u8>, SqsError> {
    let name = input.queue_name.as_str();
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if base.is_empty()
        || name.len() > 80
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SqsError::new(
            ErrorKind::InvalidParameterValue,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    let mut settings = app.defaults;
    for (key, value) in &input.attributes {
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| invalid_value(value, key, "not a number"))
        };
        match key.as_str() {
            "VisibilityTimeout" => settings.visibility_timeout = number()?.min(43_200) as u32,
            "ReceiveMessageWaitTimeSeconds" => {
                settings.receive_wait_seconds = number()?.min(20) as u32
            }
            "MaximumMessageSize" => settings.max_message_size = number()? as usize,
            "FifoQueue" if (value == "true") != name.ends_with(".fifo") => {
                return Err(SqsError::new(
                    ErrorKind::InvalidParameterValue,
                    "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix",
                ));
            }
            _ => {} // accepted and ignored
        }
    }
    let queue = app.create_queue(name, settings);
    Ok(to_body(&json!({"QueueUrl": app.url_of(&queue, host)})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ListQueuesInput {
    queue_name_prefix: String,
}

pub(super) fn list_queues(
    app: &App,
    input: ListQueuesInput,
    host: &str,
) -> Result<Vec<u8>, SqsError> {
    let urls: Vec<String> = app
        .queues()
        .iter()
        .filter(|q| q.name.starts_with(&input.queue_name_prefix))
        .map(|q| app.url_of(q, host))
        .collect();
    Ok(to_body(&json!({"QueueUrls": urls})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct QueueUrlInput {
    pub(super) queue_url: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct GetQueueAttributesInput {
    queue_url: String,
    attribute_names: Vec<String>,
}

pub(super) fn get_queue_attributes(
    app: &App,
    input: GetQueueAttributesInput,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    let (visible, in_flight, delayed) = queue.depth();
    let settings = &queue.settings;
    let mut all: Vec<(&str, String)> = vec![
        ("ApproximateNumberOfMessages", visible.to_string()),
        (
            "ApproximateNumberOfMessagesNotVisible",
            in_flight.to_string(),
        ),
        ("ApproximateNumberOfMessagesDelayed", delayed.to_string()),
        ("CreatedTimestamp", queue.created_s.to_string()),
        ("DelaySeconds", "0".into()),
        ("LastModifiedTimestamp", queue.created_s.to_string()),
        ("MaximumMessageSize", settings.max_message_size.to_string()),
        ("MessageRetentionPeriod", "345600".into()),
        ("QueueArn", queue.arn.clone()),
        (
            "ReceiveMessageWaitTimeSeconds",
            settings.receive_wait_seconds.to_string(),
        ),
        ("SqsManagedSseEnabled", "false".into()),
        ("VisibilityTimeout", settings.visibility_timeout.to_string()),
    ];
    if queue.fifo {
        all.push(("FifoQueue", "true".into()));
        all.push(("ContentBasedDeduplication", "false".into()));
    }
    const KNOWN_UNSET: [&str; 9] = [
        "Policy",
        "RedrivePolicy",
        "RedriveAllowPolicy",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "FifoQueue",
        "ContentBasedDeduplication",
    ];
    let wants_all = input.attribute_names.iter().any(|n| n == "All");
    let mut out = BTreeMap::new();
    for (name, value) in all {
        if wants_all || input.attribute_names.iter().any(|n| n == name) {
            out.insert(name, value);
        }
    }
    if let Some(unknown) = input.attribute_names.iter().find(|n| {
        *n != "All" && !out.contains_key(n.as_str()) && !KNOWN_UNSET.contains(&n.as_str())
    }) {
        return Err(SqsError::new(
            ErrorKind::InvalidAttributeName,
            format!("Unknown Attribute {unknown}."),
        ));
    }
    if out.is_empty() {
        return Ok(b"{}".to_vec());
    }
    Ok(to_body(&json!({"Attributes": out})))
}
