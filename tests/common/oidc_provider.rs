//! A real third-party OpenID provider for interop tests: node-oidc-provider (npm
//! `oidc-provider`) configured like a strict production provider, from
//! `tests/interop/oidc-provider/server.mjs`.
//!
//! Needs `node` (>= 20.18) on the PATH and, the first time on a machine, `npm ci` against the
//! npm registry. A missing `node` fails the test; it never skips it.
//!
//! ```ignore
//! let op = OidcProvider::start(ProviderOptions::for_bff(&bff_url, &rs_url));
//! // BFF config: issuer = op.issuer(), client_id = op.client_id(), client_secret = op.client_secret()
//! let stats = op.stats().await; // refreshes, refresh_token_reuse, backchannel_success, …
//! ```

use super::Browser;
use super::oidc_flow::{pkce_pair, submit_login, urlencode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The account the provider knows: `alice` / `alice-password`, subject `alice`.
pub const PROVIDER_USER: (&str, &str) = ("alice", "alice-password");
/// The subject of [`PROVIDER_USER`].
pub const PROVIDER_USER_SUB: &str = "alice";

/// How the provider is set up. Everything the relying party must have registered (its
/// callback, post-logout and back-channel URLs) is fixed before the provider starts, as at a
/// real provider.
#[derive(Debug, Clone)]
pub struct ProviderOptions {
    /// The confidential client's id.
    pub client_id: String,
    /// Its secret (client_secret_basic).
    pub client_secret: String,
    /// Registered `redirect_uris` (exact match).
    pub redirect_uris: Vec<String>,
    /// Registered `post_logout_redirect_uris`.
    pub post_logout_redirect_uris: Vec<String>,
    /// `backchannel_logout_uri` (with `backchannel_logout_session_required: true`); `None`
    /// registers no back-channel logout.
    pub backchannel_logout_uri: Option<String>,
    /// The resource server URL: the access tokens' `aud` and the default resource indicator.
    pub resource: String,
    /// Access token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
    /// JWS algorithm of the access tokens (`RS256` or `ES256`). ID tokens are RS256.
    pub access_token_alg: String,
    /// node-oidc-provider's `conformIdTokenClaims`: `true` keeps profile claims
    /// (`preferred_username`) out of the ID token; `false` (the default here, like most
    /// deployed providers) puts them in.
    pub conform_id_token_claims: bool,
    /// `false` (the default, strict): refresh tokens only when `offline_access` was granted,
    /// which the provider does only for a request with `prompt=consent` (OpenID Connect Core
    /// 11). `true`: a refresh token for every code grant of the client, as some providers do.
    pub refresh_tokens_without_offline_access: bool,
    /// `client_secret_basic` (the default) or `private_key_jwt` (then no secret is registered,
    /// only [`Self::client_jwks`]).
    pub token_endpoint_auth_method: String,
    /// The client's public keys (a JWK set) for `private_key_jwt`.
    pub client_jwks: Option<Value>,
    /// Pushed authorization requests are always offered; `true` requires them
    /// (`require_pushed_authorization_requests` in the metadata).
    pub require_par: bool,
    /// `features.dpop.enabled` (RFC 9449): DPoP proofs accepted, tokens bound when one comes.
    pub dpop: bool,
    /// With [`Self::dpop`]: every proof must carry a nonce of the provider
    /// (`features.dPoP.nonceSecret` + `requireNonce`); one without, or with an unknown one, is
    /// answered `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    pub dpop_require_nonce: bool,
    /// More resource indicators (RFC 8707) the client may ask tokens for; each token's `aud`
    /// is its resource.
    pub extra_resources: Vec<String>,
    /// The client may use the client credentials grant (`features.clientCredentials`).
    pub client_credentials: bool,
}

impl ProviderOptions {
    /// A client registered for a BFF at `bff_url` (`{bff}/bff/callback`, post-logout
    /// `{bff}/` and `{bff}/app/`, back-channel `{bff}/bff/backchannel-logout`) whose access
    /// tokens are for `resource`.
    pub fn for_bff(bff_url: &str, resource: &str) -> Self {
        let bff = bff_url.trim_end_matches('/');
        Self {
            client_id: "cloakroom-bff".into(),
            client_secret: cloakroom::crypto::random_token(24),
            redirect_uris: vec![format!("{bff}/bff/callback")],
            post_logout_redirect_uris: vec![format!("{bff}/"), format!("{bff}/app/")],
            backchannel_logout_uri: Some(format!("{bff}/bff/backchannel-logout")),
            resource: resource.to_string(),
            access_token_ttl_secs: 300,
            refresh_token_ttl_secs: 24 * 60 * 60,
            access_token_alg: "RS256".into(),
            conform_id_token_claims: false,
            refresh_tokens_without_offline_access: false,
            token_endpoint_auth_method: "client_secret_basic".into(),
            client_jwks: None,
            require_par: false,
            dpop: false,
            dpop_require_nonce: false,
            extra_resources: Vec::new(),
            client_credentials: false,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "resource": self.resource,
            "access_token_ttl": self.access_token_ttl_secs,
            "refresh_token_ttl": self.refresh_token_ttl_secs,
            "access_token_alg": self.access_token_alg,
            "conform_id_token_claims": self.conform_id_token_claims,
            "refresh_tokens_without_offline_access": self.refresh_tokens_without_offline_access,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "client_jwks": self.client_jwks,
            "require_par": self.require_par,
            "dpop": self.dpop,
            "dpop_require_nonce": self.dpop_require_nonce,
            "extra_resources": self.extra_resources,
            "client_credentials": self.client_credentials,
        })
    }
}

