//! The BFF unchanged against a provider this project did not write (node-oidc-provider: PKCE
//! required, refresh tokens rotating on every use with reuse detection, RS256 JWT access tokens
//! for a resource) and cloakroom's resource server as the upstream.

mod common;

use common::apps::wait_ready;
use common::browser::{call, call_spread};
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

/// Two BFF instances on one Redis in front of cloakroom's resource server, both clients of
/// `op`; returns the provider and the two BFF URLs.
async fn bffs_at_oidc_provider(access_token_ttl_secs: u64) -> (OidcProvider, String, String) {
    let (rs_listener, rs_url) = listener();
    let (bff_listener, bff_url) = listener();
    let op = OidcProvider::start(ProviderOptions {
        access_token_ttl_secs,
        ..ProviderOptions::for_bff(&bff_url, &rs_url)
    });
    let cfg = StackConfig::new()
        .set("resource_server.issuer", json!(op.issuer()))
        .set("resource_server.audience", json!(rs_url))
        .set("bff.public_url", json!(bff_url))
        .set(
            "bff.oidc",
            json!({ "issuer": op.issuer(), "client_id": op.client_id(), "client_secret": op.client_secret() }),
        )
        .set("bff.routes", json!([{ "path": "/api", "upstream": rs_url }]))
        .set("bff.refresh_skew_secs", json!(1));
    common::apps::start_resource_server_and_bff(&cfg, rs_listener, bff_listener).await;
    let (second_listener, second_url) = listener();
    let second =
        cloakroom::bff::Application::build_with_listener(cfg.bff_config(), second_listener).await.unwrap();
    tokio::spawn(second.run_until_stopped());
    wait_ready(&bff_url).await;
    wait_ready(&second_url).await;
    (op, bff_url, second_url)
}

async fn login(browser: &Browser, bff_url: &str) {
    let start = browser.get(&format!("{bff_url}/bff/login?returnTo=/app/")).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let login_page = browser.follow(start).await;
    let after = submit_login(browser, &login_page, PROVIDER_USER).await;
    let callback = browser.follow_until(after, &format!("{bff_url}/bff/callback")).await;
    let done = browser.get(&callback).await;
    assert_eq!(done.status, 302, "callback: {}", done.body);
}

#[tokio::test]
async fn two_bff_instances_at_oidc_provider_refresh_once_per_expiry_for_fifty_two_parallel_calls() {
    let (op, first, second) = bffs_at_oidc_provider(3).await;
    let browser = Browser::new();
    login(&browser, &first).await;
    let me = call(&browser, &first, "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["sub"], PROVIDER_USER_SUB);
    assert_eq!(op.stats().await.refresh_tokens_issued, 1, "prompt=consent with offline_access");

    for round in 1..=3u64 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let pages = call_spread(&browser, &[&first, &second], 52, "/api/whoami").await;
        for p in &pages {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        let stats = op.stats().await;
        assert_eq!(stats.refreshes, round, "round {round}: {stats:?}");
        assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
    }
}
