//! aws-event-adapter: the data plane between AWS and CloudEvents.
//!
//! - [`sources::s3`]: S3 notifications on SQS → CloudEvents → an HTTP sink, at-least-once.
//! - [`config`]: TriggerMesh-compatible manifests, decoded with every problem reported.
//! - [`aws`]: ARNs, SDK configuration and credentials.
//! - [`cloudevents`]: the CloudEvents HTTP binding, both ways.
//! - [`http`]: the server, health and readiness, and the sink client.
//! - [`app`]: the `run` command wiring it together; [`display`]: a printing sink.

#![forbid(unsafe_code)]

pub mod app;
pub mod aws;
pub mod backoff;
pub mod cloudevents;
pub mod config;
pub mod display;
pub mod http;
pub mod provisioning;
pub mod shutdown;
pub mod sources;
pub mod targets;
pub mod telemetry;
