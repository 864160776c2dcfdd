//! The arrange step every BFF interop test shares: node-oidc-provider ([`OidcProvider`]) with
//! the BFF registered as its client, cloakroom's resource server (trusting the provider's
//! issuer and JWKS) as the BFF's `/api` upstream, and one or more BFF instances on one Redis;
//! then a login through the provider's own form. Each test says only what differs.
//!
//! ```ignore
//! let stack = InteropStack::builder().access_token_ttl(3).dpop().instances(2).start().await;
//! let done = stack.login(&browser).await; // the callback's answer
//! let pages = call_spread(&browser, &stack.bff_urls(), 40, "/api/whoami").await;
//! ```

use super::StackConfig;
use super::apps::{start_resource_server_and_bff, wait_ready};
use super::browser::{Browser, Page};
use super::oidc_flow::submit_login;
use super::oidc_provider::{OidcProvider, PROVIDER_USER, ProviderOptions};
use serde_json::{Map, Value, json};
use std::net::TcpListener;

type ProviderTweak = Box<dyn FnOnce(&mut ProviderOptions)>;

/// How the stack is set up before it starts; [`InteropStack::builder`].
pub struct InteropStackBuilder {
    provider: Vec<ProviderTweak>,
    oidc: Map<String, Value>,
    bff: Vec<(String, Value)>,
    instances: usize,
    login_resource: bool,
}

/// A running provider, resource server and BFF instance(s).
pub struct InteropStack {
    /// The provider (its stats, events and log).
    pub op: OidcProvider,
    /// The resource server's base URL (the access tokens' audience).
    pub rs_url: String,
    /// The whole configuration the programs were started with (for more programs on it).
    pub doc: Value,
    /// The BFF instances' base URLs; the first one is the registered client's public URL.
    pub bffs: Vec<String>,
}

impl InteropStackBuilder {
    /// Changes the provider's options (which start from [`ProviderOptions::for_bff`]).
    pub fn provider(mut self, tweak: impl FnOnce(&mut ProviderOptions) + 'static) -> Self {
        self.provider.push(Box::new(tweak));
        self
    }

    /// Sets `bff.oidc.<key>` (next to `issuer`, `client_id` and, unless the provider expects
    /// `private_key_jwt`, `client_secret`).
    pub fn oidc(mut self, key: &str, value: Value) -> Self {
        self.oidc.insert(key.to_string(), value);
        self
    }

    /// Sets `bff.<path>` (dotted).
    pub fn bff(mut self, path: &str, value: Value) -> Self {
        self.bff.push((path.to_string(), value));
        self
    }

    /// Access tokens living `secs` at the provider, refreshed by the BFF 1 s before expiry.
    pub fn access_token_ttl(self, secs: u64) -> Self {
        self.provider(move |o| o.access_token_ttl_secs = secs).bff("refresh_skew_secs", json!(1))
    }

    /// DPoP on at both ends: `features.dPoP` at the provider, `bff.oidc.dpop = "on"`.
    pub fn dpop(self) -> Self {
        self.provider(|o| o.dpop = true).oidc("dpop", json!("on"))
    }

    /// `bff.oidc.resource` = the resource server (the provider's default resource): the login
    /// asks for it first and its code exchange and refreshes name it.
    pub fn login_resource(mut self) -> Self {
        self.login_resource = true;
        self
    }

