//! Test support for the integration tests: AWS clients pointed at the emulator (moto, started by
//! `./scripts/test`), a recording CloudEvents sink with programmable answers, and the adapter
//! binary run as a child process, as a user runs it.
//!
//! - [`aws`]: the shared emulator's endpoint and account (moto's, or LocalStack's in the pass
//!   `./scripts/test` makes against it), unique names, [`Aws`] (SQS and S3 clients) and queue
//!   depths;
//! - [`sink`]: [`TestSink`], the recording sink, and [`CountingSink`], which counts what it took
//!   and completed by subject for the fault scenarios;
//! - [`adapter`]: [`Adapter`], the binary as a child process (signals, logs, `/metrics`,
//!   `/readyz`), and the manifest of a test source;
//! - [`command`]: the binary run to its end as a command (`validate`, ...), and what it printed;
//! - [`moto`]: [`OwnMoto`], a moto of a test's own (IAM enforcement), and IAM users and roles;
//! - [`proxy`]: [`TcpProxy`], a TCP proxy a test can cut, restore and make reset requests;
//! - [`rewrite`]: [`RewritingProxy`], an HTTP proxy that changes SQS requests and answers;
//! - here: polling, free ports, plain HTTP GETs and the reference's sample bodies.
//!
//! Everything is re-exported here, so a test file's `use common::*;` reaches all of it.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod adapter;
pub mod aws;
pub mod command;
pub mod moto;
pub mod proxy;
pub mod rewrite;
pub mod sink;

// Unused in the test binaries that need none of a file (e.g. `proxy` outside `faults`).
#[allow(unused_imports)]
pub use {adapter::*, aws::*, moto::*, proxy::*, rewrite::*, sink::*};

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Polls `condition` every 50 ms until it holds; fails the test after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_addr() -> SocketAddr {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(StatusCode, String), String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{addr}{path}").parse().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The sample bodies of the reference, as S3/SNS/EventBridge deliver them.
pub fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The put sample with another object key, so each message of a test is recognisable.
pub fn put_sample_with_key(key: &str) -> String {
    sample("s3-records-put.json").replace("photos/2026/red+flower%281%29+%C3%A9t%C3%A9.jpg", key)
}
