//! A TCP pass-through in front of a real Redis that can hold back the next script call (an
//! `EVAL`/`EVALSHA` command) for a while and then deliver it: a store call that times out at
//! the client yet runs later, as a stalled Redis does. Everything else passes untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The running proxy; stops with the test's runtime.
pub struct StallProxy {
    port: u16,
    /// Milliseconds to hold back the next script call; 0 when not armed.
    stall_ms: Arc<AtomicU64>,
}

impl StallProxy {
    /// Listens on a free loopback port and forwards every connection to `redis_port`.
    pub async fn start(redis_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stall_ms = Arc::new(AtomicU64::new(0));
        let armed = stall_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let armed = armed.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        if chunk.windows(4).any(|w| w == b"EVAL") {
                            let ms = armed.swap(0, Ordering::SeqCst);
                            if ms > 0 {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                        }
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
            }
        });
        Self { port, stall_ms }
    }

    /// `redis://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Holds back the next script call for `stall`, then delivers it.
    pub fn stall_next_script(&self, stall: Duration) {
        self.stall_ms.store(stall.as_millis() as u64, Ordering::SeqCst);
    }
}
