//! `private_key_jwt` and pushed authorization requests against a provider this project did not
//! write (node-oidc-provider, with `token_endpoint_auth_method: 'private_key_jwt'` and the
//! BFF's public key registered, PAR required): login, API call, refresh, logout.

mod common;

use cloakroom::jwt::SigningKey;
use common::apps::wait_ready;
use common::browser::call;
use common::oidc_flow::{query_param, submit_login};
use common::oidc_provider::{OidcProvider, PROVIDER_USER, PROVIDER_USER_SUB, ProviderOptions};
use common::{Browser, StackConfig};
use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

/// A BFF authenticating by `private_key_jwt` at `op`, which requires pushed requests, in front
/// of cloakroom's resource server; returns the provider and the BFF's URL.
async fn bff_with_key_at_oidc_provider() -> (OidcProvider, String) {
    let (rs_listener, rs_url) = listener();
    let (bff_listener, bff_url) = listener();
    let key = SigningKey::generate().unwrap();
    let key_file = std::env::temp_dir()
        .join(format!("cloakroom-interop-key-{}.pem", cloakroom::crypto::random_token(8)));
    std::fs::write(&key_file, key.to_pem()).unwrap();
    let op = OidcProvider::start(ProviderOptions {
        access_token_ttl_secs: 3,
        token_endpoint_auth_method: "private_key_jwt".into(),
        client_jwks: Some(json!({ "keys": [key.public_jwk()] })),
        require_par: true,
        ..ProviderOptions::for_bff(&bff_url, &rs_url)
    });
    let oidc = json!({
        "issuer": op.issuer(), "client_id": op.client_id(), "client_auth": "private_key_jwt",
        "client_key_file": key_file.to_string_lossy(), "par": "required",
    });
    let cfg = StackConfig::new()
        .set("resource_server.issuer", json!(op.issuer()))
        .set("resource_server.audience", json!(rs_url))
        .set("bff.public_url", json!(bff_url))
        .set("bff.oidc", oidc)
        .set("bff.routes", json!([{ "path": "/api", "upstream": rs_url }]))
        .set("bff.refresh_skew_secs", json!(1));
    common::apps::start_resource_server_and_bff(&cfg, rs_listener, bff_listener).await;
    wait_ready(&bff_url).await;
    (op, bff_url)
}

#[tokio::test]
async fn with_private_key_jwt_and_required_par_at_oidc_provider_login_api_refresh_and_logout_work() {
    let (op, bff) = bff_with_key_at_oidc_provider().await;
    let browser = Browser::new();
    // Login: the browser carries only client_id and request_uri.
    let start = browser.get(&format!("{bff}/bff/login?returnTo=/app/")).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let location = start.location().unwrap();
    assert!(query_param(&location, "request_uri").is_some(), "{location}");
    for absent in ["code_challenge", "state", "redirect_uri"] {
        assert!(query_param(&location, absent).is_none(), "{absent} in {location}");
    }
    let login_page = browser.follow(start).await;
    let after = submit_login(&browser, &login_page, PROVIDER_USER).await;
    let callback = browser.follow_until(after, &format!("{bff}/bff/callback")).await;
    let done = browser.get(&callback).await;
    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, op.log_text());
    // API call, then a refresh authenticated by a fresh assertion.
    let me = call(&browser, &bff, "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["sub"], PROVIDER_USER_SUB);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = call(&browser, &bff, "/api/whoami").await;
    assert_eq!(again.status, 200, "{}", again.body);
    let stats = op.stats().await;
    assert_eq!((stats.refreshes, stats.refresh_token_reuse), (1, 0), "{stats:?}");
    // Logout revokes the grant with client authentication too.
    let logout = browser
        .send(browser.request(reqwest::Method::POST, &format!("{bff}/bff/logout")).header("X-CSRF", "1"))
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let stats = op.stats().await;
    assert_eq!(stats.revocations, 1, "{stats:?}");
}
