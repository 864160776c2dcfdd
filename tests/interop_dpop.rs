//! DPoP-bound tokens (`bff.oidc.dpop = "on"`) against a provider this project did not write
//! (node-oidc-provider with `features.dPoP` enabled) in front of cloakroom's resource server,
//! which verifies every proof: login, an upstream call with a proof, a refresh with the
//! session's key; a refresh storm over two instances; the provider's nonces (`use_dpop_nonce`)
//! at the token endpoint.

mod common;

use cloakroom::jwt::dpop::NonceCache;
use cloakroom::jwt::dpop::nonce::origin_of;
use common::Browser;
use common::browser::{call, call_spread};
use common::interop::InteropStack;
use common::oidc_provider::PROVIDER_USER_SUB;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test]
async fn with_dpop_on_at_oidc_provider_login_a_bound_api_call_and_a_refresh_work() {
    let stack = InteropStack::builder().access_token_ttl(3).dpop().start().await;
    let (op, bff) = (&stack.op, stack.bff());
    let browser = Browser::new();

    let done = stack.login(&browser).await;
    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, op.log_text());
    let me = call(&browser, bff, "/api/whoami").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = call(&browser, bff, "/api/whoami").await;

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

#[tokio::test]
async fn two_bff_instances_with_dpop_at_oidc_provider_refresh_once_per_expiry_for_forty_parallel_bound_calls()
{
    let stack = InteropStack::builder().access_token_ttl(3).dpop().instances(2).start().await;
    let browser = Browser::new();
    let done = stack.login(&browser).await;
    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, stack.op.log_text());
    let me = call(&browser, stack.bff(), "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let jkt = me.json()["cnf_jkt"].clone();
    assert!(jkt.is_string(), "the provider bound the token: {}", me.body);
    let mut previous_jti = me.json()["jti"].clone();

    for round in 1..=3u64 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let pages = call_spread(&browser, &stack.bff_urls(), 40, "/api/whoami").await;

        // 200 from the resource server: each call carried a proof it verified for that token.
        for p in &pages {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
            assert_eq!(p.json()["cnf_jkt"], jkt, "round {round}: bound to the session's key");
        }
        let jtis: HashSet<String> = pages.iter().map(|p| p.json()["jti"].to_string()).collect();
        assert_eq!(jtis.len(), 1, "round {round}: one refreshed token for every call: {jtis:?}");
        assert!(!jtis.contains(&previous_jti.to_string()), "round {round}: the token was refreshed");
        previous_jti = pages[0].json()["jti"].clone();
        let stats = stack.op.stats().await;
        assert_eq!((stats.refreshes, stats.refresh_tokens_consumed), (round, round), "{stats:?}");
        assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
    }
}

#[tokio::test]
async fn with_the_provider_requiring_dpop_nonces_the_code_exchange_and_a_refresh_succeed_after_one_retry_each()
 {
    let stack = InteropStack::builder()
        .access_token_ttl(3)
        .dpop()
        .provider(|o| o.dpop_require_nonce = true)
        .start()
        .await;
    let (op, bff) = (&stack.op, stack.bff());
    let browser = Browser::new();
    let done = stack.login(&browser).await;
    let after_login = op.stats().await;
    let me = call(&browser, bff, "/api/whoami").await;
    // The provider's nonces expire: at the refresh, the one the BFF holds is no longer valid.
    NonceCache::global().put(&origin_of(op.issuer()), "a-nonce-the-provider-no-longer-accepts");

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let again = call(&browser, bff, "/api/whoami").await;

    assert_eq!(done.status, 302, "callback: {}\n{}", done.body, op.log_text());
    assert_eq!(
        (after_login.dpop_nonce_challenges, after_login.authorization_codes_redeemed),
        (1, 1),
        "asked for a nonce once, then redeemed the code: {after_login:?}"
    );
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(me.json()["cnf_jkt"].is_string(), "the provider bound the token: {}", me.body);
    assert_eq!(again.status, 200, "{}\n{}", again.body, op.log_text());
    assert_ne!(again.json()["jti"], me.json()["jti"], "a refreshed token");
    let stats = op.stats().await;
    assert_eq!((stats.dpop_nonce_challenges, stats.refreshes), (2, 1), "{stats:?}");
    assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
}
