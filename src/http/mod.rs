//! HTTP plumbing shared by components: the server every endpoint runs on, health and readiness,
//! the client that delivers CloudEvents to sinks, and the lookup of a sink given by `ref`.

pub mod addressable;
pub mod bearer;
pub mod health;
pub mod server;
pub mod sink;
pub mod tls;
