//! The scenarios every replicated store topology (Redis Cluster, Sentinel) must pass, given a
//! stack configured on it: the whole BFF flow across two instances, and a master failover while
//! a browser keeps calling.

use super::apps::start_second_bff;
use super::browser::{call, call_spread};
use super::{Browser, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

/// Starts a stack from `cfg`, waits until its BFF is ready and logs a browser in there.
pub async fn start_logged_in(cfg: StackConfig) -> (Stack, Browser) {
    let stack = Stack::start_ready(cfg).await;
    let browser = stack.login_as(USER).await;
    (stack, browser)
}

/// On a stack started from `cfg` (with 4 s access tokens, refreshed 1 s before they expire) and
/// a second BFF instance: after the access token expired, 20 concurrent calls spread over both
/// instances share ONE refresh, and a logout on one instance ends the session on the other.
/// The refreshed token stays fresh for 3 s, so the calls cannot meet the next expiry even on a
/// loaded machine (the provider's `exp` is in whole seconds).
pub async fn one_refresh_per_expiry_across_two_instances(cfg: StackConfig) {
    let cfg = cfg.set("auth_server.access_token_ttl_secs", json!(4)).set("bff.refresh_skew_secs", json!(1));
    let stack = Stack::start_ready(cfg).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let browser = stack.login_as(USER).await;
    let first = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(first.status, 200, "{}", first.body);

    tokio::time::sleep(Duration::from_millis(4100)).await;
    let pages = call_spread(&browser, &[&stack.bff_url, &second], 20, "/api/whoami").await;

    for p in &pages {
        assert_eq!(p.status, 200, "{}: {}", p.url, p.body);
    }
    let jtis: HashSet<String> = pages.iter().map(|p| p.json()["jti"].to_string()).collect();
    assert_eq!(jtis.len(), 1, "one refresh, shared by both instances");
    assert!(!jtis.contains(&first.json()["jti"].to_string()));
    let logout = browser
        .send(
            browser
                .request(Method::POST, &format!("{}/bff/logout", stack.bff_url))
                .header("X-CSRF", "1")
                .header("Origin", stack.bff_url.clone()),
        )
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(call(&browser, &second, "/bff/user").await.status, 401, "ended on every instance");
}

/// Calls `/api/whoami` 30 times, 100 ms apart, while `failover` runs; every answer other than
/// 200 must be a 503 `store_unavailable`. Returns the statuses, in order.
pub async fn whoami_during(stack: &Stack, browser: &Browser, failover: impl Future<Output = ()>) -> Vec<u16> {
    let requests = async {
        let mut statuses = Vec::new();
        for _ in 0..30 {
            let page = stack.api_get(browser, "/api/whoami").await;
            if page.status != 200 {
                assert_eq!(page.json()["error"], "store_unavailable", "{}", page.body);
            }
            statuses.push(page.status.as_u16());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        statuses
    };
    let (statuses, ()) = tokio::join!(requests, failover);
    statuses
}

/// After a failover during which the browser saw `statuses`: each was 200 or 503, the store
/// answers again within 10 s (503 `store_unavailable` until then), and the session survived.
pub async fn assert_the_session_survived(stack: &Stack, browser: &Browser, statuses: &[u16]) {
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    let mut resumed = false;
    for _ in 0..50 {
        let page = stack.api_get(browser, "/api/whoami").await;
        if page.status == 200 {
            resumed = true;
            break;
        }
        assert_eq!(page.json()["error"], "store_unavailable", "{}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(resumed, "the store resumed after the failover: {statuses:?}");
    let user = stack.user(browser).await;
    assert_eq!(user.status, 200, "the session survived the failover: {}", user.body);
}