/// The provider's counters (`GET /__test/stats`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ProviderStats {
    /// Authorization codes exchanged for tokens.
    pub authorization_codes_redeemed: u64,
    /// Successful refresh_token grants.
    pub refreshes: u64,
    /// Successful client_credentials grants.
    pub client_credentials: u64,
    /// Refresh tokens issued (at code exchange and at every rotation).
    pub refresh_tokens_issued: u64,
    /// Refresh tokens consumed by rotation.
    pub refresh_tokens_consumed: u64,
    /// Rotated refresh tokens presented again (each revokes its grant).
    pub refresh_token_reuse: u64,
    /// `invalid_grant` answers to refresh_token grants (reuse, revoked, unknown, expired).
    pub refresh_invalid_grant: u64,
    /// Token requests answered `use_dpop_nonce` (a proof without the provider's current nonce).
    pub dpop_nonce_challenges: u64,
    /// Grants revoked (reuse detection, revocation endpoint, logout).
    pub grants_revoked: u64,
    /// Successful RFC 7009 revocation requests.
    pub revocations: u64,
    /// Completed RP-initiated logouts.
    pub end_sessions: u64,
    /// Back-channel logout requests the client answered with success.
    pub backchannel_success: u64,
    /// Back-channel logout requests that failed.
    pub backchannel_error: u64,
    /// Unexpected errors inside the provider.
    pub server_errors: u64,
    /// Successful logins on the login form.
    pub logins: u64,
    /// Refused logins on the login form.
    pub failed_logins: u64,
}

/// A running provider. Dropping it kills the process.
pub struct OidcProvider {
    issuer: String,
    options: ProviderOptions,
    child: Mutex<Option<Child>>,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oidc-provider")
}

