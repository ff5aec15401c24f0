//! The parts of a manifest every kind shares: `metadata`, `spec.auth`, `spec.sink` and Knative's
//! `spec.delivery`.

use std::time::Duration;

use http::Uri;
use serde_json::Value;

use super::LoadOptions;
use super::decode::{Obj, Problems};
use super::secret::{Secret, SecretSource};

/// `metadata`: the component's identity (metric labels, log fields, serving path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    pub namespace: Option<String>,
}

/// Fields of Kubernetes object metadata that an exported manifest may carry; accepted, unused.
const IGNORED_METADATA: [&str; 9] = [
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "finalizers",
    "ownerReferences",
];

pub fn metadata(doc: &mut Obj<'_>, problems: &mut Problems) -> Option<Metadata> {
    let mut meta = doc.require_obj("metadata", problems)?;
    let name = meta.require_string("name", problems);
    let namespace = meta.string("namespace", problems);
    for field in IGNORED_METADATA {
        meta.get(field);
    }
    if let Some(name) = &name {
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            problems.add(
                &meta.path_of("name"),
                format!("{name:?} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')"),
            );
        }
    }
    meta.finish(problems);
    Some(Metadata {
        name: name?,
        namespace,
    })
}

/// `spec.endpoint.url` (TriggerMesh's field): the AWS endpoint of the component's SQS and S3
/// calls, e.g. LocalStack, MinIO or a VPC endpoint. An `http` or `https` URL with a host.
pub fn endpoint(spec: &mut Obj<'_>, problems: &mut Problems) -> Option<String> {
    let mut endpoint = spec.obj("endpoint", problems)?;
    let path = endpoint.path_of("url");
    let url = endpoint.require_string("url", problems);
    endpoint.finish(problems);
    let url = url?;
    match url.parse::<Uri>() {
        Ok(uri)
            if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() =>
        {
            Some(url)
        }
        _ => {
            problems.add(
                &path,
                format!("expected an http:// or https:// URL with a host, found {url:?}"),
            );
            None
        }
    }
}

/// A `{value}` or `{valueFromSecret: {name, key}}` field; required.
pub(super) fn secret_field(
    parent: &mut Obj<'_>,
    key: &'static str,
    options: &LoadOptions,
    problems: &mut Problems,
) -> Option<SecretSource> {
    let mut field = parent.require_obj(key, problems)?;
    let value = field.string("value", problems);
    let from_secret = field
        .obj("valueFromSecret", problems)
        .and_then(|mut reference| {
            let name = reference.require_string("name", problems);
            let key = reference.require_string("key", problems);
            let path = reference.path().to_string();
            reference.finish(problems);
            let (name, key) = (name?, key?);
            let safe = |s: &str| !s.is_empty() && !s.contains('/') && s != "..";
            if !safe(&name) || !safe(&key) {
                problems.add(&path, "secret name and key must be plain names");
                return None;
            }
            // A Secret document of the configuration first, then the mounted Secret's file.
            if let Some(values) = options.secret_documents.get(&name) {
                return match values.get(&key) {
                    Some(value) => Some(SecretSource::Literal(value.clone())),
                    None => {
                        problems.add(
                            &path,
                            format!("the Secret document {name:?} has no key {key:?}"),
                        );
                        None
                    }
                };
            }
            let file = options.secrets_dir.join(name).join(key);
            let source = SecretSource::File(file);
            // A missing file is a configuration mistake worth reporting now, not at the first AWS call.
            if let Err(message) = source.read() {
                problems.add(&path, message);
            }
            Some(source)
        });
    let path = field.path().to_string();
    field.finish(problems);
    match (value, from_secret) {
        (Some(value), None) => Some(SecretSource::Literal(Secret::new(value))),
        (None, Some(source)) => Some(source),
        (Some(_), Some(_)) => {
            problems.add(&path, "set either value or valueFromSecret, not both");
            None
        }
        (None, None) => {
            problems.add(&path, "needs value or valueFromSecret");
            None
        }
    }
}

/// A decoded Knative destination: its URL (or the object whose address it is), and the PEM CA
/// certificates (`CACerts`) that an `https` URL is verified against in addition to the
/// system's roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// With `reference`, a placeholder ([`UNRESOLVED`]) until the reference is resolved.
    pub uri: Uri,
    pub reference: Option<DestinationRef>,
    pub ca_certs: Option<String>,
}

