//! DPoP-bound tokens (`bff.oidc.dpop = "on"`) against a provider this project did not write
//! (node-oidc-provider with `features.dPoP` enabled) in front of cloakroom's resource server:
//! login, an upstream call with a proof the resource server verifies, a refresh with the
//! session's key.

mod common;

use common::apps::wait_ready;
use common::browser::call;
use common::oidc_flow::submit_login;
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

/// A BFF with dpop on at `op` (DPoP enabled, 3 s access tokens) in front of cloakroom's
/// resource server; returns the provider and the BFF's URL.
async fn bff_with_dpop_at_oidc_provider() -> (OidcProvider, String) {
    let (rs_listener, rs_url) = listener();
    let (bff_listener, bff_url) = listener();
    let op = OidcProvider::start(ProviderOptions {
        access_token_ttl_secs: 3,
        dpop: true,
        ..ProviderOptions::for_bff(&bff_url, &rs_url)
    });
    let oidc = json!({
        "issuer": op.issuer(), "client_id": op.client_id(), "client_secret": op.client_secret(),
        "dpop": "on",
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
async fn with_dpop_on_at_oidc_provider_login_a_bound_api_call_and_a_refresh_work() {
    let (op, bff) = bff_with_dpop_at_oidc_provider().await;
    let browser = Browser::new();

    let done = bff_login_at(&browser, &bff).await;
    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, op.log_text());
    let me = call(&browser, &bff, "/api/whoami").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = call(&browser, &bff, "/api/whoami").await;

    assert_eq!(me.status, 200, "{}\n{}", me.body, op.log_text());
    assert_eq!(me.json()["sub"], PROVIDER_USER_SUB);
    assert!(me.json()["cnf_jkt"].is_string(), "the provider bound the token: {}", me.body);
    assert_eq!(again.status, 200, "{}\n{}", again.body, op.log_text());
    assert_ne!(again.json()["jti"], me.json()["jti"], "a refreshed token");
    assert_eq!(again.json()["cnf_jkt"], me.json()["cnf_jkt"], "bound to the same key");
    let algs = op.metadata().await["dpop_signing_alg_values_supported"].clone();
    assert!(
        algs.as_array().is_some_and(|a| a.contains(&json!("EdDSA"))),
        "the faster algorithm is offered: {algs}"
    );
    let stats = op.stats().await;
    assert_eq!((stats.refreshes, stats.refresh_token_reuse), (1, 0), "{stats:?}");
}

/// The BFF login through the provider's own login form; the callback's answer.
async fn bff_login_at(browser: &Browser, bff: &str) -> common::browser::Page {
    let start = browser.get(&format!("{bff}/bff/login?returnTo=/app/")).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let login_page = browser.follow(start).await;
    let after = submit_login(browser, &login_page, PROVIDER_USER).await;
    let callback = browser.follow_until(after, &format!("{bff}/bff/callback")).await;
    browser.get(&callback).await
}
