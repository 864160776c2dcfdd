//! The physical limit of one proxy hop: a pass-through HTTP/1.1 proxy in a few dozen lines of
//! hyper that adds the same `Authorization: Bearer` header cloakroom adds, and nothing else —
//! no session, no cookie, no CSRF check, no store. Keep-alive on both sides, one pooled client,
//! TCP_NODELAY on every socket.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

type Body = Either<Incoming, Empty<Bytes>>;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: String,
    bearer: HeaderValue,
}

impl Proxy {
    async fn forward(&self, mut req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{}{path}", self.upstream).parse::<Uri>() else {
            return status(StatusCode::BAD_REQUEST);
        };
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        for name in HOP_BY_HOP {
            headers.remove(HeaderName::from_static(name));
        }
        headers.remove(HOST);
        headers.insert(AUTHORIZATION, self.bearer.clone());
        match self.client.request(req).await {
            Ok(res) => {
                let mut res = res.map(Either::Left);
                for name in HOP_BY_HOP {
                    res.headers_mut().remove(HeaderName::from_static(name));
                }
                res
            }
            Err(_) => status(StatusCode::BAD_GATEWAY),
        }
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut res = Response::new(Either::Right(Empty::new()));
    *res.status_mut() = code;
    res
}

/// Starts the proxy on a free port in front of `upstream` (`http://host:port`), sending
/// `Authorization: Bearer <token>`. Returns where it listens.
pub async fn start(upstream: &str, token: &str) -> Result<SocketAddr> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let proxy = Arc::new(Proxy {
        client: Client::builder(TokioExecutor::new()).build(connector),
        upstream: upstream.trim_end_matches('/').to_string(),
        bearer: HeaderValue::from_str(&format!("Bearer {token}"))?,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let proxy = proxy.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, std::convert::Infallible>(proxy.forward(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    Ok(addr)
}
