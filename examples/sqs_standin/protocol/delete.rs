//! `DeleteMessage` and `DeleteMessageBatch`: only the latest receipt handle of a message deletes
//! it.

use serde::Deserialize;

use crate::App;

use super::batch::*;
use super::*;

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct DeleteMessageInput {
    queue_url: String,
    receipt_handle: String,
}

pub(super) fn delete_message(app: &App, input: DeleteMessageInput) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    if input.receipt_handle.is_empty() {
        return Err(missing("ReceiptHandle"));
    }
    match queue.delete(&[&input.receipt_handle]).pop() {
        Some(Err(error)) => Err(receipt_error(error, &input.receipt_handle)),
        _ => Ok(b"{}".to_vec()),
    }
}

pub(super) fn delete_message_batch(
    app: &App,
    input: BatchInput<ReceiptEntry>,
) -> Result<Vec<u8>, SqsError> {
    let queue = app.queue_of_url(&input.queue_url)?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let handles: Vec<&str> = input
        .entries
        .iter()
        .map(|e| e.receipt_handle.as_str())
        .collect();
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for (entry, result) in input.entries.iter().zip(queue.delete(&handles)) {
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