/// The placeholder URL of a destination given by `ref`, replaced when the component starts.
pub const UNRESOLVED: &str = "http://unresolved.invalid/";

/// A destination's `ref` (`apiVersion`, `kind`, `name`, `namespace`): resolved when the
/// component starts, through the Kubernetes API (see `crate::http::addressable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `None`: the component's namespace.
    pub namespace: Option<String>,
}

impl DestinationRef {
    /// `Broker default/default (eventing.knative.dev/v1)`, for messages.
    pub fn describe(&self, namespace: &str) -> String {
        let namespace = self.namespace.as_deref().unwrap_or(namespace);
        format!(
            "{} {namespace}/{} ({})",
            self.kind, self.name, self.api_version
        )
    }
}

fn destination_ref(value: &Value, path: &str, problems: &mut Problems) -> Option<DestinationRef> {
    let mut reference = Obj::new(value, path, problems)?;
    let api_version = reference.require_string("apiVersion", problems);
    let kind = reference.require_string("kind", problems);
    let name = reference.require_string("name", problems);
    let namespace = reference.string("namespace", problems);
    reference.finish(problems);
    Some(DestinationRef {
        api_version: api_version?,
        kind: kind?,
        name: name?,
        namespace,
    })
}

/// `spec.sink` (and `deadLetterSink`): a Knative destination, `uri` (with an optional
/// `CACerts`) or `ref` (resolved when the component starts).
pub fn destination(value: &Value, path: &str, problems: &mut Problems) -> Option<Destination> {
    let mut dest = Obj::new(value, path, problems)?;
    let reference = dest
        .get("ref")
        .and_then(|(value, ref_path)| destination_ref(value, &ref_path, problems));
    let uri = dest.string("uri", problems);
    match (&uri, dest.has("ref")) {
        (None, false) => problems.add(&dest.path_of("uri"), "is required (or ref)"),
        (Some(_), true) => problems.add(
            &dest.path_of("uri"),
            "set either uri or ref, not both (a relative uri beside a ref is not supported)",
        ),
        _ => {}
    }
    let ca_certs = dest.string("CACerts", problems);
    if let Some(pem) = &ca_certs
        && let Err(message) = super::pem::parse_ca_pem(pem)
    {
        problems.add(&dest.path_of("CACerts"), message);
    }
    let uri_path = dest.path_of("uri");
    dest.finish(problems);
    if let Some(reference) = reference {
        let uri = UNRESOLVED.parse().expect("a valid URL");
        return Some(Destination {
            uri,
            reference: Some(reference),
            ca_certs,
        });
    }
    let uri = sink_uri(&uri?)
        .map_err(|message| problems.add(&uri_path, message))
        .ok()?;
    Some(Destination {
        uri,
        reference: None,
        ca_certs,
    })
}

/// An absolute `http://` or `https://` URL without credentials.
pub fn sink_uri(text: &str) -> Result<Uri, String> {
    match text.parse::<Uri>() {
        // hyper would not use them, and the URL is repeated in dead letters and logs.
        Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
            Err("credentials in the URL (user:password@) are not supported".into())
        }
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Ok(uri)
        }
        _ => Err(format!(
            "expected an absolute http:// or https:// URL, found {text:?}"
        )),
    }
}

/// Knative's `backoffPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffPolicy {
    /// delay × 2^(retry − 1)
    Exponential,
    /// delay × retry
    Linear,
}

/// `spec.delivery`, in Knative's shape: how events are delivered to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Retries after the first attempt (Knative `retry`).
    pub retry: u32,
    pub backoff_policy: BackoffPolicy,
    /// Knative `backoffDelay`: the base of the backoff.
    pub backoff_delay: Duration,
    /// Ceiling of one backoff wait (ours: `backoffMaxDelay`).
    pub backoff_max_delay: Duration,
    /// Time allowed for one attempt (Knative `timeout`).
    pub timeout: Duration,
    /// Where events go once the retries are spent.
    pub dead_letter_sink: Option<Uri>,
    /// `deadLetterSink.ref`: resolved into `dead_letter_sink` when the component starts.
    pub dead_letter_ref: Option<DestinationRef>,
    /// Extra CA certificates (PEM) for HTTPS sinks, from the destinations' `CACerts`.
    pub ca_certs: Vec<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry: 5,
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay: Duration::from_millis(500),
            backoff_max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            dead_letter_sink: None,
            dead_letter_ref: None,
            ca_certs: Vec::new(),
        }
    }
}

