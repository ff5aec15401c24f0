//! Liveness and readiness. Each component registers a flag and raises it once it can do its
//! work (credentials valid, queue reachable); the process is ready when every flag is up and it
//! is not draining.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::server::{Body, respond};

/// One component's readiness, raised and lowered by the component.
#[derive(Clone, Debug, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The readiness of the whole process.
#[derive(Clone, Default)]
pub struct Health {
    components: Arc<Mutex<Vec<(String, ReadyFlag)>>>,
    draining: Arc<AtomicBool>,
}

impl Health {
    pub fn register(&self, name: &str) -> ReadyFlag {
        let flag = ReadyFlag::default();
        if let Ok(mut components) = self.components.lock() {
            components.push((name.to_string(), flag.clone()));
        }
        flag
    }

    /// From now on the process reports not ready, so load balancers stop sending work.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `(ready, JSON report)`.
    pub fn readiness(&self) -> (bool, String) {
        let draining = self.draining.load(Ordering::Relaxed);
        let components = self
            .components
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let ready = !draining && components.iter().all(|(_, flag)| flag.get());
        let report = serde_json::json!({
            "ready": ready,
            "draining": draining,
            "components": components
                .iter()
                .map(|(name, flag)| (name.clone(), serde_json::Value::Bool(flag.get())))
                .collect::<serde_json::Map<_, _>>(),
        });
        (ready, report.to_string())
    }

    /// Answers `/healthz` and `/readyz`; `None` for other paths.
    pub fn handle(&self, request: &Request<Incoming>) -> Option<http::Response<Body>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return None;
        }
        match request.uri().path() {
            "/healthz" => Some(respond(StatusCode::OK, "text/plain", "ok\n")),
            // TriggerMesh's adapters answer this: 503 until ready, then 204.
            "/health" => {
                let status = if self.readiness().0 {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                Some(respond(status, "text/plain", ""))
            }
            "/readyz" => {
                let (ready, report) = self.readiness();
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                Some(respond(status, "application/json", report))
            }
            _ => None,
        }
    }
}
