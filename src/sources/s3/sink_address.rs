//! Where a source delivers: its sink's URL, and — for a sink given by `ref` — the reference,
//! looked up again after repeated delivery failures, since an Addressable's address can change
//! (a Broker re-created, a Service moved).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use http::Uri;

use crate::config::common::DestinationRef;
use crate::http::addressable::InCluster;

/// Events in a row the sink did not accept (after their retries) before the ref is looked up
/// again.
const LOOKUP_AGAIN_AFTER: u32 = 3;

pub struct SinkAddress {
    uri: RwLock<Uri>,
    /// The ref and the namespace it is resolved in.
    reference: Option<(DestinationRef, String)>,
    failures: AtomicU32,
    looking_up: AtomicBool,
}

impl SinkAddress {
    pub fn new(uri: Uri, reference: Option<(DestinationRef, String)>) -> Arc<Self> {
        Arc::new(SinkAddress {
            uri: RwLock::new(uri),
            reference,
            failures: AtomicU32::new(0),
            looking_up: AtomicBool::new(false),
        })
    }

    pub fn current(&self) -> Uri {
        self.uri.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn delivered(&self) {
        self.failures.store(0, Ordering::Relaxed);
    }

    /// An event the sink did not accept: after [`LOOKUP_AGAIN_AFTER`] in a row, a sink given
    /// by `ref` is looked up again in the background (one lookup at a time).
    pub fn failed(self: &Arc<Self>) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures < LOOKUP_AGAIN_AFTER || self.reference.is_none() {
            return;
        }
        if self.looking_up.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        use tracing::Instrument;
        tokio::spawn(
            async move {
                this.look_up_again().await;
                this.looking_up.store(false, Ordering::Release);
            }
            .in_current_span(),
        );
    }

    async fn look_up_again(&self) {
        let Some((reference, namespace)) = &self.reference else {
            return;
        };
        let result = match InCluster::from_env() {
            Ok(cluster) => cluster.resolve(reference, namespace).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(uri) => {
                let old = self.current();
                if uri != old {
                    tracing::info!(sink = %uri, was = %old, "the sink's ref resolves to a new address");
                    *self.uri.write().unwrap_or_else(|e| e.into_inner()) = uri;
                }
                self.failures.store(0, Ordering::Relaxed);
            }
            Err(err) => tracing::warn!(
                error = %err,
                "cannot look the sink's ref up again; keeping its address"
            ),
        }
    }
}
