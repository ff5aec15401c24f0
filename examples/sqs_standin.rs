//! A small, fast, in-memory SQS stand-in for benchmarks (issue 7).
//!
//! It speaks the SQS JSON 1.0 protocol the AWS SDKs use (`POST /`, `Content-Type:
//! application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<Operation>`), so any SQS client can be
//! pointed at it, for instance with `AWS_ENDPOINT_URL=http://127.0.0.1:PORT`. Signatures are not
//! checked: any credentials do. Correctness tests keep using moto; this is for load.
//!
//! ```text
//! cargo run --release --example sqs_standin -- \
//!     --addr 127.0.0.1:0 --queue bench --preload 100000 [--records-per-message 1] \
//!     [--latency 20ms --jitter 5ms]
//! listening on http://127.0.0.1:41234     <- first line on stdout, flushed once preloaded
//! ```
//!
//! - Queues: `--queue NAME` (repeatable; default `bench`) in account `--account`
//!   (123456789012), region `--region` (us-east-1): URL `http://<host>/<account>/<name>` (the
//!   host the client used), ARN `arn:aws:sqs:<region>:<account>:<name>`. `CreateQueue` adds more.
//! - `--preload N` puts N S3 event notifications (`{"Records":[...]}`, `--records-per-message`
//!   `ObjectCreated:Put` records each, every object key distinct, bucket `--bucket`) into the
//!   first queue.
//! - `--discard-sent`: sends are answered and counted but not kept (flat memory for long
//!   SQS-target runs). `--visibility-timeout` (30 s), `--max-message-size` (262144) are the
//!   queues' defaults.
//! - Operations: `GetQueueUrl`, `GetQueueAttributes`, `ReceiveMessage` (1 to 10 messages, long
//!   polling up to `WaitTimeSeconds`, visibility timeouts, `SentTimestamp`,
//!   `ApproximateReceiveCount` and the other system attributes, message attributes),
//!   `DeleteMessage(Batch)`, `ChangeMessageVisibility(Batch)`, `SendMessage(Batch)` (MD5s as
//!   SQS computes them, `DelaySeconds`), `CreateQueue`, `ListQueues`, `PurgeQueue`. Errors have
//!   SQS's shape: HTTP 400, `{"__type": ..., "message": ...}` and `x-amzn-query-error`.
//! - STS `AssumeRole` in the AWS query protocol (`POST /` with a form body
//!   `Action=AssumeRole&RoleArn=...&RoleSessionName=...`, answered in `text/xml`), for
//!   aws-config's `AssumeRoleProvider` (the adapter's `credentials.assumeIamRole`): every answer
//!   has fresh, distinct keys (`ASIA<counter>`) that expire `--sts-expiry-secs` (3600) after the
//!   call, whatever `DurationSeconds` asked, so a benchmark can force a refresh every few
//!   seconds. A missing `RoleArn`/`RoleSessionName` (`MissingParameter`) or another `Action`
//!   (`InvalidAction`) gets STS's error shape: HTTP 400, `<ErrorResponse><Error><Type>Sender`
//!   `</Type><Code>...</Code><Message>...</Message></Error><RequestId>...`. No other STS call.
//! - `--latency 20ms` (`us`, `ms`, `s`; default `0`) delays every SQS and STS answer, errors
//!   included, by that much plus `--jitter` (default `0`), drawn uniformly in `[0, jitter)` for
//!   each answer: the latency is a floor, the mean is `latency + jitter / 2`. The delay comes after
//!   the operation ran (a sent message is visible at once; a long poll returns as soon as a
//!   message is visible, plus the delay), and each request waits on its own deadline, so
//!   thousands of concurrent calls overlap. A thread of its own keeps the deadlines, within
//!   ~0.3 ms (tokio's timer was up to 1.5 ms late). The control endpoints below answer at once.
//!   See `latency.rs`.
//! - Semantics: a received message stays hidden for its visibility timeout, then is delivered
//!   again with `ApproximateReceiveCount` one higher; every receive gives a new receipt handle
//!   and only the latest one deletes or changes the message (an older one, or one of a deleted
//!   message, fails with `ReceiptHandleIsInvalid`); `ChangeMessageVisibility` to 0 makes it
//!   visible at once. A long poll returns as soon as a message is visible. FIFO queues
//!   (`.fifo`) get group ids and sequence numbers, but no deduplication or per-group ordering;
//!   no retention limit, no dead-letter queues.
//!
//! Control endpoints for a benchmark harness (plain HTTP, no SQS headers):
//!
//! - `GET /stats`: `{"requests": {"ReceiveMessage": n, ...}, "requests_total", "assume_role",
//!   "sent", "preloaded", "received", "deleted", "expired", "visibility_changes",
//!   "invalid_receipts", "empty_receives", "visible", "in_flight", "delayed", "queues": {NAME:
//!   {...}}}`: counters since start (take differences between phases), and the current depths.
//!   `requests` and `requests_total` count SQS requests only (SQS requests per event);
//!   `assume_role` counts the STS `AssumeRole` requests (answered or refused) apart.
//! - `POST /preload?n=N[&queue=NAME][&records=K]`: N more notifications, at run time.
//!
//! The adapter against it: an `AWSS3Source` with `destination.sqs.queueARN:
//! arn:aws:sqs:us-east-1:123456789012:bench` (or an `AWSSQSTarget` with that `arn`), run with
//! `AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x
//! AWS_SECRET_ACCESS_KEY=x`. To measure credential refreshes, give it `spec.auth.credentials`
//! (any keys) with `assumeIamRole: arn:aws:iam::123456789012:role/bench` (any role ARN) and a
//! `refreshMargin` below the stand-in's `--sts-expiry-secs`; STS goes to the same
//! `AWS_ENDPOINT_URL`, and `/stats` `assume_role` counts the refreshes.
//!
//! One `Mutex` per queue, no background task (but the deadline thread with `--latency`), HTTP/1.1
//! keep-alive (and h2c) with hyper; `--threads` (default 1) worker threads, to leave the
//! machine's cores to what is measured.

