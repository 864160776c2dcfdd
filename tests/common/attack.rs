//! The stack the attack suites (`tests/attack_*.rs`) aim at: the real auth server, resource
//! server and BFF on the shared private Redis, with routes `/api` → resource server and
//! `/echo` → an [`EchoUpstream`], optionally with a [`ProviderTap`] in front of the auth
//! server. Plus the assertions every attack test makes: the contract's status and error code,
//! never a 500, no session created or lost by accident.

pub use super::browser::assert_session_cookie_untouched;
use super::echo_upstream::EchoUpstream;
use super::provider_tap::ProviderTap;
use super::redis::shared;
use super::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::{Value, json};

pub use cloakroom::bff::session::SESSION_COOKIE;

/// A running attack target.
pub struct AttackStack {
    /// The three programs.
    pub stack: Stack,
    /// The upstream behind `/echo`.
    pub echo: EchoUpstream,
    /// The tap in front of the auth server, when started with one.
    pub tap: Option<ProviderTap>,
}

impl AttackStack {
    /// Starts the stack (after `tweak` changed its configuration) and waits until the BFF is ready.
    pub async fn start(tweak: impl FnOnce(StackConfig) -> StackConfig) -> AttackStack {
        Self::start_inner(false, tweak).await
    }

    /// Like [`AttackStack::start`], with every provider call going through a [`ProviderTap`].
    pub async fn start_with_tap(tweak: impl FnOnce(StackConfig) -> StackConfig) -> AttackStack {
        Self::start_inner(true, tweak).await
    }

    async fn start_inner(with_tap: bool, tweak: impl FnOnce(StackConfig) -> StackConfig) -> AttackStack {
        let echo = EchoUpstream::start();
        let cfg = StackConfig::new();
        let rs = cfg.doc["resource_server"]["audience"].clone();
        let mut cfg = cfg.set(
            "bff.routes",
            json!([{ "path": "/api", "upstream": rs }, { "path": "/echo", "upstream": echo.url }]),
        );
        let mut tap = None;
        if with_tap {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let direct = cfg.doc["auth_server"]["issuer"].as_str().expect("issuer").to_string();
            let t = ProviderTap::start(listener, direct);
            for key in ["auth_server.issuer", "bff.oidc.issuer", "resource_server.issuer"] {
                cfg = cfg.set(key, json!(t.url));
            }
            tap = Some(t);
        }
        let stack = Stack::start_ready(tweak(cfg)).await;
        AttackStack { stack, echo, tap }
    }

    /// The tap (panics when started without one).
    pub fn tap(&self) -> &ProviderTap {
        self.tap.as_ref().expect("started with a tap")
    }

    /// `bff_url + path`.
    pub fn bff(&self, path: &str) -> String {
        self.stack.bff(path)
    }

    /// A new browser logged in as `user` (the callback's 302 asserted).
    pub async fn login_as(&self, user: (&str, &str)) -> Browser {
        let browser = self.stack.login_as(user).await;
        assert!(browser.session_cookie().is_some(), "no session cookie after login");
        browser
    }

    /// A new browser logged in as the seeded user.
    pub async fn login(&self) -> Browser {
        self.login_as(USER).await
    }

    /// The CSRF token of the forms on the BFF's start page, as a same-origin page holds it.
    pub async fn form_token(&self, browser: &Browser) -> String {
        self.stack.form_token(browser).await
    }

    /// `method path` with `X-CSRF: 1` (and a JSON body when given), as the SPA sends it.
    pub async fn api(&self, browser: &Browser, method: Method, path: &str, body: Option<Value>) -> Page {
        self.stack.api(browser, method, path, body).await
    }

    /// Asserts the browser's session is still alive (`/bff/user` answers 200).
    pub async fn assert_session_alive(&self, browser: &Browser) {
        self.stack.assert_session_alive(browser).await
    }

    /// The BFF's store keys (namespace prefix removed).
    pub fn bff_keys(&self) -> Vec<String> {
        let ns = format!("{}:", self.stack.doc["bff"]["redis_namespace"].as_str().expect("namespace"));
        shared().dump().into_iter().filter_map(|(k, _)| k.strip_prefix(&ns).map(str::to_string)).collect()
    }

    /// Seconds the BFF's store key `key` (namespace prefix removed) has left.
    pub fn bff_key_ttl(&self, key: &str) -> Option<u64> {
        let ns = self.stack.doc["bff"]["redis_namespace"].as_str().expect("namespace");
        shared().ttl(&format!("{ns}:{key}"))
    }

    /// How many sessions the BFF holds.
    pub fn session_count(&self) -> usize {
        self.bff_keys().iter().filter(|k| k.starts_with("session:")).count()
    }
}

/// Asserts a contract error: `status`, JSON `{"error": code}`, `Cache-Control: no-store`, and
/// no `Access-Control-Allow-*` header.
pub fn assert_error(page: &Page, status: u16, code: &str) {
    assert_eq!(page.status.as_u16(), status, "{}: {}", page.url, page.body);
    assert_eq!(page.json()["error"], code, "{}: {}", page.url, page.body);
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"), "{}", page.url);
    assert_no_cors(page);
}

/// Asserts no `Access-Control-Allow-*` header of any kind.
pub fn assert_no_cors(page: &Page) {
    for (name, _) in page.headers.iter() {
        assert!(!name.as_str().starts_with("access-control-allow"), "{} answered {name}", page.url);
    }
}

/// The `__Host-cloakroom` cookie this response sets with a value (a removal does not count).
pub fn new_session_cookie(page: &Page) -> Option<String> {
    page.set_cookies().into_iter().find(|c| {
        c.starts_with(&format!("{SESSION_COOKIE}="))
            && !c.contains("Max-Age=0")
            && !c.starts_with(&format!("{SESSION_COOKIE}=;"))
    })
}

/// `eyJ…\.…\.` — something shaped like a JWT.
pub fn contains_jwt(s: &str) -> bool {
    s.match_indices("eyJ").any(|(i, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let mut parts = s[i..].splitn(3, '.');
        let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        parts.next().is_some() && a.len() > 3 && a.chars().all(word) && !b.is_empty() && b.chars().all(word)
    })
}

impl AttackStack {
    /// The BFF's derived keys (from its configured `session_key`), to forge what only the BFF
    /// should be able to make.
    pub fn keys(&self) -> cloakroom::bff::keys::Keys {
        use base64::Engine;
        let b64 = self.stack.doc["bff"]["session_key"].as_str().expect("session_key");
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64 key");
        let key: [u8; 32] = raw.try_into().expect("32 bytes");
        cloakroom::bff::keys::Keys::derive(&[key], None)
    }

    /// A session cookie value carrying `id` under a valid signature, percent-encoded as a
    /// browser would send it: the signature check passes, so only the BFF's own id checks stand
    /// between it and the store.
    pub fn signed_cookie(&self, id: &str) -> String {
        let mut jar = actix_web::cookie::CookieJar::new();
        jar.signed_mut(&self.keys().cookie_key)
            .add(actix_web::cookie::Cookie::new(SESSION_COOKIE, id.to_string()));
        let value = jar.get(SESSION_COOKIE).expect("cookie").value().to_string();
        percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC).to_string()
    }
}
