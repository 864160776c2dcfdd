//! A deployment of the three programs as separate processes, wired together by environment
//! variables only (the README's configuration reference): one auth server, one resource
//! server and N BFF instances sharing one Redis and one `session_key`.

use crate::harness::{self, CLIENT_ID};
use crate::procs::Proc;
use anyhow::Result;
use base64::Engine;
use std::path::PathBuf;

/// What to deploy.
pub struct Spec {
    /// `auth_server.access_token_ttl_secs`.
    pub access_token_ttl_secs: u64,
    /// How many BFF instances.
    pub bff_instances: usize,
    /// The BFFs' Redis.
    pub bff_redis: String,
    /// The auth server's and resource server's Redis; `None`: their in-memory stores (so that a
    /// benchmark's Redis counts only what the BFF sends).
    pub backend_redis: Option<String>,
    /// Users seeded at the auth server.
    pub users: Vec<(String, String)>,
    /// Routes besides `/api` → the resource server: `(path, upstream URL)`.
    pub extra_routes: Vec<(String, String)>,
    /// Frontends of built files: `(path, dir)`.
    pub frontends: Vec<(String, String)>,
    /// WebSocket routes (`websocket = true`): `(path, upstream URL)`.
    pub websocket_routes: Vec<(String, String)>,
    /// The BFF instance (by index) that runs with `bff.oidc.dpop = "on"` (DPoP-bound tokens, a
    /// proof per upstream call); the others send Bearer tokens.
    pub dpop_instance: Option<usize>,
    /// Two routes with their own audience (RFC 8707 `resource`), which the client may ask
    /// for: [`AUDIENCE_ROUTE`] to the resource server (resource = its audience, so it accepts
    /// the token) and [`OTHER_AUDIENCE_ROUTE`] to the first extra route's upstream (another
    /// resource). A session then holds the login's token and one per audience.
    pub audience_routes: bool,
    /// A name for logs (`target/bench/logs/NAME-bff0.log` …).
    pub name: &'static str,
}

/// The route with its own audience, to the resource server.
pub const AUDIENCE_ROUTE: &str = "/aud-rs";
/// The route with another audience, to the first extra route's upstream.
pub const OTHER_AUDIENCE_ROUTE: &str = "/aud-other";
/// The other audience's resource indicator.
const OTHER_RESOURCE: &str = "https://other-api.bench.invalid";

/// The running processes.
pub struct Deployment {
    /// The auth server.
    pub auth: Proc,
    /// The resource server.
    pub rs: Proc,
    /// The BFF instances.
    pub bffs: Vec<Proc>,
    /// The BFFs' key namespace in their Redis.
    pub bff_namespace: String,
    secret: String,
    key_file: PathBuf,
}

