//! Starts the real programs on port 0, wired together, on the shared private Redis.

use super::redis;
use cloakroom::config::{AuthServerConfig, BffConfig, ConfigSource, ResourceServerConfig};
use cloakroom::jwt::SigningKey;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;

/// Client registered for the BFF in every stack.
pub const CLIENT_ID: &str = "cloakroom-bff";
/// The seeded user.
pub const USER: (&str, &str) = ("alice", "alice-password");
/// A second seeded user.
pub const OTHER_USER: (&str, &str) = ("bob", "bob-password");

/// Where each program of a stack listens, known before any of them is built.
pub struct Ports {
    /// Listener for the auth server.
    pub auth: TcpListener,
    /// Listener for the resource server.
    pub rs: TcpListener,
    /// Listener for the BFF.
    pub bff: TcpListener,
    /// Listener for the resource server's notes pages (the BFF's frontend server at `/`).
    pub pages: TcpListener,
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0")
}

fn url_of(l: &TcpListener) -> String {
    url_on(LOOPBACK, l)
}

/// The host name every URL of a stack uses unless [`StackConfig::on_localhost`] is called.
const LOOPBACK: &str = "127.0.0.1";

fn url_on(host: &str, l: &TcpListener) -> String {
    format!("http://{host}:{}", l.local_addr().expect("addr").port())
}

/// Replaces `from` by `to` in every string of `v`.
fn replace_in_strings(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) => *s = s.replace(from, to),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_in_strings(x, from, to)),
        Value::Object(o) => o.values_mut().for_each(|x| replace_in_strings(x, from, to)),
        _ => {}
    }
}

/// The configuration of a stack as one JSON document with the three sections; tests change
/// it before [`Stack::start`].
pub struct StackConfig {
    /// `{"bff": …, "auth_server": …, "resource_server": …}`.
    pub doc: Value,
    /// The auth server's signing key (also on disk for the server), so tests can forge tokens
    /// with the real key.
    pub signing_key: SigningKey,
    ports: Ports,
    key_file: PathBuf,
    host: &'static str,
}

impl StackConfig {
    /// A wired stack on the shared Redis with fresh namespaces and fresh ports.
    pub fn new() -> Self {
        Self::on_redis(Some(redis::shared().url()))
    }

