//! aws-event-adapter: the data plane between AWS and CloudEvents.
//!
//! Modules by layer; each uses only the layers below it (`tests/layout.rs` checks it):
//!
//! ```text
//!  app · provisioning · display   the commands: run, provision/deprovision, display
//!  manifest                       the kinds, files and environment → the components' configs
//!  sources · targets              the components (S3 source; SQS and S3 targets)
//!  aws                            ARNs, SDK clients, credentials, AWS call metrics
//!  http                           server, health and readiness, sink client, TLS, bearer auth
//!  cloudevents                    the CloudEvents HTTP binding, both ways
//!  telemetry · backoff ·          logs, metrics, component identity; retry delays;
//!    batch · shutdown             the coalescing batcher of AWS batch calls; signals
//!  config                         decoding pieces every component's config shares (a leaf)
//! ```
//!
//! Sources and targets never use each other; what both need lives in a layer below them.

#![forbid(unsafe_code)]

pub mod app;
pub mod aws;
pub mod backoff;
pub mod batch;
pub mod cloudevents;
pub mod config;
pub mod display;
pub mod http;
pub mod manifest;
pub mod provisioning;
pub mod shutdown;
pub mod sources;
pub mod targets;
pub mod telemetry;
