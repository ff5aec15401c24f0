//! Resolving a Knative destination's `ref` (`sink.ref`, `deadLetterSink.ref`) to a URL through
//! the Kubernetes API server, with the pod's service account: the Knative Addressable contract
//! (`status.address.url` of a Broker, Channel, Knative Service, any Addressable), and a core
//! `v1` `Service` as `http://<name>.<namespace>.svc.cluster.local[:port]`.
//!
//! Plain HTTPS with the service account's token and CA (in-cluster configuration:
//! `KUBERNETES_SERVICE_HOST`, `KUBERNETES_SERVICE_PORT` and the files under
//! `/var/run/secrets/kubernetes.io/serviceaccount`) rather than a Kubernetes client crate: one
//! GET of one object is all it takes, and kube-rs would add its own HTTP and TLS stacks, well
//! over a minute of build and megabytes of binary, for it.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::config::common::DestinationRef;

/// Where the service account's files are, unless `AWS_EVENT_ADAPTER_SERVICEACCOUNT_DIR` says.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// One lookup, connection included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The pod's namespace (the service account's `namespace` file), for components without one.
pub fn pod_namespace() -> Option<String> {
    let dir = std::env::var("AWS_EVENT_ADAPTER_SERVICEACCOUNT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(SERVICE_ACCOUNT_DIR));
    std::fs::read_to_string(dir.join("namespace"))
        .ok()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

/// The API server as seen from inside a pod.
#[derive(Debug, Clone)]
pub struct InCluster {
    base: String,
    token_file: PathBuf,
    ca_pem: String,
}

impl InCluster {
    /// From the pod's environment; an error that says what is missing outside a cluster.
    pub fn from_env() -> Result<InCluster, String> {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
            "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is not set), so a ref cannot be resolved; set uri instead".to_string()
        })?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        let dir = std::env::var("AWS_EVENT_ADAPTER_SERVICEACCOUNT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(SERVICE_ACCOUNT_DIR));
        let ca_file = dir.join("ca.crt");
        let ca_pem = std::fs::read_to_string(&ca_file).map_err(|err| {
            format!(
                "cannot read the service account's CA {}: {err}",
                ca_file.display()
            )
        })?;
        let host = if host.contains(':') {
            format!("[{host}]") // an IPv6 address
        } else {
            host
        };
        Ok(InCluster {
            base: format!("https://{host}:{port}"),
            token_file: dir.join("token"),
            ca_pem,
        })
    }

    /// The URL `reference` points at; `namespace` is the component's, for a ref without one.
    pub async fn resolve(
        &self,
        reference: &DestinationRef,
        namespace: &str,
    ) -> Result<Uri, String> {
        let namespace = reference.namespace.as_deref().unwrap_or(namespace);
        let what = reference.describe(namespace);
        let object =
            tokio::time::timeout(LOOKUP_TIMEOUT, self.get(&api_path(reference, namespace)))
                .await
                .map_err(|_| {
                    format!("{what}: the API server did not answer within {LOOKUP_TIMEOUT:?}")
                })?
                .map_err(|err| format!("{what}: {err}"))?;
        let url = if reference.api_version == "v1" && reference.kind == "Service" {
            let port = object["spec"]["ports"][0]["port"].as_u64().unwrap_or(80);
            let port = if port == 80 {
                String::new()
            } else {
                format!(":{port}")
            };
            format!(
                "http://{}.{namespace}.svc.cluster.local{port}",
                reference.name
            )
        } else {
            object["status"]["address"]["url"]
                .as_str()
                .ok_or_else(|| {
                    format!("{what} has no status.address.url (not ready, or not Addressable)")
                })?
                .to_string()
        };
        crate::config::common::sink_uri(&url).map_err(|err| format!("{what}: {err}"))
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        // The token is read at each lookup: the kubelet rotates it.
        let token = std::fs::read_to_string(&self.token_file).map_err(|err| {
            format!(
                "cannot read the service account token {}: {err}",
                self.token_file.display()
            )
        })?;
        let tls = crate::http::tls::client_config(Some(&self.ca_pem))?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let request = Request::get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", token.trim()))
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|err| err.to_string())?;
        let response = client
            .request(request)
            .await
            .map_err(|err| format!("cannot reach the API server: {err}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        match status {
            StatusCode::OK => {
                serde_json::from_slice(&body).map_err(|err| format!("not JSON: {err}"))
            }
            StatusCode::NOT_FOUND => Err("not found".into()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(format!(
                "the API server refused the service account ({status}); it needs get on this kind (config/kubernetes/)"
            )),
            other => Err(format!("the API server answered {other}")),
        }
    }
}

/// `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>`, or `/api/v1/...` for the core
/// group. The plural of a kind is its lowercase name plus `s`, which holds for every
/// Addressable Knative ships (brokers, channels, inmemorychannels, services, ...).
fn api_path(reference: &DestinationRef, namespace: &str) -> String {
    let prefix = if reference.api_version.contains('/') {
        format!("/apis/{}", reference.api_version)
    } else {
        format!("/api/{}", reference.api_version)
    };
    format!(
        "{prefix}/namespaces/{namespace}/{}s/{}",
        reference.kind.to_ascii_lowercase(),
        reference.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(api_version: &str, kind: &str) -> DestinationRef {
        DestinationRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "default".into(),
            namespace: None,
        }
    }

    #[test]
    fn api_paths_of_knative_and_core_kinds() {
        assert_eq!(
            api_path(&reference("eventing.knative.dev/v1", "Broker"), "team"),
            "/apis/eventing.knative.dev/v1/namespaces/team/brokers/default"
        );
        assert_eq!(
            api_path(
                &reference("messaging.knative.dev/v1", "InMemoryChannel"),
                "a"
            ),
            "/apis/messaging.knative.dev/v1/namespaces/a/inmemorychannels/default"
        );
        assert_eq!(
            api_path(&reference("v1", "Service"), "a"),
            "/api/v1/namespaces/a/services/default"
        );
    }
}
