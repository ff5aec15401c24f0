//! Trace context across the adapter: W3C Trace Context's `traceparent` (which is also the
//! CloudEvents distributed-tracing extension, and what Knative Eventing propagates) and SQS's
//! `AWSTraceHeader` system attribute (X-Ray's format), converted both ways so that one trace id
//! follows an event from SQS to the sink, and from a sender to SQS.
//!
//! X-Ray trace ids are `1-<8 hex: epoch seconds>-<24 hex>`; W3C's are the same 32 hex digits
//! without the version and dashes. No span is recorded or exported: the adapter only passes the
//! trace on, with a span id of its own for each hop it makes.

use rand::Rng;

/// A W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub parent_id: String,
    pub sampled: bool,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    // All zeros is invalid in both formats; 2^-64 is not worth a loop, but cheap.
    loop {
        let text: String = (0..bytes)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect();
        if text.bytes().any(|b| b != b'0') {
            return text;
        }
    }
}

impl TraceParent {
    /// A new trace (not sampled: nothing records it here).
    pub fn start() -> TraceParent {
        TraceParent {
            trace_id: random_hex(16),
            parent_id: random_hex(8),
            sampled: false,
        }
    }

    /// The same trace, one hop on: a span id of the adapter's own.
    pub fn next_hop(&self) -> TraceParent {
        TraceParent {
            parent_id: random_hex(8),
            ..self.clone()
        }
    }

    /// Parses a `traceparent` (version `00`, or a later version's first four fields).
    pub fn parse(text: &str) -> Option<TraceParent> {
        let mut parts = text.trim().split('-');
        let (version, trace_id, parent_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid = is_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && is_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && is_hex(parent_id, 16)
            && parent_id.bytes().any(|b| b != b'0')
            && is_hex(flags, 2);
        if !valid {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id: trace_id.to_ascii_lowercase(),
            parent_id: parent_id.to_ascii_lowercase(),
            sampled: flags & 1 == 1,
        })
    }

    /// From SQS's `AWSTraceHeader` (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=…;
    /// Sampled=1`). Without a `Parent`, the adapter's own span id stands in.
    pub fn from_aws_trace_header(header: &str) -> Option<TraceParent> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for field in header.split(';') {
            match field.trim().split_once('=') {
                Some(("Root", value)) => root = Some(value),
                Some(("Parent", value)) => parent = Some(value),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        let mut parts = root?.split('-');
        let (version, time, unique) = (parts.next()?, parts.next()?, parts.next()?);
        if version != "1" || !is_hex(time, 8) || !is_hex(unique, 24) || parts.next().is_some() {
            return None;
        }
        if format!("{time}{unique}").bytes().all(|b| b == b'0') {
            return None; // all zeros is no trace id in W3C's format
        }
        let parent_id = match parent {
            Some(parent) if is_hex(parent, 16) => parent.to_ascii_lowercase(),
            _ => random_hex(8),
        };
        Some(TraceParent {
            trace_id: format!("{time}{unique}").to_ascii_lowercase(),
            parent_id,
            sampled,
        })
    }

    /// The `AWSTraceHeader` of the same trace, this span as the parent.
    pub fn to_aws_trace_header(&self) -> String {
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &self.trace_id[..8],
            &self.trace_id[8..],
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_ray_and_w3c_trace_ids_convert_both_ways() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let trace = TraceParent::from_aws_trace_header(header).unwrap();
        assert_eq!(
            trace.to_string(),
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        );
        assert_eq!(trace.to_aws_trace_header(), header);
        assert_eq!(TraceParent::parse(&trace.to_string()), Some(trace.clone()));
        let next = trace.next_hop();
        assert_eq!(next.trace_id, trace.trace_id);
        assert_ne!(next.parent_id, trace.parent_id);
        // Without Parent: a span id of ours; without Sampled: not sampled.
        let bare =
            TraceParent::from_aws_trace_header("Root=1-5759e988-bd862e3fe1be46a994272793").unwrap();
        assert!(is_hex(&bare.parent_id, 16) && !bare.sampled);
    }

    #[test]
    fn malformed_trace_context_is_ignored() {
        for bad in [
            "",
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8",
            "00-00000000000000000000000000000000-53995c3f42cd8ad8-01",
            "00-5759e988bd862e3fe1be46a994272793-0000000000000000-01",
            "ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
            "00-5759e988bd862e3fe1be46a99427279-53995c3f42cd8ad8-01",
            "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        for bad in [
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Parent=53995c3f42cd8ad8",
            "junk",
        ] {
            assert_eq!(TraceParent::from_aws_trace_header(bad), None, "{bad:?}");
        }
        let started = TraceParent::start();
        assert_eq!(TraceParent::parse(&started.to_string()), Some(started));
    }
}
