//! Background refresh of temporary credentials: the piece the SDK lacks.
//!
//! The SDK's own cache renews credentials lazily, on the request path, when they are about to
//! expire — a request then waits for STS. [`Refreshing`] instead keeps the current credentials
//! in memory and renews them from a background task `margin` before they expire (with jitter,
//! and with backoff retries while the old ones are still valid). The request path only reads
//! what is there. Sources without an expiry (keys in secret files) are re-read on a short
//! interval so rotated files take effect without a restart.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use futures::FutureExt;
use futures::future::BoxFuture;
use metrics::{Counter, Gauge, counter, gauge};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::{Backoff, Curve};
use crate::telemetry::Component;

/// Between failed background fetches: 2 s doubling up to 30 s, with equal jitter (1 to 2 s
/// after the first failure).
const FAILURE_BACKOFF: Backoff = Backoff::fixed(
    Curve::Exponential,
    Duration::from_secs(2),
    Duration::from_secs(30),
)
.with_jitter();

/// A fetch several callers wait for.
type SharedFetch = futures::future::Shared<BoxFuture<'static, Result<(), String>>>;

#[derive(Default)]
struct Flight {
    pending: Option<SharedFetch>,
    last_success: Option<Instant>,
}

/// Keeps a source's credentials fresh in the background. Cheap to clone.
#[derive(Clone)]
pub struct Refreshing {
    shared: Arc<Shared>,
}

struct Shared {
    source: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
    last_error: Mutex<Option<String>>,
    /// The fetch in progress, shared by everyone who asks meanwhile, and when the last one
    /// succeeded. The lock is held only to read or swap these, never across the fetch.
    flight: Mutex<Flight>,
    /// `true` once a fetch has ended, well or not (see [`Refreshing::first_fetch`]).
    fetched: tokio::sync::watch::Sender<bool>,
    margin: Duration,
    /// How often to re-read a source whose credentials do not expire (None: never).
    recheck: Option<Duration>,
    component: Component,
    mode: &'static str,
    expiry_seconds: Gauge,
    refreshes: Counter,
    failures: Counter,
}

impl std::fmt::Debug for Refreshing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing")
            .field("component", &self.shared.component)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

impl Refreshing {
    pub fn new(
        source: SharedCredentialsProvider,
        margin: Duration,
        recheck: Option<Duration>,
        component: Component,
        mode: &'static str,
    ) -> Self {
        let labels = component.labels();
        Refreshing {
            shared: Arc::new(Shared {
                source,
                current: RwLock::new(None),
                last_error: Mutex::new(None),
                flight: Mutex::new(Flight::default()),
                fetched: tokio::sync::watch::Sender::new(false),
                margin,
                recheck,
                mode,
                expiry_seconds: gauge!("aws_event_adapter_credentials_expiry_seconds", &labels),
                refreshes: counter!("aws_event_adapter_credentials_refreshes_total", &labels),
                failures: counter!(
                    "aws_event_adapter_credentials_refresh_failures_total",
                    &labels
                ),
                component,
            }),
        }
    }

