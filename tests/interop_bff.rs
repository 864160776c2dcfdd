//! The BFF unchanged against a provider this project did not write (node-oidc-provider: PKCE
//! required, refresh tokens rotating on every use with reuse detection, RS256 JWT access tokens
//! for a resource) and cloakroom's resource server as the upstream.

mod common;

use common::Browser;
use common::browser::{call, call_spread};
use common::interop::InteropStack;
use common::oidc_provider::PROVIDER_USER_SUB;
use std::time::Duration;

#[tokio::test]
async fn two_bff_instances_at_oidc_provider_refresh_once_per_expiry_for_fifty_two_parallel_calls() {
    let stack = InteropStack::builder().access_token_ttl(3).instances(2).start().await;
    let browser = Browser::new();
    let done = stack.login(&browser).await;
    assert_eq!(done.status, 302, "callback: {}", done.body);
    let me = call(&browser, stack.bff(), "/api/whoami").await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["sub"], PROVIDER_USER_SUB);
    assert_eq!(stack.op.stats().await.refresh_tokens_issued, 1, "prompt=consent with offline_access");

    for round in 1..=3u64 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let pages = call_spread(&browser, &stack.bff_urls(), 52, "/api/whoami").await;
        for p in &pages {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        let stats = stack.op.stats().await;
        assert_eq!(stats.refreshes, round, "round {round}: {stats:?}");
        assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
    }
}
