//! Step-up authentication (RFC 9470) through the real reference servers: an upstream's
//! `insufficient_user_authentication` challenge becomes 401 `step_up_required` with a login
//! URL; following it (the provider's code form for the second factor) gives the browser a
//! session with the stronger `acr`, and the call succeeds. Routes may ask up front.

mod common;

use common::browser::{assert_error_code, call};
use common::oidc_flow::bff_login;
use common::step_up::{ACR_MFA, challenge_upstream, current_code, submit_code, with_totp_user};
use common::{Browser, Stack, StackConfig, USER};
use serde_json::json;
use std::sync::atomic::Ordering;

/// Follows a step-up answer's `login_url` through the provider's code form back to the BFF.
async fn step_up(browser: &Browser, stack: &Stack, login_url: &str) -> common::Page {
    let start = browser.get(&format!("{}{login_url}", stack.bff_url)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let code_form = browser.follow(start).await;
    let after = submit_code(browser, &code_form, &current_code()).await;
    let callback = browser.follow_until(after, &format!("{}/bff/callback", stack.bff_url)).await;
    browser.get(&callback).await
}

#[tokio::test]
async fn an_upstream_asking_for_a_second_factor_gets_it_after_the_users_step_up() {
    let cfg = with_totp_user(StackConfig::new()).set("resource_server.required_acr", json!(ACR_MFA));
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;
    let old_cookie = browser.session_cookie();

    let refused = call(&browser, &stack.bff_url, "/api/notes").await;
    assert_error_code(&refused, 401, "step_up_required");
    let login_url = refused.json()["login_url"].as_str().unwrap().to_string();
    assert_eq!(login_url, "/bff/login?acr_values=urn%3Acloakroom%3Amfa&returnTo=%2F");
    let done = step_up(&browser, &stack, &login_url).await;
    let user = call(&browser, &stack.bff_url, "/bff/user").await.json();
    let notes = call(&browser, &stack.bff_url, "/api/notes").await;

    assert_eq!(done.status, 302, "{}", done.body);
    assert_eq!(done.location(), Some(format!("{}/", stack.bff_url)));
    assert_ne!(browser.session_cookie(), old_cookie, "a new session replaced the old one");
    let stale = Browser::new();
    stale.set_cookie(cloakroom::bff::session::SESSION_COOKIE, &old_cookie.unwrap());
    assert_error_code(&call(&stale, &stack.bff_url, "/bff/user").await, 401, "unauthenticated");
    assert_eq!(user["acr"], ACR_MFA);
    assert_eq!(user["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(notes.status, 200, "{}", notes.body);
}

#[tokio::test]
async fn a_wrong_code_keeps_the_user_on_the_code_form_and_gives_no_stronger_session() {
    let cfg = with_totp_user(StackConfig::new()).set("resource_server.required_acr", json!(ACR_MFA));
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;
    let login_url =
        call(&browser, &stack.bff_url, "/api/notes").await.json()["login_url"].as_str().unwrap().to_string();

    let start = browser.get(&format!("{}{login_url}", stack.bff_url)).await;
    let form = browser.follow(start).await;
    let wrong = if current_code() == "000000" { "111111" } else { "000000" };
    let again = submit_code(&browser, &form, wrong).await;

    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.body.contains("name=\"code\""), "the code form again");
    assert_eq!(call(&browser, &stack.bff_url, "/bff/user").await.json()["acr"], "urn:cloakroom:pwd");
}

#[tokio::test]
async fn a_route_requiring_an_acr_answers_a_weaker_session_without_calling_the_upstream() {
    let (upstream, hits) = challenge_upstream(r#"Bearer realm="strong""#).await;
    let cfg = with_totp_user(StackConfig::new()).set(
        "bff.routes",
        json!([{ "path": "/strong", "upstream": upstream, "acr_values": [ACR_MFA], "max_age": 3600 }]),
    );
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;

    let page = browser
        .send(
            browser
                .request(reqwest::Method::GET, &format!("{}/strong/x", stack.bff_url))
                .header("X-CSRF", "1")
                .header("Referer", format!("{}/app/?tab=2", stack.bff_url)),
        )
        .await;

    assert_error_code(&page, 401, "step_up_required");
    assert_eq!(
        page.json()["login_url"],
        "/bff/login?acr_values=urn%3Acloakroom%3Amfa&max_age=3600&returnTo=%2Fapp%2F%3Ftab%3D2"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the upstream was not called");
    let done = step_up(&browser, &stack, page.json()["login_url"].as_str().unwrap()).await;
    assert_eq!(done.location(), Some(format!("{}/app/?tab=2", stack.bff_url)));
    let through = call(&browser, &stack.bff_url, "/strong/x").await;
    assert_eq!(through.status, 401, "now the stub upstream is called and answers");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_malformed_step_up_challenge_from_a_stub_upstream_passes_through_unreflected() {
    for challenge in [
        r#"Bearer error="insufficient_user_authentication", acr_values="x\"><script>""#,
        r#"Bearer error="insufficient_user_authentication", acr_values="a", acr_values="b""#,
        r#"Bearer error="insufficient_user_authentication", max_age=-5"#,
        r#"Bearer error="insufficient_user_authentication", acr_values="unterminated"#,
        r#"Bearer error="insufficient_user_authentication""#,
        r#"Bearer error="insufficient_user_authentication" acr_values="x""#,
    ] {
        let (upstream, hits) = challenge_upstream(challenge).await;
        let cfg = StackConfig::new().set("bff.routes", json!([{ "path": "/up", "upstream": upstream }]));
        let stack = Stack::start_ready(cfg).await;
        let browser = Browser::new();
        bff_login(&browser, &stack, USER, "/").await;

        let page = call(&browser, &stack.bff_url, "/up/x").await;

        assert_eq!(page.status, 401, "{challenge}");
        assert_ne!(page.json()["error"], "step_up_required", "{challenge}");
        assert!(page.json().get("login_url").is_none(), "{challenge}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_step_up_the_login_parameters_do_not_allow_is_the_upstreams_plain_401() {
    let (upstream, _) =
        challenge_upstream(r#"Bearer error="insufficient_user_authentication", max_age=60"#).await;
    let cfg = StackConfig::new()
        .set("bff.routes", json!([{ "path": "/up", "upstream": upstream }]))
        .set("bff.login_parameters", json!(["prompt"]));
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;

    let page = call(&browser, &stack.bff_url, "/up/x").await;

    assert_eq!(page.status, 401);
    assert!(page.json().get("login_url").is_none(), "{}", page.body);
}

#[tokio::test]
async fn a_second_factor_code_serves_once() {
    let cfg = with_totp_user(StackConfig::new()).set("resource_server.required_acr", json!(ACR_MFA));
    let stack = Stack::start_ready(cfg).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;
    let login_url =
        call(&browser, &stack.bff_url, "/api/notes").await.json()["login_url"].as_str().unwrap().to_string();
    let code = current_code();
    let start = browser.get(&format!("{}{login_url}", stack.bff_url)).await;
    let form = browser.follow(start).await;
    let first = submit_code(&browser, &form, &code).await;
    assert_eq!(first.status, 302, "{}", first.body);

    // A fresh sign-in asking for the second factor again, answered with the same code.
    let again = format!("{}/bff/login?returnTo=%2F&max_age=0&acr_values={ACR_MFA}", stack.bff_url);
    let password_form = browser.follow(browser.get(&again).await).await;
    let code_form = common::oidc_flow::submit_login(&browser, &password_form, USER).await;
    let replayed = submit_code(&browser, &code_form, &code).await;

    assert_eq!(replayed.status, 401, "{}", replayed.body);
    assert!(replayed.body.contains("not valid"), "{}", replayed.body);
}

#[tokio::test]
async fn a_step_up_with_prompt_none_is_refused_by_the_provider_and_keeps_the_old_session() {
    let stack = Stack::start_ready(with_totp_user(StackConfig::new())).await;
    let browser = Browser::new();
    bff_login(&browser, &stack, USER, "/").await;

    let start = browser
        .get(&format!("{}/bff/login?returnTo=%2F&prompt=none&acr_values={ACR_MFA}", stack.bff_url))
        .await;
    let callback = browser.follow_until(start, &format!("{}/bff/callback", stack.bff_url)).await;
    let done = browser.get(&callback).await;

    assert!(callback.contains("error=interaction_required"), "{callback}");
    assert_eq!(done.status, 400, "{}", done.body);
    assert_eq!(call(&browser, &stack.bff_url, "/bff/user").await.json()["acr"], "urn:cloakroom:pwd");
}
