//! A trivial upstream: hyper answering every request with a small fixed JSON body, run as its
//! own process (`bench upstream --port P`). Behind it, the paths measure the cost of the hop
//! alone; behind the resource server, each request also pays an ES256 signature check.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"sub":"bench","scope":"openid notes"}"#;

async fn answer(
    _req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}

/// Serves on 127.0.0.1:`port` until killed.
pub async fn serve(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), hyper::service::service_fn(answer))
                .await;
        });
    }
}