impl OidcProvider {
    /// Installs the fixture's npm dependencies if needed, starts the provider on a free port
    /// and waits until its discovery document answers.
    ///
    /// Blocking. The process is tied to the calling thread (PR_SET_PDEATHSIG), so call it from
    /// the test's own thread, not from a short-lived one.
    pub fn start(options: ProviderOptions) -> OidcProvider {
        require_node();
        install_dependencies();
        let mut cmd = Command::new("node");
        cmd.current_dir(fixture_dir())
            .arg("server.mjs")
            .arg("0")
            .env("OIDC_FIXTURE_CONFIG", options.to_json().to_string())
            .env("NODE_ENV", "production")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The provider dies with the thread that started it, so a crashed or killed test run
        // leaves no provider behind.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn node server.mjs");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout piped");
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"event\":\"listening\"") {
                    let _ = tx.send(line.clone());
                }
                out_log.lock().unwrap().push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr piped");
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });

        // Generous: node starts in about a second, but a loaded 2-core machine has taken over 20.
        let listening = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("oidc-provider did not start; its output:\n{}", log.lock().unwrap().join("\n"));
            }
        };
        let issuer = serde_json::from_str::<Value>(&listening).expect("listening line is JSON")["issuer"]
            .as_str()
            .expect("issuer in listening line")
            .to_string();
        let provider = OidcProvider {
            issuer,
            options,
            child: Mutex::new(Some(child)),
            log,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
        };
        provider.wait_ready();
        provider
    }

    fn wait_ready(&self) {
        let port = self.port();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if http_get_status(port, "/.well-known/openid-configuration") == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("oidc-provider on port {port} never served its discovery document:\n{}", self.log_text());
    }

    /// `http://127.0.0.1:PORT` (no trailing slash), exactly the `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        url::Url::parse(&self.issuer).expect("issuer url").port().expect("issuer port")
    }

    /// The registered client's id.
    pub fn client_id(&self) -> &str {
        &self.options.client_id
    }

    /// The registered client's secret.
    pub fn client_secret(&self) -> &str {
        &self.options.client_secret
    }

    /// The options it was started with.
    pub fn options(&self) -> &ProviderOptions {
        &self.options
    }

    /// The discovery document.
    pub async fn metadata(&self) -> Value {
        self.get_json("/.well-known/openid-configuration").await
    }

    /// The provider's counters.
    pub async fn stats(&self) -> ProviderStats {
        serde_json::from_value(self.get_json("/__test/stats").await).expect("stats shape")
    }

    async fn get_json(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.issuer))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} at the provider: {e}"));
        assert_eq!(res.status(), 200, "GET {path} at the provider");
        res.json().await.expect("JSON body")
    }

    /// Every event line it printed so far (one JSON document each), oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.log.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The events named `name` so far.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["event"] == name).collect()
    }

    /// Waits (polling every 10 ms, at most `timeout`) until `count` events named `name` were
    /// logged, and returns them; panics with the log otherwise.
    pub async fn wait_for_events(&self, name: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.events_named(name);
            if found.len() >= count {
                return found;
            }
            if Instant::now() >= deadline {
                // The provider's whole output follows when it is dropped during the panic.
                panic!("expected {count} {name} event(s) from the provider within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Its whole output so far (events and stderr), for failure messages.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The authorization endpoint URL for a code flow with PKCE `challenge` (S256). A scope
    /// with `offline_access` gets `prompt=consent`, without which the provider drops it.
    pub fn authorization_url(&self, scope: &str, challenge: &str, state: &str, nonce: &str) -> String {
        let prompt = if scope.split(' ').any(|s| s == "offline_access") { "&prompt=consent" } else { "" };
        format!(
            "{}/auth?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256{prompt}",
            self.issuer,
            urlencode(self.client_id()),
            urlencode(&self.options.redirect_uris[0]),
            urlencode(scope),
            urlencode(state),
            urlencode(nonce),
            challenge
        )
    }

    /// Logs `user` in through the provider's form and redeems the code as the registered
    /// client would: returns the token endpoint's JSON (asserting a 200).
    pub async fn code_flow_tokens(&self, browser: &Browser, user: (&str, &str), scope: &str) -> Value {
        let (verifier, challenge) = pkce_pair();
        let code = self.authorize(browser, user, scope, &challenge).await;
        let (status, body) = self.redeem(&code, &verifier).await;
        assert_eq!(status, 200, "token response: {body}");
        body
    }

    /// Redeems an authorization `code` with its PKCE `verifier` at the token endpoint, as the
    /// registered client (its first redirect URI): the status and JSON answer.
    pub async fn redeem(&self, code: &str, verifier: &str) -> (u16, Value) {
        let redirect_uri = self.options.redirect_uris[0].clone();
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Runs the front-channel part of the code flow (login form, automatic consent) and
    /// returns the authorization code from the redirect to the client's callback.
    pub async fn authorize(
        &self,
        browser: &Browser,
        user: (&str, &str),
        scope: &str,
        challenge: &str,
    ) -> String {
        let redirect_uri = &self.options.redirect_uris[0];
        let start = browser.get(&self.authorization_url(scope, challenge, "st", "n-0S6_WzA2Mj")).await;
        let login_page = browser.follow(start).await;
        let after = submit_login(browser, &login_page, user).await;
        let callback = browser.follow_until(after, redirect_uri).await;
        let pairs: Vec<(String, String)> =
            url::Url::parse(&callback).expect("callback url").query_pairs().into_owned().collect();
        pairs
            .iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no code in the callback {callback}"))
    }

    /// POSTs `form` to the token endpoint with the client's credentials (client_secret_basic).
    pub async fn token_request(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.client_post("/token", form).await
    }

    /// POSTs `form` to the revocation endpoint with the client's credentials.
    pub async fn revoke(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.client_post("/token/revocation", form).await
    }

    async fn client_post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.issuer))
            .basic_auth(self.client_id(), Some(self.client_secret()))
            .form(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} at the provider: {e}"));
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Kills the provider (a crash) and waits until it is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- oidc-provider output ---\n{}", self.log_text());
        }
    }
}

/// The status of a plain `GET path` on 127.0.0.1:`port`, without an async runtime.
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Fails the test (never skips it) when Node.js is missing or too old.
fn require_node() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let out = Command::new("node").arg("--version").output().unwrap_or_else(|e| {
            panic!(
                "the interop tests need Node.js >= 20.18 and npm on the PATH to run oidc-provider \
                 (`node --version` failed: {e}); install Node.js, do not skip these tests"
            )
        });
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let parts: Vec<u32> =
            version.trim_start_matches('v').split('.').filter_map(|p| p.parse().ok()).collect();
        let (major, minor) = (parts.first().copied().unwrap_or(0), parts.get(1).copied().unwrap_or(0));
        assert!(
            major > 20 || (major == 20 && minor >= 18),
            "the interop tests need Node.js >= 20.18 (oidc-provider 9 uses URL.parse); found {version:?}"
        );
    });
}

/// Runs `npm ci` for the fixture once per machine (and again whenever package-lock.json
/// changes).
fn install_dependencies() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| super::npm::install(&fixture_dir()));
}