    /// What the credentials are and where they come from, for messages.
    pub fn mode(&self) -> &'static str {
        self.shared.mode
    }

    /// Returns once the first fetch has ended, well or not (at once after that). A component
    /// that starts without waiting for STS waits here before its first AWS call, so that the
    /// call is not refused for credentials that are merely not there yet.
    pub async fn first_fetch(&self) {
        let mut fetched = self.shared.fetched.subscribe();
        let _ = fetched.wait_for(|done| *done).await;
    }

    fn current(&self) -> Option<Credentials> {
        self.shared.current.read().ok()?.clone()
    }

    /// Fetches new credentials now, one fetch at a time.
    pub async fn refresh_now(&self) -> Result<(), String> {
        self.refresh_unless_newer_than(Instant::now()).await
    }

    /// Fetches new credentials unless a fetch finished after `since` — the moment a failed call
    /// started. Many calls refused at once thus cause one fetch, and each then retries with
    /// credentials newer than the ones it was refused with. Used after `ExpiredToken`.
    pub async fn refresh_unless_newer_than(&self, since: Instant) -> Result<(), String> {
        let fetch = {
            let mut flight = self.shared.flight.lock().unwrap_or_else(|e| e.into_inner());
            if flight.last_success.is_some_and(|at| at > since) {
                return Ok(());
            }
            match &flight.pending {
                Some(fetch) => fetch.clone(),
                None => {
                    // A task of its own: the fetch goes on (and ends, clearing `pending`)
                    // whether or not anyone still waits for it.
                    // In the caller's span, so its lines name the component.
                    let task = tokio::spawn(
                        {
                            let this = self.clone();
                            async move { this.fetch().await }
                        }
                        .in_current_span(),
                    );
                    let this = self.clone();
                    let fetch = async move {
                        task.await.unwrap_or_else(|err| {
                            // It panicked (or the runtime is going away): the next caller
                            // starts afresh.
                            this.shared
                                .flight
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .pending = None;
                            Err(format!("the credentials fetch failed: {err}"))
                        })
                    }
                    .boxed()
                    .shared();
                    flight.pending = Some(fetch.clone());
                    fetch
                }
            }
        };
        fetch.await
    }

    /// One call to the credentials' source (STS calls time out: see `sts_calls`).
    async fn fetch(&self) -> Result<(), String> {
        let outcome = match self.shared.source.provide_credentials().await {
            Ok(credentials) => {
                self.store(credentials);
                Ok(())
            }
            Err(err) => {
                let message = aws_sdk_sts::error::DisplayErrorContext(&err).to_string();
                self.shared.failures.increment(1);
                tracing::warn!(
                    mode = self.shared.mode,
                    error = %message,
                    "cannot get AWS credentials"
                );
                if let Ok(mut last) = self.shared.last_error.lock() {
                    *last = Some(message.clone());
                }
                Err(message)
            }
        };
        {
            let mut flight = self.shared.flight.lock().unwrap_or_else(|e| e.into_inner());
            if outcome.is_ok() {
                flight.last_success = Some(Instant::now());
            }
            flight.pending = None;
        }
        self.shared.fetched.send_replace(true);
        outcome
    }

    fn store(&self, credentials: Credentials) {
        let changed = self
            .current()
            .is_none_or(|old| !same_keys(&old, &credentials));
        let expiry = credentials.expiry();
        if let Ok(mut current) = self.shared.current.write() {
            *current = Some(credentials);
        }
        if let Ok(mut last) = self.shared.last_error.lock() {
            *last = None;
        }
        self.update_gauge(expiry);
        if changed || expiry.is_some() {
            self.shared.refreshes.increment(1);
            tracing::info!(
                mode = self.shared.mode,
                expires_in_secs = expiry.map(seconds_until),
                "AWS credentials loaded"
            );
        }
    }

    fn update_gauge(&self, expiry: Option<SystemTime>) {
        if let Some(expiry) = expiry {
            self.shared.expiry_seconds.set(seconds_until(expiry) as f64);
        }
    }

    /// When the next background fetch is due.
    fn next_refresh(&self, failures: u32) -> Option<Instant> {
        let now = Instant::now();
        if failures > 0 {
            return Some(now + FAILURE_BACKOFF.delay(failures));
        }
        let current = self.current()?;
        match current.expiry() {
            Some(expiry) => {
                let left = Duration::from_secs(seconds_until(expiry));
                let window = left.saturating_sub(self.shared.margin);
                // Spread replicas over the last tenth of the window (at most 30 s).
                let spread = (window / 10).min(Duration::from_secs(30));
                let early = spread.mul_f64(rand::rng().random_range(0.0..=1.0));
                // Never spin: at least one second between refreshes even when the margin
                // exceeds the credentials' lifetime.
                Some(now + window.saturating_sub(early).max(Duration::from_secs(1)))
            }
            None => self.shared.recheck.map(|every| now + every),
        }
    }

    /// Runs the background refresh until `stop` fires. Fetches at once unless credentials were
    /// already loaded (see [`Refreshing::refresh_now`]).
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0;
        if self.current().is_none() {
            failures = u32::from(self.refresh_now().await.is_err());
        }
        let mut due = self.next_refresh(failures);
        loop {
            // Wake every second so the expiry gauge keeps moving.
            let nap = due.map_or(Duration::from_secs(1), |due| {
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(1))
            });
            tokio::select! {
                () = tokio::time::sleep(nap) => {},
                () = stop.cancelled() => return,
            }
            if let Some(expiry) = self.current().and_then(|c| c.expiry()) {
                self.update_gauge(Some(expiry));
            }
            if due.is_some_and(|due| Instant::now() >= due) {
                failures = match self.refresh_now().await {
                    Ok(()) => 0,
                    Err(_) => failures.saturating_add(1),
                };
                due = self.next_refresh(failures);
            }
        }
    }
}

