//! What the batch operations (`DeleteMessageBatch`, `ChangeMessageVisibilityBatch`,
//! `SendMessageBatch`) share: the input shape, the receipt entry, the checks of the entry ids,
//! and the `Successful` / `Failed` output.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::*;

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct BatchInput<E> {
    pub(super) queue_url: String,
    pub(super) entries: Vec<E>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ReceiptEntry {
    pub(super) id: String,
    pub(super) receipt_handle: String,
    pub(super) visibility_timeout: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Failed<'a> {
    id: &'a str,
    sender_fault: bool,
    code: &'static str,
    message: String,
}

impl<'a> Failed<'a> {
    pub(super) fn new(id: &'a str, error: SqsError) -> Failed<'a> {
        Failed {
            id,
            sender_fault: true,
            code: error.kind.entry_code(),
            message: error.message,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Successful<'a> {
    pub(super) id: &'a str,
}

/// Ids: 1 to 10 entries, distinct, alphanumeric, `-` and `_`, at most 80 characters.
pub(super) fn check_batch<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<(), SqsError> {
    match ids.len() {
        0 => {
            return Err(SqsError::new(
                ErrorKind::EmptyBatchRequest,
                "There should be at least one entry in the request.",
            ));
        }
        n if n > 10 => {
            return Err(SqsError::new(
                ErrorKind::TooManyEntriesInBatchRequest,
                format!("Maximum number of entries per request are 10. You have sent {n}."),
            ));
        }
        _ => {}
    }
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SqsError::new(
                ErrorKind::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(SqsError::new(
                ErrorKind::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(())
}

pub(super) fn batch_output(successful: Vec<impl Serialize>, failed: Vec<Failed<'_>>) -> Vec<u8> {
    to_body(&json!({"Successful": successful, "Failed": failed}))
}
