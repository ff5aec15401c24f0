//! The SQS source (`AWSSQSSource`, TriggerMesh's plain SQS source): any queue, standard or FIFO,
//! each message turned into CloudEvents by its `messageProcessor`.
//!
//! It runs on the S3 source's machinery — the same poll loop, message tasks, settler, heartbeat
//! and drain ([`crate::sources::s3::run`]) — with another conversion
//! ([`crate::sources::s3::config::Conversion::SqsMessages`]); this module owns its manifest.
//! On a FIFO queue the messages of one `MessageGroupId` are delivered one after another, in
//! order (see `crate::sources::s3::fifo`).

pub mod config;
