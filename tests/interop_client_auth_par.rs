//! `private_key_jwt` and pushed authorization requests against a provider this project did not
//! write (node-oidc-provider, with `token_endpoint_auth_method: 'private_key_jwt'` and the
//! BFF's public key registered, PAR required): login, API call, refresh, logout, and a refresh
//! storm over two instances.

mod common;

use cloakroom::jwt::SigningKey;
use common::Browser;
use common::browser::{call, call_spread};
use common::interop::InteropStack;
use common::oidc_flow::query_param;
use common::oidc_provider::PROVIDER_USER_SUB;
use serde_json::json;
use std::time::Duration;

/// BFF instances (`instances`, one configuration) authenticating by `private_key_jwt` at
/// node-oidc-provider, which requires pushed requests, with 3 s access tokens.
async fn bff_with_key_at_oidc_provider(instances: usize) -> InteropStack {
    let key = SigningKey::generate().unwrap();
    let key_file = std::env::temp_dir()
        .join(format!("cloakroom-interop-key-{}.pem", cloakroom::crypto::random_token(8)));
    std::fs::write(&key_file, key.to_pem()).unwrap();
    let jwks = json!({ "keys": [key.public_jwk()] });
    InteropStack::builder()
        .access_token_ttl(3)
        .provider(move |o| {
            o.token_endpoint_auth_method = "private_key_jwt".into();
            o.client_jwks = Some(jwks);
            o.require_par = true;
        })
        .oidc("client_auth", json!("private_key_jwt"))
        .oidc("client_key_file", json!(key_file.to_string_lossy()))
        .oidc("par", json!("required"))
        .instances(instances)
        .start()
        .await
}

#[tokio::test]
async fn with_private_key_jwt_and_required_par_at_oidc_provider_login_api_refresh_and_logout_work() {
    let stack = bff_with_key_at_oidc_provider(1).await;
    let (op, bff) = (&stack.op, stack.bff());
    let browser = Browser::new();
    // Login: the browser carries only client_id and request_uri.
    let start = stack.start_login(&browser, "returnTo=/app/").await;
    let location = start.location().unwrap();
    assert!(query_param(&location, "request_uri").is_some(), "{location}");
    for absent in ["code_challenge", "state", "redirect_uri"] {
        assert!(query_param(&location, absent).is_none(), "{absent} in {location}");
    }
    let (_, done) = stack.finish_login(&browser, start).await;
    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, op.log_text());
    // API call, then a refresh authenticated by a fresh assertion.
    let me = call(&browser, bff, "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["sub"], PROVIDER_USER_SUB);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = call(&browser, bff, "/api/whoami").await;
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

#[tokio::test]
async fn with_private_key_jwt_and_par_at_oidc_provider_forty_parallel_calls_on_two_instances_refresh_once_per_expiry()
 {
    let stack = bff_with_key_at_oidc_provider(2).await;
    let browser = Browser::new();
    let done = stack.login(&browser).await;
    assert_eq!(done.status, 302, "callback: {}", done.body);

    for round in 1..=2u64 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let pages = call_spread(&browser, &stack.bff_urls(), 40, "/api/whoami").await;
        for p in &pages {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        let jtis: std::collections::HashSet<String> =
            pages.iter().map(|p| p.json()["jti"].to_string()).collect();
        assert_eq!(jtis.len(), 1, "round {round}: every call used the one refreshed token");
        let stats = stack.op.stats().await;
        assert_eq!(
            stats.refreshes, round,
            "round {round}: one grant, authenticated by an assertion: {stats:?}"
        );
        assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
    }
}
