//! `display`: a CloudEvents sink that prints every event it receives — attributes, then data
//! (pretty JSON when it is JSON) — and answers 200. The demo's sink and a debugging tool.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cloudevents::{Data, Event};
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use tokio_util::sync::CancellationToken;

use crate::cloudevents::inbound;
use crate::http::server::{self, Handler, ListenError, json_error, respond};

/// Largest request accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Serves until `shutdown` fires; fails only when `addr` cannot be listened on.
pub async fn run(addr: SocketAddr, shutdown: CancellationToken) -> Result<(), ListenError> {
    let (listener, local) = server::bind(addr).await?;
    tracing::info!(%local, "display sink listening");
    let handler: Handler = Arc::new(|request| {
        Box::pin(async move {
            if request.method() != Method::POST {
                return json_error(StatusCode::METHOD_NOT_ALLOWED, "POST CloudEvents here");
            }
            let (parts, body) = request.into_parts();
            let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) => return json_error(StatusCode::PAYLOAD_TOO_LARGE, &err.to_string()),
            };
            match inbound::decode_events(&parts.headers, body) {
                Ok(events) => {
                    let mut out = std::io::stdout().lock();
                    for event in &events {
                        let _ = writeln!(out, "{}", format_event(event));
                    }
                    let _ = out.flush();
                    respond(StatusCode::OK, "application/json", "{}")
                }
                Err(err) => {
                    let status =
                        StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
                    json_error(status, &err.message)
                }
            }
        })
    });
    server::serve(listener, handler, shutdown, Duration::from_secs(5)).await;
    Ok(())
}

/// One block per event: a header line, the attributes, then the data.
pub fn format_event(event: &Event) -> String {
    let mut text = String::from("☁️  cloudevents.Event\nContext Attributes,\n");
    for (name, value) in event.iter() {
        text.push_str(&format!("  {name}: {value}\n"));
    }
    match event.data() {
        None => {}
        Some(Data::Json(json)) => {
            let pretty = serde_json::to_string_pretty(json).unwrap_or_default();
            text.push_str(&format!("Data,\n  {}\n", pretty.replace('\n', "\n  ")));
        }
        Some(Data::String(s)) => text.push_str(&format!("Data,\n  {s}\n")),
        Some(Data::Binary(bytes)) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(json) => {
                let pretty = serde_json::to_string_pretty(&json).unwrap_or_default();
                text.push_str(&format!("Data,\n  {}\n", pretty.replace('\n', "\n  ")));
            }
            Err(_) => text.push_str(&format!("Data,\n  {}\n", String::from_utf8_lossy(bytes))),
        },
    }
    text
}