impl ProvideCredentials for Refreshing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let result = match self.current() {
            Some(credentials) => Ok(credentials),
            None => {
                let reason = self
                    .shared
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "not loaded yet".to_string());
                Err(CredentialsError::not_loaded(format!(
                    "no AWS credentials from {}: {reason}",
                    self.shared.mode
                )))
            }
        };
        future::ProvideCredentials::ready(result)
    }
}

fn same_keys(a: &Credentials, b: &Credentials) -> bool {
    a.access_key_id() == b.access_key_id()
        && a.secret_access_key() == b.secret_access_key()
        && a.session_token() == b.session_token()
}

fn seconds_until(expiry: SystemTime) -> u64 {
    expiry
        .duration_since(SystemTime::now())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A source that takes `delay` to answer and counts its calls.
    #[derive(Debug)]
    struct Slow {
        calls: Arc<AtomicUsize>,
        delay: Duration,
    }

    impl ProvideCredentials for Slow {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay;
            future::ProvideCredentials::new(async move {
                tokio::time::sleep(delay).await;
                Ok(Credentials::new("AKID", "secret", None, None, "test"))
            })
        }
    }

    fn refreshing(delay: Duration) -> (Refreshing, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = SharedCredentialsProvider::new(Slow {
            calls: calls.clone(),
            delay,
        });
        let component = Component {
            kind: "test",
            name: "t".into(),
            namespace: None,
        };
        let refreshing = Refreshing::new(source, Duration::from_secs(60), None, component, "test");
        (refreshing, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn callers_meanwhile_share_one_fetch() {
        let (refreshing, calls) = refreshing(Duration::from_secs(5));
        let first = tokio::spawn({
            let r = refreshing.clone();
            async move { r.refresh_now().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The fetch is under way: the first fetch has not ended…
        let waited = tokio::time::timeout(Duration::from_millis(10), refreshing.first_fetch());
        assert!(waited.await.is_err(), "first_fetch waits for the fetch");
        // …and a caller that asks meanwhile joins it instead of starting another.
        let asked = Instant::now();
        refreshing.refresh_unless_newer_than(asked).await.unwrap();
        // Started at 0 s, taking 5 s: joined at 1.01 s, done 3.99 s later.
        assert_eq!(
            asked.elapsed(),
            Duration::from_millis(3990),
            "joined the fetch"
        );
        first.await.unwrap().unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(10), refreshing.first_fetch());
        assert!(
            waited.await.is_ok(),
            "first_fetch is over once a fetch ended"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(refreshing.provide_credentials().await.is_ok());
        // A later request for credentials newer than the last fetch makes a new one.
        refreshing.refresh_now().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_nobody_waits_for_any_more_still_finishes() {
        let (refreshing, calls) = refreshing(Duration::from_secs(5));
        let gave_up = tokio::time::timeout(Duration::from_secs(1), refreshing.refresh_now()).await;
        assert!(gave_up.is_err());
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Done in the background: the credentials are there, and no fetch is pending.
        assert!(refreshing.provide_credentials().await.is_ok());
        assert!(refreshing.shared.flight.lock().unwrap().pending.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
