//! What the targets log and count, in one place: requests and events by target
//! (`aws_event_adapter_target_requests_total`, `…_target_events_total`,
//! `…_target_request_seconds`) and failed AWS calls (`aws_event_adapter_aws_errors_total`,
//! logged at most once per 10 s per target, operation and code).

use std::sync::OnceLock;

use http::StatusCode;
use metrics::{Counter, Histogram, counter, histogram};

use super::{Outcome, Target};
use crate::telemetry::log_limit::error_log_due;

/// Counts an AWS call a target made that failed.
pub(crate) fn record_aws_error(
    kind: &'static str,
    name: &str,
    operation: &'static str,
    code: &str,
    message: &str,
) {
    counter!(
        "aws_event_adapter_aws_errors_total",
        "component" => kind,
        "name" => name.to_string(),
        "operation" => operation,
        "code" => code.to_string()
    )
    .increment(1);
    if let Some(suppressed) = error_log_due(kind, name, operation, code) {
        tracing::warn!(
            operation,
            code,
            error = message,
            suppressed,
            "AWS refused or failed a call"
        );
    }
}

/// Mode labels of `aws_event_adapter_target_requests_total`.
const MODES: [&str; 4] = ["binary", "structured", "batch", "none"];

/// One target's metric handles, each registered on first use: looking a labelled metric up
/// in the recorder for every request (building its label strings) cost more than the rest of
/// the bookkeeping together in the profile of the SQS target.
pub(super) struct RequestMetrics {
    requests: [[OnceLock<Counter>; MODES.len()]; 5],
    events: [OnceLock<Counter>; 2],
    pub(super) seconds: Histogram,
}

impl RequestMetrics {
    pub(super) fn new(target: &Target) -> Self {
        RequestMetrics {
            requests: Default::default(),
            events: Default::default(),
            seconds: histogram!(
                "aws_event_adapter_target_request_seconds",
                "component" => target.kind(),
                "name" => target.name().to_string()
            ),
        }
    }

    pub(super) fn request(&self, target: &Target, status: StatusCode, mode: &'static str) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5);
        let mode_index = MODES
            .iter()
            .position(|m| *m == mode)
            .unwrap_or(MODES.len() - 1);
        self.requests[class - 1][mode_index]
            .get_or_init(|| {
                counter!(
                    "aws_event_adapter_target_requests_total",
                    "component" => target.kind(),
                    "name" => target.name().to_string(),
                    "status_class" => format!("{class}xx"),
                    "mode" => MODES[mode_index]
                )
            })
            .increment(1);
    }

    pub(super) fn events(&self, target: &Target, outcomes: &[Outcome]) {
        let written = outcomes.iter().filter(|o| o.is_ok()).count();
        for (index, (label, count)) in [("written", written), ("failed", outcomes.len() - written)]
            .into_iter()
            .enumerate()
        {
            if count > 0 {
                self.events[index]
                    .get_or_init(|| {
                        counter!(
                            "aws_event_adapter_target_events_total",
                            "component" => target.kind(),
                            "name" => target.name().to_string(),
                            "outcome" => label
                        )
                    })
                    .increment(count as u64);
            }
        }
    }
}
