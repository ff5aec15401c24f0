//! `ChangeMessageVisibility` and `ChangeMessageVisibilityBatch` (0 to 43,200 seconds; 0 makes
//! the message visible at once).

use serde::Deserialize;

use crate::App;

use super::batch::*;
use super::*;

fn visibility_of(value: Option<i64>) -> Result<u32, SqsError> {
    let value = value.ok_or_else(|| missing("VisibilityTimeout"))?;
    if !(0..=43_200).contains(&value) {
        return Err(invalid_value(
            value,
            "VisibilityTimeout",
            "Must be >= 0 and <= 43200, if provided.",
        ));
    }
    Ok(value as u32)
}

pub(super) fn change_message_visibility(
    app: &App,
    input: ChangeVisibilityInput,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    if input.receipt_handle.is_empty() {
        return Err(missing("ReceiptHandle"));
    }
    let seconds = visibility_of(input.visibility_timeout)?;
    match queue
        .change_visibility(&[(&input.receipt_handle, seconds)])
        .pop()
    {
        Some(Err(error)) => Err(receipt_error(error, &input.receipt_handle)),
        _ => Ok(b"{}".to_vec()),
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ChangeVisibilityInput {
    queue_url: String,
    receipt_handle: String,
    visibility_timeout: Option<i64>,
}

pub(super) fn change_message_visibility_batch(
    app: &App,
    input: BatchInput<ReceiptEntry>,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let mut failed = Vec::new();
    let mut valid = Vec::new();
    let mut changes = Vec::new();
    for entry in &input.entries {
        match visibility_of(entry.visibility_timeout) {
            Ok(seconds) => {
                valid.push(entry);
                changes.push((entry.receipt_handle.as_str(), seconds));
            }
            Err(error) => failed.push(Failed::new(&entry.id, error)),
        }
    }
    let mut successful = Vec::new();
    for (entry, result) in valid.into_iter().zip(queue.change_visibility(&changes)) {
        match result {
            Ok(()) => successful.push(Successful { id: &entry.id }),
            Err(error) => failed.push(Failed::new(
                &entry.id,
                receipt_error(error, &entry.receipt_handle),
            )),
        }
    }
    Ok(batch_output(successful, failed))
}