// A crate root looks for its modules beside itself: point at the example's own directory.
#[path = "sqs_standin/latency.rs"]
mod latency;
#[path = "sqs_standin/notifications.rs"]
mod notifications;
#[path = "sqs_standin/protocol/mod.rs"]
mod protocol;
#[path = "sqs_standin/queue.rs"]
mod queue;
#[path = "sqs_standin/sts.rs"]
mod sts;

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use latency::{Latency, parse_duration};
use notifications::Generator;
use protocol::{Op, SqsError};
use queue::{Queue, Settings};

/// Largest request body read (a batch is at most a few MiB even with 1 MiB messages).
const MAX_BODY: usize = 16 << 20;
const JSON_1_0: &str = "application/x-amz-json-1.0";

#[derive(Parser, Debug, Clone)]
#[command(about = "An in-memory SQS stand-in (JSON 1.0 protocol) for benchmarks")]
pub struct Args {
    /// Address to listen on; port 0 picks a free one. The bound address is printed first.
    #[arg(long, default_value = "127.0.0.1:9324")]
    pub addr: SocketAddr,
    /// A queue to create at start (repeatable); names ending in .fifo are FIFO queues.
    #[arg(long = "queue", default_value = "bench")]
    pub queues: Vec<String>,
    /// S3 notifications to put in the first queue at start.
    #[arg(long, default_value_t = 0)]
    pub preload: usize,
    /// S3 records in each preloaded message.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub records_per_message: u16,
    /// Bucket named in the preloaded notifications.
    #[arg(long, default_value = "bench-uploads")]
    pub bucket: String,
    #[arg(long, default_value = "123456789012")]
    pub account: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Default visibility timeout of the queues, in seconds.
    #[arg(long, default_value_t = 30)]
    pub visibility_timeout: u32,
    /// MaximumMessageSize of the queues, in bytes.
    #[arg(long, default_value_t = 262_144)]
    pub max_message_size: usize,
    /// Answer SendMessage(Batch) as usual but keep nothing: for send-only benchmarks (the SQS
    /// target), so that memory stays flat; preloads are kept.
    #[arg(long)]
    pub discard_sent: bool,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Lifetime of the credentials STS AssumeRole hands out, in seconds (whatever
    /// DurationSeconds asks): a few seconds make the adapter refresh them that often.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub sts_expiry_secs: u32,
    /// Delay of every SQS and STS answer, a simulated round trip (e.g. 20ms; `0` for none).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub latency: std::time::Duration,
    /// Added to `--latency`, uniformly in [0, jitter) for each answer (e.g. 5ms).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub jitter: std::time::Duration,
}

/// Everything the server shares between connections.
pub struct App {
    pub account: String,
    pub region: String,
    pub defaults: Settings,
    /// The address bound (the host of queue URLs when a request has no `Host`).
    pub bound: SocketAddr,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    /// Creation order (the first one is the default for preloads).
    order: RwLock<Vec<String>>,
    requests: [AtomicU64; Op::ALL.len()],
    pub generator: Generator,
    pub records_per_message: usize,
    /// STS AssumeRole (counted apart from the SQS requests).
    pub sts: sts::Sts,
    /// The delay of each SQS and STS answer.
    pub latency: Latency,
}

impl App {
    pub fn new(args: &Args, bound: SocketAddr) -> App {
        let app = App {
            account: args.account.clone(),
            region: args.region.clone(),
            defaults: Settings {
                visibility_timeout: args.visibility_timeout.min(43_200),
                receive_wait_seconds: 0,
                max_message_size: args.max_message_size,
                discard_sent: args.discard_sent,
            },
            bound,
            queues: RwLock::default(),
            order: RwLock::default(),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            generator: Generator::new(&args.bucket, &args.region),
            records_per_message: usize::from(args.records_per_message),
            sts: sts::Sts::new(args.sts_expiry_secs),
            latency: Latency {
                base: args.latency,
                jitter: args.jitter,
            },
        };
        for name in &args.queues {
            app.create_queue(name, app.defaults);
        }
        app
    }

    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// All queues in creation order.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let order = self.order.read().unwrap_or_else(|e| e.into_inner());
        order.iter().filter_map(|name| self.queue(name)).collect()
    }

