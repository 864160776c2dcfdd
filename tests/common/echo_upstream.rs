//! A test upstream that reports what reached it: every request's method, target, headers
//! (in order, repeats kept) and body length, answered as JSON and kept in a log the test can
//! read afterwards (to prove a refused request never reached it). A real API cannot report the
//! headers it received, hence this small stand-in behind a route of its own.
//!
//! `TRACE` is answered as a server with TRACE enabled does (the request reflected verbatim).
//! `/cors` answers with a permissive CORS policy of its own. `/status/{code}` answers that status (401 with `WWW-Authenticate: Bearer error="invalid_token"`
//! is avoided on purpose: 401 here carries `error="insufficient_user_authentication"` so the BFF
//! passes it through instead of refreshing); any other path echoes.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// What one request looked like when it reached the upstream.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query as received.
    pub target: String,
    /// Header (lower-case name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// Body length.
    pub body_len: usize,
}

impl Seen {
    /// Every value of header `name` (lower case).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }
}

/// A running echo upstream.
#[derive(Clone)]
pub struct EchoUpstream {
    /// Its base URL.
    pub url: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

/// The browser must never see a token, not even from this upstream: a Bearer value is shown
/// as its hash.
fn shown(name: &str, value: &str) -> String {
    match value.strip_prefix("Bearer ") {
        Some(t) if name == "authorization" => {
            format!("Bearer sha256:{}", cloakroom::crypto::sha256_b64(t.as_bytes()))
        }
        _ => value.to_string(),
    }
}

impl EchoUpstream {
    /// Starts it on a free port.
    pub fn start() -> EchoUpstream {
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let app_log = log.clone();
        let server = HttpServer::new(move || {
            App::new().app_data(web::Data::new(app_log.clone())).default_service(web::to(
                |req: HttpRequest, body: web::Bytes, log: web::Data<Arc<Mutex<Vec<Seen>>>>| async move {
                    let headers: Vec<(String, String)> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())
                        })
                        .collect();
                    let seen = Seen {
                        method: req.method().to_string(),
                        target: req.uri().to_string(),
                        headers: headers.clone(),
                        body_len: body.len(),
                    };
                    log.lock().unwrap().push(seen.clone());
                    if let Some(code) =
                        req.path().strip_prefix("/status/").and_then(|c| c.parse::<u16>().ok())
                    {
                        let status = actix_web::http::StatusCode::from_u16(code).unwrap_or_default();
                        let mut res = HttpResponse::build(status);
                        if code == 401 {
                            res.insert_header((
                                "WWW-Authenticate",
                                "Bearer error=\"insufficient_user_authentication\"",
                            ));
                        }
                        return res.json(json!({ "error": format!("upstream_{code}") }));
                    }
                    if req.method().as_str() == "TRACE" {
                        // What a server with TRACE enabled does (RFC 9110 §9.3.8): the request
                        // comes back as it arrived, credentials included.
                        let echoed: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
                        return HttpResponse::Ok()
                            .content_type("message/http")
                            .body(format!("TRACE {} HTTP/1.1\r\n{echoed}\r\n", seen.target));
                    }
                    if req.path() == "/lax-policies" {
                        // An upstream whose page policies would undo the BFF's on its origin.
                        return HttpResponse::Ok()
                            .insert_header(("Content-Security-Policy", "default-src * 'unsafe-inline'"))
                            .insert_header(("X-Frame-Options", "ALLOWALL"))
                            .insert_header(("Referrer-Policy", "unsafe-url"))
                            .insert_header(("Cross-Origin-Opener-Policy", "unsafe-none"))
                            .content_type("text/html")
                            .body("<p>upstream page</p>");
                    }
                    if req.path() == "/cors" {
                        // A permissive upstream: its CORS policy must not become the BFF's.
                        return HttpResponse::Ok()
                            .insert_header(("Access-Control-Allow-Origin", "*"))
                            .insert_header(("Access-Control-Allow-Credentials", "true"))
                            .insert_header(("Access-Control-Allow-Methods", "GET, POST, DELETE"))
                            .insert_header(("Access-Control-Allow-Headers", "x-csrf, content-type"))
                            .insert_header(("Access-Control-Expose-Headers", "*"))
                            .json(json!({ "cors": "permissive" }));
                    }
                    let shown_headers: Vec<Value> =
                        headers.iter().map(|(n, v)| json!([n, shown(n, v)])).collect();
                    HttpResponse::Ok().insert_header(("Set-Cookie", "upstream=1; Path=/")).json(json!({
                        "method": seen.method, "target": seen.target,
                        "headers": shown_headers, "body_len": seen.body_len,
                    }))
                },
            ))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        EchoUpstream { url, log }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests reached it.
    pub fn hits(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}
