//! Many APIs, one session (RFC 8707): each route with its own `resource` gets a token for that
//! audience alone, obtained from the session's refresh token, refreshed single-flight per
//! session across instances; a `token = "client"` route gets the application's own
//! client-credentials token. Two reference resource servers with different audiences stand
//! for two APIs, and each refuses the other's token.

mod common;

use common::apis::Api;
use common::apps::{provider_grants, start_second_bff};
use common::browser::{assert_error_code, call, call_spread};
use common::{CLIENT_ID, Stack, StackConfig, USER};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const API_A: &str = "https://notes.api.test";
const API_B: &str = "https://billing.api.test";

/// A stack whose BFF fronts the two APIs at `/a` (resource A) and `/b` (resource B) besides
/// its own `/api`, with `routes` added; the client may ask for both resources.
fn two_api_stack(a: &Api, b: &Api, routes: &[Value]) -> StackConfig {
    let mut cfg = StackConfig::new();
    let client = &mut cfg.doc["auth_server"]["clients"][0];
    client["resources"] = json!([API_A, API_B]);
    client["grant_types"] = json!(["authorization_code", "refresh_token", "client_credentials"]);
    let list = cfg.doc["bff"]["routes"].as_array_mut().expect("routes");
    list.push(json!({ "path": "/a", "upstream": a.url, "resource": API_A }));
    list.push(json!({ "path": "/b", "upstream": b.url, "resource": API_B }));
    list.extend(routes.iter().cloned());
    cfg
}

/// The stack of [`two_api_stack`], started, with both APIs running.
async fn start_two_apis(tweak: impl FnOnce(StackConfig) -> StackConfig, routes: &[Value]) -> Stack {
    let (a, b) = (Api::new(API_A), Api::new(API_B));
    let cfg = tweak(two_api_stack(&a, &b, routes));
    let stack = Stack::start_ready(cfg).await;
    a.start(&stack.doc).await;
    b.start(&stack.doc).await;
    stack
}

/// A new instance of `stack`'s BFF with one more route, `/c`, whose resource the grants of
/// sessions signed in before never asked for. Returns its base URL.
async fn start_instance_with_an_uncovered_route(stack: &Stack) -> String {
    let added =
        json!({ "path": "/c", "upstream": "http://127.0.0.1:9", "resource": "https://other.api.test" });
    start_second_bff(stack, |bff| {
        bff["routes"].as_array_mut().expect("routes").push(added);
    })
    .await
}

#[tokio::test]
async fn each_api_gets_a_token_for_its_own_audience_only() {
    let stack = start_two_apis(|c| c, &[]).await;
    let browser = stack.login_as(USER).await;

    let a = stack.api_get(&browser, "/a/whoami").await;
    let b = stack.api_get(&browser, "/b/whoami").await;
    let own = stack.api_get(&browser, "/api/whoami").await;

    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(a.json()["aud"], json!(API_A), "{}", a.body);
    assert_eq!(b.json()["aud"], json!(API_B), "{}", b.body);
    assert_eq!(own.json()["aud"], json!(stack.rs_url), "the login's token keeps its audience: {}", own.body);
    let subs: HashSet<String> = [&a, &b, &own].iter().map(|p| p.json()["sub"].to_string()).collect();
    assert_eq!(subs.len(), 1, "one user behind all three tokens");
}

#[tokio::test]
async fn an_api_refuses_the_token_of_another_audience() {
    // A route that sends API A's token to API B (a misconfiguration): B must refuse it.
    let (a, b) = (Api::new(API_A), Api::new(API_B));
    let crossed = json!({ "path": "/crossed", "upstream": b.url, "resource": API_A });
    let stack = Stack::start_ready(two_api_stack(&a, &b, &[crossed])).await;
    a.start(&stack.doc).await;
    b.start(&stack.doc).await;
    let browser = stack.login_as(USER).await;

    let crossed = stack.api_get(&browser, "/crossed/whoami").await;
    let right = stack.api_get(&browser, "/b/whoami").await;

    assert_eq!(crossed.status, 401, "API B took API A's token: {}", crossed.body);
    assert_eq!(right.status, 200, "{}", right.body);
}

