//! `/bff/login`'s allow-listed login parameters (`prompt`, `login_hint`, `acr_values`,
//! `max_age`, `ui_locales`) against the real auth server, and the `acr`/`amr`/`auth_time` the
//! session keeps from the ID token.

mod common;

use common::browser::{assert_error_code, call};
use common::oidc_flow::{bff_login, submit_login};
use common::step_up::{ACR_MFA, ACR_PWD};
use common::{Browser, OTHER_USER, Stack, StackConfig, USER};
use serde_json::json;

const ALL: [&str; 5] = ["prompt", "login_hint", "acr_values", "max_age", "ui_locales"];

async fn stack_allowing(params: &[&str]) -> Stack {
    Stack::start_ready(StackConfig::new().set("bff.login_parameters", json!(params))).await
}

#[tokio::test]
async fn allowed_parameters_reach_the_provider_through_the_pushed_request() {
    let stack = stack_allowing(&ALL).await;
    let browser = Browser::new();

    let start = browser
        .get(&format!(
            "{}/bff/login?returnTo=%2F&login_hint=bob&prompt=login&max_age=600&ui_locales=en&acr_values={}",
            stack.bff_url, ACR_PWD
        ))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    let login_page = browser.follow(start).await;

    assert!(location.contains("request_uri="), "pushed: {location}");
    assert!(!location.contains("login_hint"), "the parameters travel in the push, not the URL");
    let username = login_page.inputs().into_iter().find(|(n, _)| n == "username").map(|(_, v)| v);
    assert_eq!(username.as_deref(), Some("bob"), "the hint prefills the username");
}

#[tokio::test]
async fn without_pushed_requests_the_allowed_parameters_travel_in_the_redirect() {
    let cfg = StackConfig::new().set("bff.login_parameters", json!(ALL)).set("bff.oidc.par", json!("off"));
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();

    let start = browser
        .get(&format!("{}/bff/login?returnTo=%2F&login_hint=bob&prompt=login&max_age=60", stack.bff_url))
        .await;

    let location = start.location().expect("a redirect to the provider");
    let url = url::Url::parse(&location).unwrap();
    let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    assert_eq!(get("login_hint").as_deref(), Some("bob"));
    assert_eq!(get("prompt").as_deref(), Some("login consent"), "consent kept for offline_access");
    assert_eq!(get("max_age").as_deref(), Some("60"));
    let form = browser.follow(start).await;
    assert!(form.body.contains("value=\"bob\""), "{}", form.body);
}

#[tokio::test]
async fn a_parameter_not_allowed_repeated_or_malformed_is_refused_with_its_code() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let browser = Browser::new();

    for query in [
        "login_hint=alice",
        "scope=admin",
        "prompt=login&prompt=login",
        "prompt=none+login",
        "prompt=bogus",
        "max_age=-1",
        "max_age=12a",
        "acr_values=a%22b",
        "ui_locales=%3Cscript%3E",
    ] {
        let page = browser.get(&format!("{}/bff/login?returnTo=%2F&{query}", stack.bff_url)).await;
        assert_error_code(&page, 400, "invalid_login_parameter");
        assert!(page.location().is_none(), "{query}: nothing is sent to the provider");
    }
    let long = "a".repeat(129);
    let page = browser.get(&format!("{}/bff/login?acr_values={long}", stack.bff_url)).await;
    assert_error_code(&page, 400, "invalid_login_parameter");
}

#[tokio::test]
async fn the_user_endpoint_returns_how_and_when_the_user_authenticated() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let browser = Browser::new();
    let before = cloakroom::clock::now();

    let done = bff_login(&browser, &stack, USER, "/").await;
    let user = call(&browser, &stack.bff_url, "/bff/user").await;

    assert_eq!(done.status, 302, "{}", done.body);
    let body = user.json();
    assert_eq!(body["acr"], ACR_PWD);
    assert_eq!(body["amr"], json!(["pwd"]));
    let auth_time = body["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time >= before - 1 && auth_time <= cloakroom::clock::now(), "{body}");
}

#[tokio::test]
async fn max_age_zero_makes_a_signed_in_user_authenticate_again() {
    let stack = stack_allowing(&ALL).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;
    let first = call(&browser, &stack.bff_url, "/bff/user").await.json()["auth_time"].as_i64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let start = browser.get(&format!("{}/bff/login?returnTo=%2F&max_age=0", stack.bff_url)).await;
    let page = browser.follow(start).await;
    assert!(page.body.contains("name=\"password\""), "the login form again, not single sign-on");
    let after = submit_login(&browser, &page, USER).await;
    let callback = browser.follow_until(after, &format!("{}/bff/callback", stack.bff_url)).await;
    let done = browser.get(&callback).await;

    assert_eq!(done.status, 302, "{}", done.body);
    let second = call(&browser, &stack.bff_url, "/bff/user").await.json()["auth_time"].as_i64().unwrap();
    assert!(second > first, "re-authenticated: {first} then {second}");
}

#[tokio::test]
async fn a_login_asking_for_an_acr_the_provider_did_not_reach_fails_on_the_callback_page() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let browser = Browser::new();

    // bob has no second factor, so the provider signs him in with a password only.
    let start = browser.get(&format!("{}/bff/login?returnTo=%2F&acr_values={ACR_MFA}", stack.bff_url)).await;
    let page = browser.follow(start).await;
    let after = submit_login(&browser, &page, OTHER_USER).await;
    let callback = browser.follow_until(after, &format!("{}/bff/callback", stack.bff_url)).await;
    let done = browser.get(&callback).await;

    assert_eq!(done.status, 400, "{}", done.body);
    assert!(done.body.contains("not authenticate you as strongly as required"), "{}", done.body);
    assert_error_code(&call(&browser, &stack.bff_url, "/bff/user").await, 401, "unauthenticated");
}