    /// A wired stack on `redis_url`, or on in-memory stores when `None`.
    pub fn on_redis(redis_url: Option<String>) -> Self {
        let ports = Ports { auth: listener(), rs: listener(), bff: listener(), pages: listener() };
        let static_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        let frontends = cloakroom::demo::frontends(&static_dir, &url_of(&ports.pages));
        let (auth, rs, bff) = (url_of(&ports.auth), url_of(&ports.rs), url_of(&ports.bff));
        let signing_key = SigningKey::generate().expect("signing key");
        let key_file = std::env::temp_dir()
            .join(format!("cloakroom-test-key-{}.pem", cloakroom::crypto::random_token(8)));
        std::fs::write(&key_file, signing_key.to_pem()).expect("write key");
        let secret = cloakroom::crypto::random_token(24);
        let ns = redis::unique_namespace("t");
        let session_key = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(cloakroom::crypto::random_bytes::<32>())
        };
        let mut doc = json!({
            "auth_server": {
                "issuer": auth,
                "redis_namespace": format!("{ns}-as"),
                "signing_key_file": key_file.to_string_lossy(),
                "access_token_audience": rs,
                "clients": [{
                    "client_id": CLIENT_ID,
                    "client_secret": secret,
                    "redirect_uris": [format!("{bff}/bff/callback")],
                    "post_logout_redirect_uris": [format!("{bff}/"), format!("{bff}/app/")],
                    "backchannel_logout_uri": format!("{bff}/bff/backchannel-logout"),
                }],
                "users": [
                    {"username": USER.0, "password": USER.1},
                    {"username": OTHER_USER.0, "password": OTHER_USER.1},
                ],
            },
            "resource_server": {
                "issuer": auth,
                "audience": rs,
                "redis_namespace": format!("{ns}-rs"),
            },
            "bff": {
                "public_url": bff,
                "session_key": session_key,
                "redis_namespace": format!("{ns}-bff"),
                "oidc": { "issuer": auth, "client_id": CLIENT_ID, "client_secret": secret },
                "routes": [{ "path": "/api", "upstream": rs }],
                "frontends": frontends,
            },
        });
        if let Some(url) = redis_url {
            for s in ["auth_server", "resource_server", "bff"] {
                doc[s]["redis_url"] = json!(url);
            }
        }
        // The test machine is shared and often starved of CPU; a store operation must not fail
        // a test only because it waited for a core. Tests about the store timeout set their own.
        for s in ["auth_server", "resource_server", "bff"] {
            doc[s]["redis_timeout_ms"] = json!(1000);
        }
        Self { doc, signing_key, ports, key_file, host: LOOPBACK }
    }

    /// Names every program `http://localhost:<port>` instead of `http://127.0.0.1:<port>`
    /// (issuer, public URL, redirect URIs…). Browsers treat `localhost` as a secure context,
    /// so they keep the BFF's `Secure` `__Host-` cookies over plain HTTP there.
    pub fn on_localhost(mut self) -> Self {
        replace_in_strings(&mut self.doc, "http://127.0.0.1:", "http://localhost:");
        self.host = "localhost";
        self
    }

    /// Sets `section.key.path` (dotted) to `value`.
    pub fn set(mut self, path: &str, value: Value) -> Self {
        let mut node = &mut self.doc;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            node = &mut node[*p];
        }
        node[parts[parts.len() - 1]] = value;
        self
    }

    fn source(&self) -> ConfigSource {
        ConfigSource::from_toml_str("")
            .set("auth_server", &self.doc["auth_server"])
            .set("resource_server", &self.doc["resource_server"])
            .set("bff", &self.doc["bff"])
    }

    /// The typed auth-server section.
    pub fn auth_config(&self) -> AuthServerConfig {
        self.source().section("auth_server").expect("auth_server config")
    }

    /// The typed resource-server section.
    pub fn rs_config(&self) -> ResourceServerConfig {
        self.source().section("resource_server").expect("resource_server config")
    }

    /// The typed BFF section.
    pub fn bff_config(&self) -> BffConfig {
        self.source().section("bff").expect("bff config")
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A running stack.
pub struct Stack {
    /// Base URL of the auth server (the issuer).
    pub auth_url: String,
    /// Base URL of the resource server.
    pub rs_url: String,
    /// Base URL of the BFF.
    pub bff_url: String,
    /// The configuration it was started with.
    pub doc: Value,
    /// The auth server's signing key.
    pub signing_key: SigningKey,
    key_file: PathBuf,
}

impl Stack {
    /// Starts all three programs.
    pub async fn start(cfg: StackConfig) -> Stack {
        let (auth_cfg, rs_cfg, bff_cfg) = (cfg.auth_config(), cfg.rs_config(), cfg.bff_config());
        let StackConfig { doc, signing_key, ports, key_file, host } = cfg;
        let (auth_url, rs_url, bff_url) =
            (url_on(host, &ports.auth), url_on(host, &ports.rs), url_on(host, &ports.bff));
        let auth = cloakroom::auth_server::Application::build_with_listener(auth_cfg, ports.auth)
            .await
            .expect("auth server starts");
        tokio::spawn(auth.run_until_stopped());
        start_resource_server(rs_cfg, ports.rs, ports.pages).await;
        let bff =
            cloakroom::bff::Application::build_with_listener(bff_cfg, ports.bff).await.expect("bff starts");
        tokio::spawn(bff.run_until_stopped());
        Stack { auth_url, rs_url, bff_url, doc, signing_key, key_file }
    }

    /// Starts all three programs and waits until the BFF is ready.
    pub async fn start_ready(cfg: StackConfig) -> Stack {
        let stack = Stack::start(cfg).await;
        wait_ready(&stack.bff_url).await;
        stack
    }

    /// The client secret registered for the BFF.
    pub fn client_secret(&self) -> String {
        self.doc["bff"]["oidc"]["client_secret"].as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key_file);
    }
}