    /// Creates the queue unless it exists (then its settings are kept, as SQS does when they
    /// are the same).
    pub fn create_queue(&self, name: &str, settings: Settings) -> Arc<Queue> {
        let mut queues = self.queues.write().unwrap_or_else(|e| e.into_inner());
        queues
            .entry(name.to_string())
            .or_insert_with(|| {
                self.order
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(name.to_string());
                Arc::new(Queue::new(name, &self.account, &self.region, settings))
            })
            .clone()
    }

    pub fn url_of(&self, queue: &Queue, host: &str) -> String {
        format!("http://{host}/{}/{}", queue.account, queue.name)
    }

    /// The queue of a URL `http(s)://<any host>/<account>/<name>` (or just the path).
    pub fn queue_of_url(&self, url: &str) -> Result<Arc<Queue>, SqsError> {
        if url.is_empty() {
            return Err(SqsError::new(
                protocol::ErrorKind::MissingParameter,
                "The request must contain the parameter QueueUrl.",
            ));
        }
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
            None => url,
        };
        let mut parts = path.trim_matches('/').split('/');
        let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(protocol::no_such_queue());
        };
        self.queue(name)
            .filter(|q| q.account == account)
            .ok_or_else(protocol::no_such_queue)
    }

    /// Adds `count` notifications to a queue (the first by default).
    pub fn preload(&self, queue: Option<&str>, count: usize, records: usize) -> Option<Arc<Queue>> {
        let queue = match queue {
            Some(name) => self.queue(name)?,
            None => self.queues().into_iter().next()?,
        };
        // In chunks, so a huge preload does not hold the queue's lock for long.
        let mut left = count;
        while left > 0 {
            let chunk = left.min(10_000);
            queue.send(self.generator.messages(chunk, records), true);
            left -= chunk;
        }
        Some(queue)
    }

    pub fn stats(&self) -> Value {
        let requests: serde_json::Map<String, Value> = Op::ALL
            .iter()
            .map(|op| {
                let n = self.requests[op.index()].load(Ordering::Relaxed);
                (op.name().to_string(), json!(n))
            })
            .collect();
        let requests_total: u64 = self
            .requests
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum();
        let mut total = json!({
            "requests": requests,
            "requests_total": requests_total,
            "assume_role": self.sts.assume_role_count(),
        });
        let mut per_queue = serde_json::Map::new();
        for queue in self.queues() {
            let (visible, in_flight, delayed) = queue.depth();
            let c = &queue.counters;
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            let one = json!({
                "sent": load(&c.sent),
                "preloaded": load(&c.preloaded),
                "received": load(&c.received),
                "deleted": load(&c.deleted),
                "expired": load(&c.expired),
                "visibility_changes": load(&c.visibility_changes),
                "invalid_receipts": load(&c.invalid_receipts),
                "empty_receives": load(&c.empty_receives),
                "visible": visible,
                "in_flight": in_flight,
                "delayed": delayed,
            });
            if let (Value::Object(sums), Value::Object(fields)) = (&mut total, &one) {
                for (key, value) in fields {
                    let sum = sums.get(key).and_then(Value::as_u64).unwrap_or(0);
                    sums.insert(key.clone(), json!(sum + value.as_u64().unwrap_or(0)));
                }
            }
            per_queue.insert(queue.name.clone(), one);
        }
        total["queues"] = Value::Object(per_queue);
        total
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
    )
}

