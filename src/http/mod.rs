//! HTTP plumbing shared by components: the server every endpoint runs on, health and readiness,
//! and the client that delivers CloudEvents to sinks.

pub mod bearer;
pub mod health;
pub mod server;
pub mod sink;
pub mod tls;
