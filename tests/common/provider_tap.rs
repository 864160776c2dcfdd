//! A transparent reverse proxy in front of the real auth server: the auth server's `issuer` is
//! the tap's URL, so the BFF, the resource server and the browser reach the provider only
//! through it. It records every secret that crosses the back channel (PKCE verifiers, codes,
//! client secrets, access, refresh and ID tokens) so tests can prove none of them reaches the
//! browser, and it can replace the ID token of a token response — the one fault a real
//! provider cannot be made to produce (a wrong `nonce`, `aud`, `iss`, an expired token…).
//! Everything else is the real auth server's answer, byte for byte.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::sync::{Arc, Mutex};

/// Replaces a genuine ID token (`Some(new)`), or removes it (`None`).
pub type Tamper = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

#[derive(Default)]
struct Shared {
    secrets: Vec<(String, String)>,
    tamper: Option<Tamper>,
    token_type: Option<String>,
    token_requests: usize,
    traceparents: Vec<(String, String)>,
}

/// A running tap.
#[derive(Clone)]
pub struct ProviderTap {
    /// Its base URL (the issuer everyone uses).
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

const FORM_SECRETS: &[&str] = &["code_verifier", "refresh_token", "token", "client_secret", "code"];
const JSON_SECRETS: &[&str] = &["access_token", "refresh_token", "id_token"];

impl ProviderTap {
    /// Starts the tap on `listener`, forwarding to `target` (the auth server's own address).
    pub fn start(listener: std::net::TcpListener, target: String) -> ProviderTap {
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let shared: Arc<Mutex<Shared>> = Arc::default();
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let app_shared = shared.clone();
        let server = HttpServer::new(move || {
            let (shared, http, target) = (app_shared.clone(), http.clone(), target.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (shared, http, target) = (shared.clone(), http.clone(), target.clone());
                async move { forward(&shared, &http, &target, req, body).await }
            }))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        ProviderTap { url, shared }
    }

    /// From now on, every token response says `token_type: <t>` whatever the provider said
    /// (a provider that ignores a DPoP proof and answers `Bearer`).
    pub fn rewrite_token_type(&self, t: &str) {
        self.shared.lock().unwrap().token_type = Some(t.to_string());
    }

    /// From now on, every ID token in a token response goes through `tamper`.
    pub fn tamper_id_tokens(&self, tamper: Tamper) {
        self.shared.lock().unwrap().tamper = Some(tamper);
    }

    /// Every (name, value) secret seen so far.
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().secrets.clone()
    }

    /// Values of the secrets named `name` seen so far.
    pub fn secrets_named(&self, name: &str) -> Vec<String> {
        self.secrets().into_iter().filter(|(n, _)| n == name).map(|(_, v)| v).collect()
    }

    /// (path, `traceparent`) of every request that carried one, in order.
    pub fn traceparents(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().traceparents.clone()
    }

    /// How many token-endpoint requests went through.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().unwrap().token_requests
    }
}

async fn forward(
    shared: &Mutex<Shared>,
    http: &reqwest::Client,
    target: &str,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let is_token = req.path() == "/token";
    {
        let mut s = shared.lock().unwrap();
        if is_token {
            s.token_requests += 1;
        }
        if let Some(tp) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
            s.traceparents.push((req.path().to_string(), tp.to_string()));
        }
        if req.method() == actix_web::http::Method::POST {
            for (k, v) in url::form_urlencoded::parse(&body) {
                if FORM_SECRETS.contains(&k.as_ref()) && !v.is_empty() {
                    s.secrets.push((k.into_owned(), v.into_owned()));
                }
            }
        }
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let mut out = http.request(method, format!("{target}{}", req.uri()));
    for (n, v) in req.headers() {
        if !matches!(n.as_str(), "host" | "content-length" | "connection" | "transfer-encoding") {
            out = out.header(n.as_str(), v.as_bytes());
        }
    }
    let res = match out.body(body.to_vec()).send().await {
        Ok(r) => r,
        Err(_) => return HttpResponse::BadGateway().finish(),
    };
    let status = actix_web::http::StatusCode::from_u16(res.status().as_u16()).expect("status");
    let headers = res.headers().clone();
    let mut bytes = res.bytes().await.unwrap_or_default().to_vec();
    if is_token && let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        let tamper = {
            let mut s = shared.lock().unwrap();
            for k in JSON_SECRETS {
                if let Some(v) = json[*k].as_str() {
                    s.secrets.push(((*k).to_string(), v.to_string()));
                }
            }
            if let Some(t) = &s.token_type
                && json.get("token_type").is_some()
            {
                json["token_type"] = t.clone().into();
                bytes = serde_json::to_vec(&json).expect("json");
            }
            s.tamper.clone()
        };
        if let (Some(tamper), Some(id)) = (tamper, json["id_token"].as_str().map(str::to_string)) {
            match tamper(&id) {
                Some(new) => {
                    shared.lock().unwrap().secrets.push(("id_token".into(), new.clone()));
                    json["id_token"] = new.into();
                }
                None => {
                    json.as_object_mut().expect("object").remove("id_token");
                }
            }
            bytes = serde_json::to_vec(&json).expect("json");
        }
    }
    let mut builder = HttpResponse::build(status);
    for (n, v) in headers.iter() {
        if !matches!(n.as_str(), "content-length" | "transfer-encoding" | "connection") {
            builder.append_header((n.as_str(), v.as_bytes()));
        }
    }
    builder.body(bytes)
}