#[tokio::test]
async fn forty_parallel_calls_over_two_audiences_and_two_instances_make_one_grant_per_audience_per_expiry() {
    let stack = start_two_apis(
        |c| c.set("auth_server.access_token_ttl_secs", json!(3)).set("bff.refresh_skew_secs", json!(1)),
        &[],
    )
    .await;
    let second = start_second_bff(&stack, |_| {}).await;
    let browser = stack.login_as(USER).await;

    for round in 1..=3u64 {
        // Past the expiry of the tokens of the last round (none yet in the first).
        if round > 1 {
            tokio::time::sleep(Duration::from_millis(3100)).await;
        }
        let bases = [stack.bff_url.as_str(), second.as_str()];
        let (pages_a, pages_b) = tokio::join!(
            call_spread(&browser, &bases, 20, "/a/whoami"),
            call_spread(&browser, &bases, 20, "/b/whoami"),
        );
        for p in pages_a.iter().chain(&pages_b) {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        for (pages, audience) in [(&pages_a, API_A), (&pages_b, API_B)] {
            let jtis: HashSet<String> = pages.iter().map(|p| p.json()["jti"].to_string()).collect();
            assert_eq!(jtis.len(), 1, "round {round}: every call to {audience} used one token");
            assert!(pages.iter().all(|p| p.json()["aud"] == json!(audience)));
        }
        let grants = provider_grants(&stack.auth_url, "refresh_token").await;
        assert_eq!(grants.ok(), 2 * round, "round {round}: one grant per audience: {grants:?}");
        assert_eq!(grants.refused(), 0, "no refused grant, so no reused refresh token: {grants:?}");
    }
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_route_added_after_the_login_whose_resource_the_grant_does_not_cover_answers_403_token_refused() {
    let stack = start_two_apis(|c| c, &[]).await;
    let browser = stack.login_as(USER).await;
    let newer = start_instance_with_an_uncovered_route(&stack).await;

    let page = call(&browser, &newer, "/c/whoami").await;

    assert_error_code(&page, 403, "token_refused");
    assert!(!page.body.contains("other.api.test"), "the answer names no provider detail: {}", page.body);
    // The refresh token was put back: the session and its other audiences go on.
    let a = call(&browser, &newer, "/a/whoami").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let grants = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!(grants.ok(), 1, "only /a's grant succeeded: {grants:?}");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn parallel_calls_queued_behind_a_refused_audience_share_the_refusal_instead_of_each_asking_the_provider()
 {
    let stack = start_two_apis(|c| c, &[]).await;
    let browser = stack.login_as(USER).await;
    let newer = start_instance_with_an_uncovered_route(&stack).await;

    let pages = call_spread(&browser, &[&newer], 20, "/c/whoami").await;

    for p in &pages {
        assert_error_code(p, 403, "token_refused");
    }
    let grants = provider_grants(&stack.auth_url, "refresh_token").await;
    // Each asked again before; now those queued on the instance share the one refusal (one
    // grant when they all arrive before it, as they do on a quiet machine).
    assert!(grants.refused() < 20, "the queued calls did not each ask again: {grants:?}");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_client_route_calls_its_api_as_the_application_without_any_user() {
    let (a, b) = (Api::new(API_A), Api::new(API_B));
    let route = json!({ "path": "/app-a", "upstream": a.url, "resource": API_A,
        "token": "client", "session": "none" });
    let stack = Stack::start_ready(two_api_stack(&a, &b, &[route])).await;
    a.start(&stack.doc).await;
    b.start(&stack.doc).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let anonymous = common::Browser::new();

    let pages = call_spread(&anonymous, &[&stack.bff_url, &second], 20, "/app-a/whoami").await;

    for p in &pages {
        assert_eq!(p.status, 200, "{}: {}", p.url, p.body);
        assert_eq!(p.json()["sub"], json!(CLIENT_ID), "the application's own token: {}", p.body);
        assert_eq!(p.json()["aud"], json!(API_A));
    }
    let grants = provider_grants(&stack.auth_url, "client_credentials").await;
    assert_eq!(grants.ok(), 1, "one grant for every call on both instances: {grants:?}");
    let user_route = call(&anonymous, &stack.bff_url, "/a/whoami").await;
    assert_error_code(&user_route, 401, "unauthenticated");
}

#[tokio::test]
async fn a_client_route_whose_resource_the_provider_refuses_answers_403_token_refused_to_every_call_on_both_instances()
 {
    let refused = json!({ "path": "/app-other", "upstream": "http://127.0.0.1:9",
        "resource": "https://other.api.test", "token": "client", "session": "none" });
    let stack = start_two_apis(|c| c, &[refused]).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let anonymous = common::Browser::new();

    // Calls that wait for another instance's grant hear of its refusal, not of an outage.
    let pages = call_spread(&anonymous, &[&stack.bff_url, &second], 20, "/app-other/whoami").await;

    for p in &pages {
        assert_error_code(p, 403, "token_refused");
    }
    let grants = provider_grants(&stack.auth_url, "client_credentials").await;
    assert_eq!(grants.ok(), 0, "{grants:?}");
    assert!(grants.refused() >= 1, "the provider was asked and refused: {grants:?}");
}

#[tokio::test]
async fn with_dpop_on_every_audience_token_is_bound_to_the_sessions_one_key_and_proven_per_call() {
    let stack = start_two_apis(common::dpop::on, &[]).await;
    let browser = stack.login_as(USER).await;

    let own = stack.api_get(&browser, "/api/whoami").await;
    let a = stack.api_get(&browser, "/a/whoami").await;

    // API A answers 200 only for a bound token with a valid proof for this very call.
    assert_eq!((own.status.as_u16(), a.status.as_u16()), (200, 200), "{} / {}", own.body, a.body);
    assert_eq!(a.json()["aud"], json!(API_A));
    assert!(own.json()["cnf_jkt"].is_string(), "{}", own.body);
    assert_eq!(a.json()["cnf_jkt"], own.json()["cnf_jkt"], "one DPoP key per session");
}
