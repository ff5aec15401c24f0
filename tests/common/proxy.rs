//! A TCP proxy a test can cut and restore, that can reset connections at random, and that can
//! delay every answer (the fault scenarios put it between the adapter and its sink, or between
//! the adapter and moto).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Forwards connections to `upstream`. [`TcpProxy::cut`] closes the listening socket
/// (connections are refused) and resets every live connection; [`TcpProxy::restore`] listens
/// on the same address again. With a reset rate, that share of requests is answered with a TCP
/// reset before any byte of them reaches the upstream.
pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    reset_per_mille: Arc<AtomicU32>,
    resets: Arc<AtomicUsize>,
    /// Milliseconds each chunk from the upstream waits before it goes to the client.
    delay_ms: Arc<AtomicU64>,
    live: Mutex<Option<CancellationToken>>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = TcpProxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            reset_per_mille: Arc::new(AtomicU32::new(0)),
            resets: Arc::new(AtomicUsize::new(0)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            live: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let token = CancellationToken::new();
        *self.live.lock().unwrap() = Some(token.clone());
        let (upstream, reset, resets, delay) = (
            self.upstream,
            self.reset_per_mille.clone(),
            self.resets.clone(),
            self.delay_ms.clone(),
        );
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                    // Dropping the listener: new connections are refused.
                    () = token.cancelled() => return,
                };
                tokio::spawn(relay(
                    client,
                    upstream,
                    token.clone(),
                    reset.clone(),
                    resets.clone(),
                    delay.clone(),
                ));
            }
        });
    }

    pub fn uri(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Resets this share (per mille) of the requests from now on.
    pub fn set_reset_rate(&self, per_mille: u32) {
        self.reset_per_mille.store(per_mille, Ordering::SeqCst);
    }

    /// Delays every answer of the upstream by `delay` from now on (a slow service).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn resets(&self) -> usize {
        self.resets.load(Ordering::SeqCst)
    }

    /// Unreachable: refused connections, live ones reset.
    pub fn cut(&self) {
        if let Some(token) = self.live.lock().unwrap().take() {
            token.cancel();
        }
    }

    /// Reachable again, on the same address.
    pub async fn restore(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot listen on {} again: {err}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// One proxied connection. HTTP/1.1 without pipelining: a chunk from the client after the
/// upstream has answered (or on a fresh connection) starts a new request; that is where a
/// reset is injected, so the upstream never sees half a request.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    cut: CancellationToken,
    reset_per_mille: Arc<AtomicU32>,
    resets: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let mut request_starts = true;
    loop {
        tokio::select! {
            read = client.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let rate = reset_per_mille.load(Ordering::SeqCst);
                    if request_starts && rate > 0 && rand::random_range(0..1000) < rate {
                        resets.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    request_starts = false;
                    if server.write_all(&up[..n]).await.is_err() {
                        return;
                    }
                }
            },
            read = server.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    request_starts = true;
                    let delay = delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if client.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
            },
            () = cut.cancelled() => break,
        }
    }
    // A reset (RST), not an orderly close.
    let _ = client.set_zero_linger();
    let _ = server.set_zero_linger();
}