pub fn delivery(spec: &mut Obj<'_>, problems: &mut Problems) -> Delivery {
    let mut out = Delivery::default();
    let Some(mut delivery) = spec.obj("delivery", problems) else {
        return out;
    };
    if let Some(retry) = delivery.integer("retry", 0, 100, problems) {
        out.retry = retry as u32;
    }
    if let Some(policy) = delivery.string("backoffPolicy", problems) {
        match policy.as_str() {
            "exponential" => out.backoff_policy = BackoffPolicy::Exponential,
            "linear" => out.backoff_policy = BackoffPolicy::Linear,
            other => problems.add(
                &delivery.path_of("backoffPolicy"),
                format!("expected \"exponential\" or \"linear\", found {other:?}"),
            ),
        }
    }
    let delay = delivery.duration("backoffDelay", problems);
    if let Some(delay) = delay {
        out.backoff_delay = delay;
    }
    let max_delay = delivery.duration("backoffMaxDelay", problems);
    if let Some(delay) = max_delay {
        out.backoff_max_delay = delay;
    }
    if out.backoff_delay > out.backoff_max_delay {
        let (base, ceiling) = (out.backoff_delay, out.backoff_max_delay);
        let message = match (delay, max_delay) {
            (_, None) => format!(
                "defaults to {ceiling:?}, less than backoffDelay ({base:?}): set it to at least that"
            ),
            (None, Some(_)) => {
                format!("must be at least backoffDelay ({base:?} by default), found {ceiling:?}")
            }
            (Some(_), Some(_)) => {
                format!("must be at least backoffDelay ({base:?}), found {ceiling:?}")
            }
        };
        problems.add(&delivery.path_of("backoffMaxDelay"), message);
        // Reported, so the manifest is refused; the value stays a valid backoff anyway.
        out.backoff_max_delay = out.backoff_delay;
    }
    if let Some(timeout) = delivery.duration("timeout", problems) {
        if timeout.is_zero() {
            problems.add(&delivery.path_of("timeout"), "must be more than zero");
        } else {
            out.timeout = timeout;
        }
    }
    if let Some((value, path)) = delivery.get("deadLetterSink") {
        if let Some(dead_letters) = destination(value, &path, problems) {
            out.ca_certs.extend(dead_letters.ca_certs);
            out.dead_letter_sink = Some(dead_letters.uri);
            out.dead_letter_ref = dead_letters.reference;
        }
    }
    delivery.finish(problems);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_delivery(value: serde_json::Value) -> (Delivery, Vec<String>) {
        let mut problems = Problems::default();
        let spec = json!({ "delivery": value });
        let mut spec = Obj::new(&spec, "spec", &mut problems).unwrap();
        let delivery = delivery(&mut spec, &mut problems);
        let rendered = problems
            .into_located("d")
            .iter()
            .map(ToString::to_string)
            .collect();
        (delivery, rendered)
    }

    #[test]
    fn delivery_backoff_delay_within_its_ceiling() {
        let (delivery, problems) = decode_delivery(json!({
            "backoffPolicy": "linear", "backoffDelay": "PT2S", "backoffMaxDelay": "PT2S"}));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(delivery.backoff_policy, BackoffPolicy::Linear);
        assert_eq!(delivery.backoff_delay, Duration::from_secs(2));
        assert_eq!(delivery.backoff_max_delay, Duration::from_secs(2));

        let (_, problems) =
            decode_delivery(json!({"backoffDelay": "PT5S", "backoffMaxDelay": "PT1S"}));
        assert_eq!(
            problems,
            vec!["d: spec.delivery.backoffMaxDelay: must be at least backoffDelay (5s), found 1s"]
        );

        // Above the default ceiling (30 s) without one given.
        let (delivery, problems) = decode_delivery(json!({"backoffDelay": "1m"}));
        assert_eq!(
            problems,
            vec![
                "d: spec.delivery.backoffMaxDelay: defaults to 30s, less than backoffDelay (60s): set it to at least that"
            ]
        );
        assert!(delivery.backoff_delay <= delivery.backoff_max_delay);

        // Below the default base (0.5 s) without one given.
        let (delivery, problems) = decode_delivery(json!({"backoffMaxDelay": "PT0.1S"}));
        assert_eq!(
            problems,
            vec![
                "d: spec.delivery.backoffMaxDelay: must be at least backoffDelay (500ms by default), found 100ms"
            ]
        );
        assert!(delivery.backoff_delay <= delivery.backoff_max_delay);
    }
}