/// Starts only the auth server of `cfg` (the other listeners are dropped).
pub async fn start_auth_server(cfg: StackConfig) -> Stack {
    let auth_cfg = cfg.auth_config();
    let StackConfig { doc, signing_key, ports, key_file, .. } = cfg;
    let (auth_url, rs_url, bff_url) = (url_of(&ports.auth), url_of(&ports.rs), url_of(&ports.bff));
    let app = cloakroom::auth_server::Application::build_with_listener(auth_cfg, ports.auth)
        .await
        .expect("auth server starts");
    tokio::spawn(app.run_until_stopped());
    Stack { auth_url, rs_url, bff_url, doc, signing_key, key_file }
}

/// Starts the auth server and the resource server of `cfg`.
pub async fn start_auth_and_resource_server(cfg: StackConfig) -> Stack {
    let (auth_cfg, rs_cfg) = (cfg.auth_config(), cfg.rs_config());
    let StackConfig { doc, signing_key, ports, key_file, .. } = cfg;
    let (auth_url, rs_url, bff_url) = (url_of(&ports.auth), url_of(&ports.rs), url_of(&ports.bff));
    let app = cloakroom::auth_server::Application::build_with_listener(auth_cfg, ports.auth)
        .await
        .expect("auth server starts");
    tokio::spawn(app.run_until_stopped());
    start_resource_server(rs_cfg, ports.rs, ports.pages).await;
    Stack { auth_url, rs_url, bff_url, doc, signing_key, key_file }
}

/// Starts `cfg`'s resource server on `rs` and its BFF on `bff`, with the provider `cfg` names
/// (a third-party one in the interop tests).
pub async fn start_resource_server_and_bff(cfg: &StackConfig, rs: TcpListener, bff: TcpListener) {
    let app = cloakroom::resource_server::Application::build_with_listener(cfg.rs_config(), rs)
        .await
        .expect("resource server starts");
    tokio::spawn(app.run_until_stopped());
    let app =
        cloakroom::bff::Application::build_with_listener(cfg.bff_config(), bff).await.expect("bff starts");
    tokio::spawn(app.run_until_stopped());
}

/// Starts the resource server with its notes pages.
async fn start_resource_server(cfg: ResourceServerConfig, api: TcpListener, pages: TcpListener) {
    let rs = cloakroom::resource_server::Application::build_with_listeners(cfg, api, Some(pages))
        .await
        .expect("resource server starts");
    tokio::spawn(rs.run_until_stopped());
}

/// Waits until the program at `base` answers `GET /readyz` with 200, for up to 10 s (a store
/// on a Redis Cluster or behind Sentinel may take a while to answer a first time).
pub async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{base} never became ready");
}

/// The metrics text the program at `base` serves at `/metrics`.
pub async fn metrics(base: &str) -> String {
    let res = reqwest::get(format!("{base}/metrics")).await.expect("metrics reachable");
    res.text().await.expect("metrics text")
}

