//! Recording CloudEvents sinks on loopback: [`TestSink`] answers each request as the test
//! programs it and keeps what it received; [`CountingSink`], for the fault scenarios, also
//! counts what it took and what it completed, by subject.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_event_adapter::cloudevents::inbound;
use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use cloudevents::{AttributesReader, Event};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wait_until;

/// What the test sink answers to attempt number `n` (0-based, counted over all requests)
/// carrying this event (the first of a batch), and how long it takes to answer.
pub type Behavior = Arc<dyn Fn(usize, &Event) -> (StatusCode, Duration) + Send + Sync>;

pub fn always(status: StatusCode) -> Behavior {
    Arc::new(move |_, _| (status, Duration::ZERO))
}

/// 503 to the first `refusals` attempts, then 200, at once.
pub fn refusing_first(refusals: usize) -> Behavior {
    Arc::new(move |n, _| {
        let status = if n < refusals {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (status, Duration::ZERO)
    })
}

/// One request the sink received, decoded as CloudEvents.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub events: Vec<Event>,
    /// What the sink answered.
    pub status: StatusCode,
}

/// A CloudEvents sink on loopback that records every request and answers as told.
pub struct TestSink {
    pub addr: SocketAddr,
    attempts: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl TestSink {
    pub async fn start(behavior: Behavior) -> TestSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let handler: Handler = {
            let attempts = attempts.clone();
            let received = received.clone();
            Arc::new(move |request| {
                let attempts = attempts.clone();
                let received = received.clone();
                let behavior = behavior.clone();
                Box::pin(async move {
                    let n = attempts.fetch_add(1, Ordering::SeqCst);
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let events = inbound::decode_events(&parts.headers, body.clone())
                        .unwrap_or_else(|e| {
                            panic!("the adapter sent a request that is not a CloudEvent: {e}")
                        });
                    let (status, delay) = behavior(n, &events[0]);
                    tokio::time::sleep(delay).await;
                    received.lock().unwrap().push(Received {
                        headers: parts.headers,
                        body,
                        events,
                        status,
                    });
                    respond(status, "application/json", "{}")
                })
            })
        };
        tokio::spawn(server::serve(
            listener,
            handler,
            stop.clone(),
            Duration::from_secs(1),
        ));
        TestSink {
            addr,
            attempts,
            received,
            stop,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Requests that started (including those still being answered).
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Events of requests answered 2xx.
    pub fn accepted(&self) -> Vec<(Received, Event)> {
        self.received()
            .into_iter()
            .filter(|r| r.status.is_success())
            .flat_map(|r| r.events.clone().into_iter().map(move |e| (r.clone(), e)))
            .collect()
    }

    /// Waits until at least `n` events were accepted; returns them.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<(Received, Event)> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} accepted events within {timeout:?}, got {}: {:#?}",
                accepted.len(),
                accepted
                    .iter()
                    .map(|(_, e)| e.to_string())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_attempts(&self, n: usize, timeout: Duration) {
        wait_until(timeout, &format!("{n} requests at the sink"), || {
            self.attempts() >= n
        })
        .await;
    }
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A [`TestSink`] that counts events two ways, each the strict one for what it measures:
///
/// - **completed** (for losses): requests the sink answered 2xx to a sender still there — as
///   at a sink that commits only when it answers. An event the sender abandoned (killed,
///   timed out, shut down) is not completed: it must come again.
/// - **taken** (for duplicates): whole requests the sink is going to answer 2xx, counted on
///   arrival — as at a sink that stores what it receives. An abandoned event the adapter sends
///   again is a duplicate here.
///
/// Events answered with an error count in neither.
pub struct CountingSink {
    sink: TestSink,
    taken: Arc<Mutex<Vec<String>>>,
}

impl CountingSink {
    pub async fn start(behavior: Behavior) -> CountingSink {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let counting: Behavior = {
            let taken = taken.clone();
            Arc::new(move |attempt, event| {
                let (status, delay) = behavior(attempt, event);
                // No data: the request was cut short (the sink decodes what it got).
                if status.is_success() && event.data().is_some() {
                    let subject = event.subject().unwrap_or_default().to_string();
                    taken.lock().unwrap().push(subject);
                }
                (status, delay)
            })
        };
        CountingSink {
            sink: TestSink::start(counting).await,
            taken,
        }
    }

    pub fn taken(&self) -> usize {
        self.taken.lock().unwrap().len()
    }

    pub fn taken_by_subject(&self) -> HashMap<String, usize> {
        count(self.taken.lock().unwrap().iter().cloned())
    }

    pub fn completed_by_subject(&self) -> HashMap<String, usize> {
        count(
            self.sink
                .accepted()
                .into_iter()
                .map(|(_, event)| event.subject().unwrap_or_default().to_string()),
        )
    }

    pub async fn wait_taken(&self, n: usize, timeout: Duration) {
        wait_until(timeout, &format!("{n} events at the sink"), || {
            self.taken() >= n
        })
        .await;
    }
}

fn count(subjects: impl Iterator<Item = String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for subject in subjects {
        *counts.entry(subject).or_insert(0) += 1;
    }
    counts
}

impl std::ops::Deref for CountingSink {
    type Target = TestSink;

    fn deref(&self) -> &TestSink {
        &self.sink
    }
}
