//! `cloakroom demo`: the auth server, the resource server and the BFF in one process, wired
//! together, with the demo user seeded. The BFF serves the demo's two apps through the same
//! `[[bff.frontends]]` settings a user writes: the single-page app's files (`static/`, unpacked
//! from the binary into a private directory) at `/app`, and the resource server's
//! server-rendered notes pages (a frontend server on `pages_listen`) at `/`.

use crate::config::{AuthServerConfig, BffConfig, ConfigSource, ResourceServerConfig};
use crate::startup::StartupError;
use crate::{auth_server, bff, crypto, resource_server};
use base64::Engine;
use std::path::Path;

/// The demo user.
pub const DEMO_USER: (&str, &str) = ("alice", "alice-password");
/// The demo user's TOTP secret (base32), the second factor of `urn:cloakroom:mfa` logins: add
/// it to an authenticator app, or compute codes with `oathtool --totp -b <secret>`.
pub const DEMO_TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Defaults that wire the three programs together on their default ports. Any key from the
/// configuration file or the environment overrides them.
pub fn defaults() -> serde_json::Value {
    let client_secret = crypto::random_token(32);
    let session_key = base64::engine::general_purpose::STANDARD.encode(crypto::random_bytes::<32>());
    let mut v = serde_json::json!({
        "bff": {
            "session_key": session_key,
            "oidc": {
                "issuer": "http://localhost:8081",
                "client_id": "cloakroom-bff",
                "client_secret": client_secret,
            },
            "routes": [{ "path": "/api", "upstream": "http://localhost:8082" }],
        },
        "auth_server": {
            "clients": [{
                "client_id": "cloakroom-bff",
                "client_secret": client_secret,
                "redirect_uris": ["http://localhost:8080/bff/callback"],
                "post_logout_redirect_uris": ["http://localhost:8080/", "http://localhost:8080/app/"],
                "backchannel_logout_uri": "http://localhost:8080/bff/backchannel-logout",
            }],
            "users": [{ "username": DEMO_USER.0, "password": DEMO_USER.1, "totp_secret": DEMO_TOTP_SECRET }],
        },
        "resource_server": { "pages_listen": "127.0.0.1:8083" },
    });
    // Each program gets its own namespace, so one Redis can serve all three.
    let redis_url = std::env::var("REDIS_URL").ok();
    for (section, ns) in
        [("bff", "cloakroom-bff"), ("auth_server", "cloakroom-auth"), ("resource_server", "cloakroom-rs")]
    {
        v[section]["redis_namespace"] = serde_json::Value::String(ns.into());
        if let Some(url) = &redis_url {
            v[section]["redis_url"] = serde_json::Value::String(url.clone());
        }
    }
    v
}

/// The demo's frontends: the single-page app's files from `static_dir` at `/app`, the notes
/// pages served by `pages_url` at `/` (the test harness wires its stacks the same way).
pub fn frontends(static_dir: &Path, pages_url: &str) -> serde_json::Value {
    serde_json::json!([
        { "path": "/app", "dir": static_dir.to_string_lossy() },
        { "path": "/", "upstream": pages_url },
    ])
}

/// The single-page app's files, compiled into the binary.
const STATIC_FILES: [(&str, &str); 3] = [
    ("index.html", include_str!("../../static/index.html")),
    ("app.js", include_str!("../../static/app.js")),
    ("app.css", include_str!("../../static/app.css")),
];

/// Writes the single-page app's files into a new private directory, so that the demo runs from
/// anywhere (a container, another working directory) with only the binary.
pub fn unpack_static_files() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("cloakroom-demo-{}", crypto::random_token(8)));
    std::fs::create_dir(&dir)?;
    for (name, content) in STATIC_FILES {
        std::fs::write(dir.join(name), content)?;
    }
    Ok(dir)
}

/// Starts all three and serves until one of them stops.
pub async fn run(config_file: Option<&Path>) -> Result<(), StartupError> {
    let mut defaults = defaults();
    let static_dir = unpack_static_files().map_err(|e| StartupError::Other(format!("static files: {e}")))?;
    defaults["bff"]["frontends"] = frontends(&static_dir, "http://localhost:8083");
    let source = ConfigSource::load_with_defaults(defaults, config_file)?;
    let as_cfg: AuthServerConfig = source.section("auth_server")?;
    let rs_cfg: ResourceServerConfig = source.section("resource_server")?;
    let bff_cfg: BffConfig = source.section("bff")?;

    let auth = auth_server::Application::build(as_cfg.clone()).await?;
    let rs = resource_server::Application::build(rs_cfg.clone()).await?;
    let bff_app = bff::Application::build(bff_cfg.clone()).await?;

    println!();
    println!("cloakroom demo is running:");
    println!("  BFF, server-rendered page  {}/", bff_cfg.public_url);
    println!("  BFF, single-page app       {}/app/", bff_cfg.public_url);
    println!("  auth server                {}", as_cfg.issuer);
    println!("  resource server            http://{}", rs_cfg.listen.0);
    if let Some(pages) = rs_cfg.pages_listen {
        println!("  notes pages (behind BFF)   http://{}", pages.0);
    }
    println!("  log in as                  {} / {}", DEMO_USER.0, DEMO_USER.1);
    println!("  second factor (TOTP)       secret {DEMO_TOTP_SECRET} (SHA-1, 6 digits, 30 s)");
    println!();

    // Each server stops on SIGTERM (gracefully) or SIGINT; wait for all three so that none
    // is cut off while it still finishes its in-flight requests.
    let (a, r, b) =
        tokio::join!(auth.run_until_stopped(), rs.run_until_stopped(), bff_app.run_until_stopped());
    let _ = std::fs::remove_dir_all(&static_dir);
    a.and(r).and(b)
}