/// The token requests the reference auth server at `auth_url` answered for `grant_type`
/// (`cloakroom_auth_token_requests_total`), by outcome.
pub async fn provider_grants(auth_url: &str, grant_type: &str) -> ProviderGrants {
    let text = metrics(auth_url).await;
    let grant = format!("grant_type=\"{grant_type}\"");
    let by_outcome = text
        .lines()
        .filter_map(|l| l.strip_prefix("cloakroom_auth_token_requests_total{"))
        .filter(|l| l.contains(&grant))
        .filter_map(|l| {
            let outcome = l.split("outcome=\"").nth(1)?.split('"').next()?.to_string();
            Some((outcome, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    ProviderGrants(by_outcome)
}

/// Token requests of one grant type, by outcome (`ok`, `invalid_grant`, …).
#[derive(Debug)]
pub struct ProviderGrants(pub Vec<(String, u64)>);

impl ProviderGrants {
    /// Requests answered with tokens.
    pub fn ok(&self) -> u64 {
        self.of("ok")
    }

    /// Requests refused, for whatever reason (for refresh tokens: a reused one among them).
    pub fn refused(&self) -> u64 {
        self.0.iter().filter(|(o, _)| o != "ok").map(|(_, n)| n).sum()
    }

    /// Requests with `outcome`.
    pub fn of(&self, outcome: &str) -> u64 {
        self.0.iter().filter(|(o, _)| o == outcome).map(|(_, n)| n).sum()
    }
}

/// Starts another BFF instance with `stack`'s BFF configuration (the same store and keys),
/// changed by `tweak`, and returns its base URL once it is ready.
pub async fn start_second_bff(stack: &Stack, tweak: impl FnOnce(&mut Value)) -> String {
    let mut doc = stack.doc["bff"].clone();
    tweak(&mut doc);
    let cfg: BffConfig = ConfigSource::from_toml_str("").set("bff", &doc).section("bff").expect("bff config");
    let listener = listener();
    let url = url_of(&listener);
    let app = cloakroom::bff::Application::build_with_listener(cfg, listener).await.expect("bff starts");
    tokio::spawn(app.run_until_stopped());
    wait_ready(&url).await;
    url
}

/// An auth server that a test can stop (connections refused) and start again on the same port,
/// with the same configuration, store and signing key.
pub struct RestartableAuthServer {
    cfg: std::sync::Mutex<AuthServerConfig>,
    addr: std::net::SocketAddr,
    handle: std::sync::Mutex<Option<actix_web::dev::ServerHandle>>,
}

impl RestartableAuthServer {
    async fn start_on(&self, listener: TcpListener) {
        let cfg = self.cfg.lock().unwrap().clone();
        let app = cloakroom::auth_server::Application::build_with_listener(cfg, listener)
            .await
            .expect("auth server starts");
        *self.handle.lock().unwrap() = Some(app.handle());
        tokio::spawn(app.run_until_stopped());
    }

    /// Stops the server at once; its port refuses connections until [`Self::start`].
    pub async fn stop(&self) {
        let handle = self.handle.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Stops it and starts it again on its port with the `auth_server` section `doc` (a key
    /// rotation step).
    pub async fn restart_with(&self, doc: &Value) {
        self.stop().await;
        *self.cfg.lock().unwrap() = ConfigSource::from_toml_str("")
            .set("auth_server", doc)
            .section("auth_server")
            .expect("auth config");
        self.start().await;
    }

    /// Starts it again on its port.
    pub async fn start(&self) {
        let listener = TcpListener::bind(self.addr).expect("rebind the auth server's port");
        self.start_on(listener).await;
    }
}

/// Starts the three programs like [`Stack::start`], with an auth server that can be stopped.
pub async fn start_with_restartable_auth(cfg: StackConfig) -> (Stack, RestartableAuthServer) {
    let (auth_cfg, rs_cfg, bff_cfg) = (cfg.auth_config(), cfg.rs_config(), cfg.bff_config());
    let StackConfig { doc, signing_key, ports, key_file, host } = cfg;
    let (auth_url, rs_url, bff_url) =
        (url_on(host, &ports.auth), url_on(host, &ports.rs), url_on(host, &ports.bff));
    let auth = RestartableAuthServer {
        cfg: std::sync::Mutex::new(auth_cfg),
        addr: ports.auth.local_addr().expect("addr"),
        handle: std::sync::Mutex::new(None),
    };
    auth.start_on(ports.auth).await;
    start_resource_server(rs_cfg, ports.rs, ports.pages).await;
    let bff = cloakroom::bff::Application::build_with_listener(bff_cfg, ports.bff).await.expect("bff starts");
    tokio::spawn(bff.run_until_stopped());
    (Stack { auth_url, rs_url, bff_url, doc, signing_key, key_file }, auth)
}
