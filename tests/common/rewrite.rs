//! An HTTP proxy in front of moto that lets a test change SQS's JSON-protocol requests and
//! answers, for the answers moto never gives: a batch entry SQS failed through its own fault
//! (`SenderFault: false`), a `GetQueueUrl` answer without a URL. Everything else passes
//! through unchanged; the adapter's requests stay SigV4-signed SDK calls to a real emulator.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_event_adapter::http::server::{self, Handler, respond};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Applied to an answer's JSON.
pub type AnswerEdit = Box<dyn FnOnce(&mut Value) + Send>;
/// Called with the operation (`DeleteMessageBatch`) and the request's JSON, which it may change;
/// returns what to do to the answer (`None`: leave it).
pub type Edit = Arc<dyn Fn(&str, &mut Value) -> Option<AnswerEdit> + Send + Sync>;

pub struct RewritingProxy {
    pub addr: SocketAddr,
    /// The operations that passed, in order.
    seen: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
}

impl RewritingProxy {
    pub async fn start(upstream: SocketAddr, edit: Edit) -> RewritingProxy {
        let (listener, addr) = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let handler: Handler = {
            let seen = seen.clone();
            Arc::new(move |request| {
                let (client, edit, seen) = (client.clone(), edit.clone(), seen.clone());
                Box::pin(async move {
                    let (mut parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let operation = parts
                        .headers
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|t| t.rsplit('.').next())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push(operation.clone());
                    let mut answer_edit = None;
                    let body = match serde_json::from_slice::<Value>(&body) {
                        Ok(mut json) if !operation.is_empty() => {
                            answer_edit = edit(&operation, &mut json);
                            Bytes::from(json.to_string())
                        }
                        _ => body,
                    };
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    let uri = format!(
                        "http://{upstream}{}",
                        parts.uri.path_and_query().map_or("/", |p| p.as_str())
                    );
                    parts.uri = uri.parse().unwrap();
                    let request = http::Request::from_parts(parts, Full::new(body));
                    let answer = match client.request(request).await {
                        Ok(answer) => answer,
                        Err(err) => {
                            return respond(StatusCode::BAD_GATEWAY, "text/plain", err.to_string());
                        }
                    };
                    let (mut parts, body) = answer.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let body = match (answer_edit, serde_json::from_slice::<Value>(&body)) {
                        (Some(edit), Ok(mut json)) => {
                            edit(&mut json);
                            Bytes::from(json.to_string())
                        }
                        _ => body,
                    };
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    http::Response::from_parts(parts, Full::new(body))
                })
            })
        };
        let stop = CancellationToken::new();
        tokio::spawn(server::serve(
            listener,
            handler,
            stop.clone(),
            Duration::from_secs(1),
        ));
        RewritingProxy { addr, seen, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many calls of `operation` passed.
    pub fn count(&self, operation: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|o| *o == operation)
            .count()
    }
}

impl Drop for RewritingProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