async fn handle(
    app: Arc<App>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(Op::from_target);
    // SQS and STS answers (errors too) wait out the simulated round trip, each on its own timer.
    if let Some(op) = target
        && request.method() == Method::POST
    {
        let response = sqs(&app, op, request).await;
        app.latency.wait().await;
        return Ok(response);
    }
    if sts::is_query(&request) {
        let response = sts::call(&app, request).await;
        app.latency.wait().await;
        return Ok(response);
    }
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/stats") => response(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&app.stats()).unwrap_or_default(),
        ),
        (&Method::POST, "/preload") => preload(&app, request.uri().query().unwrap_or("")),
        (&Method::GET, "/" | "/health" | "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::POST, _) => text(
            StatusCode::BAD_REQUEST,
            "only the SQS JSON 1.0 protocol (X-Amz-Target: AmazonSQS.<Operation>) and STS AssumeRole (a form body, Action=AssumeRole) are served",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    })
}

async fn sqs(app: &App, op: Op, request: Request<Incoming>) -> Response<Full<Bytes>> {
    app.requests[op.index()].fetch_add(1, Ordering::Relaxed);
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| app.bound.to_string(), str::to_string);
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the body: {error}"),
            );
        }
    };
    let mut response = match protocol::call(app, op, &body, &host).await {
        Ok(body) => response(StatusCode::OK, JSON_1_0, body),
        Err(error) => {
            let mut answer = response(StatusCode::BAD_REQUEST, JSON_1_0, error.body());
            if let Some(code) = error.kind.wire().1
                && let Ok(value) = HeaderValue::from_str(&format!("{code};Sender"))
            {
                answer.headers_mut().insert("x-amzn-query-error", value);
            }
            answer
        }
    };
    if let Ok(id) = HeaderValue::from_str(&queue::uuid()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

fn preload(app: &App, query: &str) -> Response<Full<Bytes>> {
    let mut count = None;
    let mut queue = None;
    let mut records = app.records_per_message;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "n" => count = value.parse::<usize>().ok(),
            "queue" => queue = Some(value),
            "records" => match value.parse::<usize>() {
                Ok(k @ 1..=1000) => records = k,
                _ => return text(StatusCode::BAD_REQUEST, "records: 1 to 1000"),
            },
            _ => return text(StatusCode::BAD_REQUEST, &format!("unknown parameter {key}")),
        }
    }
    let Some(count) = count else {
        return text(
            StatusCode::BAD_REQUEST,
            "usage: POST /preload?n=N[&queue=NAME][&records=K]",
        );
    };
    match app.preload(queue, count, records) {
        Some(queue) => {
            let (visible, in_flight, delayed) = queue.depth();
            let body = json!({
                "queue": queue.name,
                "preloaded": count,
                "visible": visible,
                "in_flight": in_flight,
                "delayed": delayed,
            });
            response(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        }
        None => text(StatusCode::NOT_FOUND, "no such queue"),
    }
}

/// Accepts connections until the listener fails; each connection is served on its own task.
pub async fn serve(listener: TcpListener, app: Arc<App>) -> std::io::Result<()> {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) if is_transient(&error) => continue,
            Err(error) => return Err(error),
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(app.clone(), request));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Accept errors that concern one connection (or a momentary lack of descriptors).
fn is_transient(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || error.raw_os_error() == Some(24) // EMFILE
}

/// Binds, creates the queues and preloads: the server is ready when this returns.
pub async fn start(args: &Args) -> std::io::Result<(TcpListener, Arc<App>)> {
    let listener = TcpListener::bind(args.addr).await?;
    let app = Arc::new(App::new(args, listener.local_addr()?));
    if args.preload > 0 {
        app.preload(None, args.preload, usize::from(args.records_per_message));
    }
    Ok((listener, app))
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async {
        let (listener, app) = start(&args).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", app.bound)?;
        stdout.flush()?;
        drop(stdout);
        tokio::select! {
            result = serve(listener, app) => result,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

#[cfg(test)]
#[path = "sqs_standin/tests.rs"]
mod tests;