/// A TOML (and JSON) string literal.
fn lit(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn free_port() -> u16 {
    harness::redis::free_port()
}

fn var(section: &str, key: &str, value: impl Into<String>) -> (String, String) {
    (format!("CLOAKROOM_{}__{}", section.to_uppercase(), key.to_uppercase()), value.into())
}

impl Deployment {
    /// Starts the auth server and resource server, then the BFFs, each once it can be reached.
    pub async fn start(spec: &Spec) -> Result<Deployment> {
        let (auth_port, rs_port) = (free_port(), free_port());
        let bff_ports: Vec<u16> = (0..spec.bff_instances).map(|_| free_port()).collect();
        let auth_url = format!("http://127.0.0.1:{auth_port}");
        let rs_url = format!("http://127.0.0.1:{rs_port}");
        let bff_urls: Vec<String> = bff_ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let secret = cloakroom::crypto::random_token(24);
        let ns = format!("bench-{}", cloakroom::crypto::random_token(6));
        // One signing key on disk: a restarted auth server keeps signing with it.
        let key_file = std::env::temp_dir().join(format!("cloakroom-bench-key-{ns}.pem"));
        std::fs::write(&key_file, cloakroom::jwt::SigningKey::generate()?.to_pem())?;

        let list = |items: Vec<String>| format!("[{}]", items.join(", "));
        let resources =
            if spec.audience_routes { list(vec![lit(&rs_url), lit(OTHER_RESOURCE)]) } else { list(vec![]) };
        let client = format!(
            "[{{client_id={}, client_secret={}, redirect_uris={}, post_logout_redirect_uris={}, backchannel_logout_uri={}, resources={}}}]",
            lit(CLIENT_ID),
            lit(&secret),
            list(bff_urls.iter().map(|u| lit(&format!("{u}/bff/callback"))).collect()),
            list(bff_urls.iter().map(|u| lit(&format!("{u}/"))).collect()),
            lit(&format!("{}/bff/backchannel-logout", bff_urls[0])),
            resources,
        );
        let users = list(
            spec.users.iter().map(|(u, p)| format!("{{username={}, password={}}}", lit(u), lit(p))).collect(),
        );
        let mut auth_env = vec![
            var("auth_server", "listen", format!("127.0.0.1:{auth_port}")),
            var("auth_server", "issuer", auth_url.clone()),
            var("auth_server", "access_token_audience", rs_url.clone()),
            var("auth_server", "access_token_ttl_secs", spec.access_token_ttl_secs.to_string()),
            var("auth_server", "signing_key_file", key_file.display().to_string()),
            var("auth_server", "clients", client),
            var("auth_server", "users", users),
            // Every virtual user signs in from 127.0.0.1: the per-address limit is sized for that.
            var("auth_server", "authorize_max_per_ip", "1000000".to_string()),
        ];
        let mut rs_env = vec![
            var("resource_server", "listen", format!("127.0.0.1:{rs_port}")),
            var("resource_server", "issuer", auth_url.clone()),
            var("resource_server", "audience", rs_url.clone()),
        ];
        if let Some(redis) = &spec.backend_redis {
            auth_env.push(var("auth_server", "redis_url", redis.clone()));
            auth_env.push(var("auth_server", "redis_namespace", format!("{ns}-as")));
            rs_env.push(var("resource_server", "redis_url", redis.clone()));
            rs_env.push(var("resource_server", "redis_namespace", format!("{ns}-rs")));
        }
        let session_key =
            base64::engine::general_purpose::STANDARD.encode(cloakroom::crypto::random_bytes::<32>());
        let bff_namespace = format!("{ns}-bff");
        let routes = list(
            std::iter::once(("/api".to_string(), rs_url.clone()))
                .chain(spec.extra_routes.iter().cloned())
                .map(|(path, upstream)| format!("{{path={}, upstream={}}}", lit(&path), lit(&upstream)))
                .chain(spec.websocket_routes.iter().map(|(path, upstream)| {
                    format!("{{path={}, upstream={}, websocket=true}}", lit(path), lit(upstream))
                }))
                .chain(audience_routes(spec, &rs_url))
                .collect(),
        );
        let frontends = list(
            spec.frontends
                .iter()
                .map(|(path, dir)| format!("{{path={}, dir={}}}", lit(path), lit(dir)))
                .collect(),
        );
        let bffs = bff_ports
            .iter()
            .zip(&bff_urls)
            .enumerate()
            .map(|(i, (port, url))| {
                let mut env = vec![
                    var("bff", "listen", format!("127.0.0.1:{port}")),
                    var("bff", "public_url", url.clone()),
                    var("bff", "session_key", lit(&session_key)),
                    var("bff", "redis_url", spec.bff_redis.clone()),
                    var("bff", "redis_namespace", bff_namespace.clone()),
                    var("bff", "oidc__issuer", auth_url.clone()),
                    var("bff", "oidc__client_id", CLIENT_ID),
                    var("bff", "oidc__client_secret", lit(&secret)),
                    var("bff", "routes", routes.clone()),
                    var("bff", "frontends", frontends.clone()),
                    // Every virtual user connects from 127.0.0.1, as all users do behind a
                    // load balancer: the per-address login limit is sized for that.
                    var("bff", "login_rate_limit_per_ip", "1000000".to_string()),
                ];
                if spec.dpop_instance == Some(i) {
                    env.push(var("bff", "oidc__dpop", "on"));
                }
                Proc::new(&format!("{}-bff{i}", spec.name), "bff", *port, "/readyz", env)
            })
            .collect();
        let mut deployment = Deployment {
            auth: Proc::new(&format!("{}-auth", spec.name), "auth-server", auth_port, "/healthz", auth_env),
            rs: Proc::new(&format!("{}-rs", spec.name), "resource-server", rs_port, "/healthz", rs_env),
            bffs,
            bff_namespace,
            secret,
            key_file,
        };
        deployment.auth.start().await?;
        deployment.rs.start().await?;
        for bff in &mut deployment.bffs {
            bff.start().await?;
        }
        Ok(deployment)
    }

    /// What the harness's login flow needs to log in through BFF instance `i`.
    pub fn login_target(&self, i: usize) -> harness::Stack {
        harness::Stack { auth_url: self.auth.url(), bff_url: self.bffs[i].url(), secret: self.secret.clone() }
    }

    /// Stops every process.
    pub async fn stop(mut self) {
        for bff in &mut self.bffs {
            bff.kill().await;
        }
        self.rs.kill().await;
        self.auth.kill().await;
    }
}

/// The `[[bff.routes]]` of [`Spec::audience_routes`], as inline tables.
fn audience_routes(spec: &Spec, rs_url: &str) -> Vec<String> {
    let Some((_, other)) = spec.extra_routes.first().filter(|_| spec.audience_routes) else {
        return Vec::new();
    };
    [(AUDIENCE_ROUTE, rs_url, rs_url), (OTHER_AUDIENCE_ROUTE, other.as_str(), OTHER_RESOURCE)]
        .iter()
        .map(|(path, upstream, resource)| {
            format!("{{path={}, upstream={}, resource={}}}", lit(path), lit(upstream), lit(resource))
        })
        .collect()
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key_file);
    }
}
