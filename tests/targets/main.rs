//! The SQS and S3 targets end to end against the AWS emulator: the adapter binary as a child
//! process, CloudEvents posted by the official CloudEvents Python SDK
//! (`tests/support/send_cloudevent.py`) and by a plain HTTP client, and what lands in moto
//! read back with the AWS SDK.
//!
//! - `shared.rs`: the targets' manifests, the Python SDK and plain HTTP clients, and reading
//!   back from moto, for all the files below;
//! - `sqs.rs`: the SQS target (both modes from the Python SDK, batching into
//!   `SendMessageBatch`, coalescing of concurrent requests, FIFO groups and deduplication);
//! - `s3.rs`: the S3 target (objects written from the Python SDK);
//! - `fidelity.rs`: JSON data written byte for byte by both targets in every mode;
//! - `pressure.rs`: the byte budget of request bodies and the connection cap;
//! - `errors.rs`: both targets' error answers (JSON errors, AWS error codes, saturation with
//!   `Retry-After`, messages over the size limit).

#[path = "../common/mod.rs"]
mod common;
mod errors;
mod fidelity;
mod pressure;
mod s3;
mod shared;
mod sqs;
