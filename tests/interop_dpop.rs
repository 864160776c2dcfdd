//! DPoP-bound tokens (`bff.oidc.dpop = "on"`) against a provider this project did not write
//! (node-oidc-provider with `features.dPoP` enabled) in front of cloakroom's resource server,
//! which verifies every proof: login, an upstream call with a proof, a refresh with the
//! session's key.

mod common;

use common::Browser;
use common::browser::call;
use common::interop::InteropStack;
use common::oidc_provider::PROVIDER_USER_SUB;
use serde_json::json;
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
