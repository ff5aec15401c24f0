//! TLS: the listener serving HTTPS (plain HTTP refused), and HTTPS sinks verified against a
//! destination's own CA (`CACerts`), and a `sink.ref` resolved through an API server stand-in
//! over HTTPS with the service account's token and CA. Certificates are made for each run with
//! `openssl`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A CA and a server certificate for 127.0.0.1 / localhost signed by it, in `dir`.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=aws-event-adapter test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

/// An HTTPS client that trusts only `ca.pem`.
fn https_client(ca_pem: &str) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in aws_event_adapter::config::pem::parse_ca_pem(ca_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_https_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let aws = Aws::new().await;
    let (_, queue_arn) = aws.create_queue(&unique("tls")).await;
    let manifest = format!(
        "apiVersion: targets.triggermesh.io/v1alpha1\nkind: AWSSQSTarget\nmetadata: {{ name: q }}\nspec: {{ arn: \"{queue_arn}\" }}\n"
    );
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let adapter = Adapter::spawn_with_env(
        &manifest,
        &[
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let client = https_client(&std::fs::read_to_string(dir.path().join("ca.pem")).unwrap());
    let port = adapter.http_addr.port();
    let ready = format!("https://localhost:{port}/readyz");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(response) = client.get(ready.parse().unwrap()).await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready over HTTPS; log:\n{}",
            adapter.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An HTTPS client with the CA: served.
    let request = http::Request::post(format!("https://localhost:{port}/q"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "tls-1")
        .header("ce-source", "tests")
        .header("ce-type", "t")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(
        client.request(request).await.unwrap().status(),
        StatusCode::OK
    );
    // A plain-HTTP client: refused (no HTTP answer at all).
    assert!(
        !matches!(
            http_get(adapter.http_addr, "/healthz").await,
            Ok((StatusCode::OK, _))
        ),
        "plain HTTP must not be served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_sinks_are_verified_against_the_destination_ca() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    // A sink served over TLS with the test CA's certificate.
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    let handler: Handler = Arc::new(move |request| {
        let counter = counter.clone();
        Box::pin(async move {
            let _ = request.into_body().collect().await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            respond(StatusCode::OK, "application/json", "{}")
        })
    });
    let (port, stop) = serve_https(dir.path(), handler).await;
    let sink = format!("https://localhost:{port}/");

    let aws = Aws::new().await;
    let (queue_url, queue_arn) = aws.create_queue(&unique("https-sink")).await;
    let ca_block: String = ca_pem.lines().map(|l| format!("      {l}\n")).collect();
    let manifest = format!(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\nmetadata: {{ name: tls-sink }}\nspec:\n  arn: arn:aws:s3:::media-uploads\n  destination: {{ sqs: {{ queueARN: \"{queue_arn}\" }} }}\n  sink:\n    uri: {sink}\n    CACerts: |\n{ca_block}  receive: {{ waitTimeSeconds: 1 }}\n"
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    aws.send(&queue_url, &put_sample_with_key("over-tls.bin"))
        .await;
    wait_until(WAIT, "an event at the HTTPS sink", || {
        received.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    aws.wait_queue_empty(&queue_url, WAIT).await;
    drop(adapter);

    // Without the CA, the sink's certificate is not trusted: nothing is delivered.
    let (queue_url, queue_arn) = aws.create_queue(&unique("https-untrusted")).await;
    let manifest = format!(
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: AWSS3Source\nmetadata: {{ name: untrusted }}\nspec:\n  arn: arn:aws:s3:::media-uploads\n  destination: {{ sqs: {{ queueARN: \"{queue_arn}\" }} }}\n  sink: {{ uri: \"{sink}\" }}\n  delivery: {{ retry: 0 }}\n  receive: {{ waitTimeSeconds: 1, redeliveryDelay: 30s }}\n"
    );
    let adapter = Adapter::start(&manifest, &[]).await;
    aws.send(&queue_url, &put_sample_with_key("untrusted.bin"))
        .await;
    adapter
        .wait_metric(
            "aws_event_adapter_sink_events_total",
            "outcome=\"failed\"",
            1.0,
            WAIT,
        )
        .await;
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "nothing reached the sink"
    );
    stop.cancel();
}

/// A stand-in for the Kubernetes API server over HTTPS: it answers `GET` of the Broker
/// `team/default` with `status.address.url` = `sink` (as it is at each request), only with the
/// service account's token; 404 for anything else. Returns its port and the number of requests
/// with the right token.
async fn api_server(
    dir: &Path,
    sink: Arc<std::sync::Mutex<String>>,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>, CancellationToken) {
    let authorized = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handler: Handler = {
        let authorized = authorized.clone();
        Arc::new(move |request| {
            let (sink, authorized) = (sink.clone(), authorized.clone());
            Box::pin(async move {
                let token = request
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                if token != Some("Bearer sa-token-123") {
                    return respond(StatusCode::UNAUTHORIZED, "application/json", "{}");
                }
                authorized.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if request.uri().path()
                    == "/apis/eventing.knative.dev/v1/namespaces/team/brokers/default"
                {
                    let url = sink.lock().unwrap().clone();
                    let broker = serde_json::json!({
                        "kind": "Broker",
                        "status": { "address": { "url": url } }
                    });
                    return respond(StatusCode::OK, "application/json", broker.to_string());
                }
                respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    r#"{"kind":"Status"}"#,
                )
            })
        })
    };
    let (port, stop) = serve_https(dir, handler).await;
    (port, authorized, stop)
}

/// Serves `handler` over HTTPS on a loopback port with the certificate `make_certificates`
/// wrote into `dir` (for `localhost`); returns the port and the token that stops the server.
async fn serve_https(dir: &Path, handler: Handler) -> (u16, CancellationToken) {
    let acceptor =
        aws_event_adapter::http::tls::acceptor(dir.join("server.pem"), dir.join("server.key"))
            .unwrap();
    let (listener, addr) = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(server::serve_tls(
        listener,
        handler,
        stop.clone(),
        Duration::from_secs(1),
        Some(acceptor),
        server::DEFAULT_MAX_CONNECTIONS,
    ));
    (addr.port(), stop)
}

/// Certificates, and the service account's files as Kubernetes mounts them (token, CA and
/// namespace `team`); returns the account's folder.
fn service_account(dir: &Path) -> std::path::PathBuf {
    make_certificates(dir);
    let account = dir.join("serviceaccount");
    std::fs::create_dir(&account).unwrap();
    std::fs::write(account.join("token"), "sa-token-123\n").unwrap();
    std::fs::copy(dir.join("ca.pem"), account.join("ca.crt")).unwrap();
    std::fs::write(account.join("namespace"), "team").unwrap();
    account
}

/// An AWSSQSSource on `queue` whose sink is the Broker `broker`; `receive` is its
/// `spec.receive`, `extra` more lines under `spec:`.
fn ref_source(name: &str, queue: &str, broker: &str, receive: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: sources.triggermesh.io/v1alpha1
kind: AWSSQSSource
metadata: {{ name: {name} }}
spec:
  arn: {queue}
  auth: {{ credentials: {{ accessKeyID: {{ value: testing }}, secretAccessKey: {{ value: testing }} }} }}
  sink:
    ref: {{ apiVersion: eventing.knative.dev/v1, kind: Broker, name: {broker} }}
  receive: {receive}
{extra}"#
    )
}

/// The in-cluster variables of a pod, pointing at the API stand-in on `port`.
fn in_cluster_env<'a>(port: &'a str, account: &'a Path) -> [(&'static str, &'a str); 3] {
    [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port),
        (
            "AWS_EVENT_ADAPTER_SERVICEACCOUNT_DIR",
            account.to_str().unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_ref_to_a_broker_is_resolved_through_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let account = service_account(dir.path());
    let sink = TestSink::start(always(StatusCode::OK)).await;
    let address = Arc::new(std::sync::Mutex::new(sink.uri()));
    let (port, authorized, stop) = api_server(dir.path(), address).await;
    let aws = Aws::new().await;
    let (url, arn) = aws.create_queue(&unique("sinkref")).await;
    let (_, other_arn) = aws.create_queue(&unique("sinkref-missing")).await;
    let manifest = |name: &str, queue: &str, broker: &str| {
        ref_source(name, queue, broker, "{ waitTimeSeconds: 1 }", "")
    };
    let port = port.to_string();
    let env = in_cluster_env(&port, &account);
    // The namespace is the pod's (the service account's namespace file).
    let adapter = Adapter::spawn_with_env(&manifest("orders", &arn, "default"), &[], &env);
    adapter.wait_ready(WAIT).await;
    let id = aws.send(&url, r#"{"order": 1}"#).await;
    let accepted = sink.wait_accepted(1, WAIT).await;
    assert_eq!(
        cloudevents::AttributesReader::id(&accepted[0].1),
        id,
        "the event reached the resolved URL"
    );
    assert!(authorized.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert!(adapter.log().contains("sink resolved"));

    // A Broker that does not exist: unready, with an error naming it.
    let missing = Adapter::spawn_with_env(&manifest("lost", &other_arn, "nowhere"), &[], &env);
    wait_until(WAIT, "the lookup error", || {
        missing.log().contains("cannot resolve the sink's ref")
    })
    .await;
    assert!(
        missing
            .log()
            .contains("Broker team/nowhere (eventing.knative.dev/v1): not found"),
        "log:\n{}",
        missing.log()
    );
    let (status, body) = http_get(missing.http_addr, "/readyz").await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_ref_that_keeps_failing_is_looked_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let account = service_account(dir.path());
    let old = TestSink::start(always(StatusCode::SERVICE_UNAVAILABLE)).await;
    let new = TestSink::start(always(StatusCode::OK)).await;
    let address = Arc::new(std::sync::Mutex::new(old.uri()));
    let (port, _, stop) = api_server(dir.path(), address.clone()).await;
    let aws = Aws::new().await;
    let (url, arn) = aws.create_queue(&unique("sinkref-moved")).await;
    let port = port.to_string();
    let manifest = ref_source(
        "moved",
        &arn,
        "default",
        "{ waitTimeSeconds: 1, redeliveryDelay: 1s, maxRedeliveryDelay: 1s }",
        "  delivery: { retry: 0 }\n",
    );
    let adapter = Adapter::spawn_with_env(&manifest, &[], &in_cluster_env(&port, &account));
    adapter.wait_ready(WAIT).await;
    let id = aws.send(&url, r#"{"order": 2}"#).await;
    old.wait_attempts(1, WAIT).await;
    // The Broker moves: after three failures in a row the source asks again, and delivers there.
    *address.lock().unwrap() = new.uri();
    let accepted = new.wait_accepted(1, WAIT).await;
    assert_eq!(cloudevents::AttributesReader::id(&accepted[0].1), id);
    assert!(
        old.attempts() >= 3,
        "looked up again only after three failures"
    );
    assert!(
        adapter
            .log()
            .contains("the sink's ref resolves to a new address"),
        "log:\n{}",
        adapter.log()
    );
    aws.wait_queue_empty(&url, WAIT).await;
    stop.cancel();
}
