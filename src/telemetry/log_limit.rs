//! Rate-limited error logs: a failure is counted every time, but logged at most once per
//! component, operation and code in [`ERROR_LOG_INTERVAL`], with the number of lines left out
//! since (`suppressed`). A queue that throttles for a minute must not write a line per event.

/// At most one log line per component, operation and code in this interval.
pub const ERROR_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// `Some(n)` when a failure of this kind should be logged now, `n` being the failures not
/// logged since the last line.
pub fn error_log_due(
    kind: &'static str,
    name: &str,
    operation: &'static str,
    code: &str,
) -> Option<u64> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (&'static str, String, &'static str, String);
    static LAST: OnceLock<Mutex<HashMap<Key, (std::time::Instant, u64)>>> = OnceLock::new();
    let now = std::time::Instant::now();
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (kind, name.to_string(), operation, code.to_string());
    match last.get_mut(&key) {
        Some((at, suppressed)) if now.duration_since(*at) < ERROR_LOG_INTERVAL => {
            *suppressed += 1;
            None
        }
        Some((at, suppressed)) => {
            *at = now;
            Some(std::mem::take(suppressed))
        }
        None => {
            last.insert(key, (now, 0));
            Some(0)
        }
    }
}
