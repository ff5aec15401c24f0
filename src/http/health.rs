//! Liveness and readiness. Each component registers a flag and raises it once it can do its
//! work (credentials valid, queue reachable); the process is ready when every flag is up and it
//! is not draining.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::server::{Body, respond};

/// One component's readiness, raised and lowered by the component; also the gauge
/// `aws_event_adapter_component_ready` (1 or 0) when registered with [`Health::register`].
#[derive(Clone, Default)]
pub struct ReadyFlag(Arc<(AtomicBool, Option<metrics::Gauge>)>);

impl std::fmt::Debug for ReadyFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReadyFlag").field(&self.get()).finish()
    }
}

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        self.0.0.store(ready, Ordering::Relaxed);
        if let Some(gauge) = &self.0.1 {
            gauge.set(f64::from(u8::from(ready)));
        }
    }

    pub fn get(&self) -> bool {
        self.0.0.load(Ordering::Relaxed)
    }
}

/// The readiness of the whole process.
#[derive(Clone, Default)]
pub struct Health {
    components: Arc<Mutex<Vec<(String, ReadyFlag)>>>,
    draining: Arc<AtomicBool>,
}

impl Health {
    /// A component's flag, down until it raises it; `kind` and `name` label its gauge.
    pub fn register(&self, kind: &'static str, name: &str) -> ReadyFlag {
        let gauge = metrics::gauge!(
            "aws_event_adapter_component_ready",
            "component" => kind,
            "name" => name.to_string()
        );
        gauge.set(0.0);
        let flag = ReadyFlag(Arc::new((AtomicBool::new(false), Some(gauge))));
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