    /// `n` BFF instances with one configuration (one Redis namespace, one session key).
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n.max(1);
        self
    }

    /// Starts the provider, the resource server and the BFF instance(s), and waits until every
    /// BFF is ready.
    pub async fn start(mut self) -> InteropStack {
        let (rs_listener, rs_url) = listener();
        let (bff_listener, bff_url) = listener();
        let mut options = ProviderOptions::for_bff(&bff_url, &rs_url);
        for tweak in std::mem::take(&mut self.provider) {
            tweak(&mut options);
        }
        let op = OidcProvider::start(options);
        let cfg = self.config(&op, &rs_url, &bff_url);
        start_resource_server_and_bff(&cfg, rs_listener, bff_listener).await;
        let mut bffs = vec![bff_url];
        for _ in 1..self.instances {
            let (l, url) = listener();
            let app = cloakroom::bff::Application::build_with_listener(cfg.bff_config(), l)
                .await
                .expect("bff starts");
            tokio::spawn(app.run_until_stopped());
            bffs.push(url);
        }
        for url in &bffs {
            wait_ready(url).await;
        }
        InteropStack { op, rs_url, bffs, doc: cfg.doc.clone() }
    }

    fn config(&self, op: &OidcProvider, rs_url: &str, bff_url: &str) -> StackConfig {
        let mut oidc = Map::new();
        oidc.insert("issuer".into(), json!(op.issuer()));
        oidc.insert("client_id".into(), json!(op.client_id()));
        if op.options().token_endpoint_auth_method != "private_key_jwt" {
            oidc.insert("client_secret".into(), json!(op.client_secret()));
        }
        if self.login_resource {
            oidc.insert("resource".into(), json!(rs_url));
        }
        oidc.extend(self.oidc.clone());
        let mut cfg = StackConfig::new()
            .set("resource_server.issuer", json!(op.issuer()))
            .set("resource_server.audience", json!(rs_url))
            .set("bff.public_url", json!(bff_url))
            .set("bff.oidc", Value::Object(oidc))
            .set("bff.routes", json!([{ "path": "/api", "upstream": rs_url }]));
        for (path, value) in &self.bff {
            cfg = cfg.set(&format!("bff.{path}"), value.clone());
        }
        cfg
    }
}

impl InteropStack {
    /// A stack with the provider's defaults (client_secret_basic, 300 s access tokens, no
    /// DPoP) and one BFF instance.
    pub fn builder() -> InteropStackBuilder {
        InteropStackBuilder {
            provider: Vec::new(),
            oidc: Map::new(),
            bff: Vec::new(),
            instances: 1,
            login_resource: false,
        }
    }

    /// The first BFF instance's base URL.
    pub fn bff(&self) -> &str {
        &self.bffs[0]
    }

    /// Every BFF instance's base URL.
    pub fn bff_urls(&self) -> Vec<&str> {
        self.bffs.iter().map(String::as_str).collect()
    }

    /// Logs [`PROVIDER_USER`] in at the first instance (`/bff/login?returnTo=/app/`); returns
    /// the callback's answer (a 302 on success).
    pub async fn login(&self, browser: &Browser) -> Page {
        let start = self.start_login(browser, "returnTo=/app/").await;
        self.finish_login(browser, start).await.1
    }

    /// `GET /bff/login?<query>` at the first instance; asserts the redirect to the provider.
    pub async fn start_login(&self, browser: &Browser, query: &str) -> Page {
        let start = browser.get(&format!("{}/bff/login?{query}", self.bff())).await;
        assert_eq!(start.status, 302, "login start: {}", start.body);
        start
    }

    /// From the login start's redirect through the provider's login form (when it shows one:
    /// single sign-on skips it) to the BFF's callback; returns whether the form was shown and
    /// the callback's answer.
    pub async fn finish_login(&self, browser: &Browser, start: Page) -> (bool, Page) {
        let callback_prefix = format!("{}/bff/callback", self.bff());
        let mut page = start;
        let mut form_shown = false;
        for _ in 0..10 {
            match page.location() {
                Some(next) if next.starts_with(&callback_prefix) => break,
                Some(next) => page = browser.get(&next).await,
                None => {
                    assert!(page.body.contains("name=\"password\""), "{}: {}", page.url, page.body);
                    form_shown = true;
                    page = submit_login(browser, &page, PROVIDER_USER).await;
                }
            }
        }
        let callback = browser.follow_until(page, &callback_prefix).await;
        (form_shown, browser.get(&callback).await)
    }
}

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let url = format!("http://127.0.0.1:{}", l.local_addr().expect("addr").port());
    (l, url)
}
