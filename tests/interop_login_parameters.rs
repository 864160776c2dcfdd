//! Login parameters and the authentication context against a provider this project did not
//! write (node-oidc-provider with `acrValues`): the ID token's `acr` reaches `/bff/user`, and
//! `max_age=0` and `prompt=login` make a signed-in user authenticate again.

mod common;

use common::Browser;
use common::browser::call;
use common::interop::InteropStack;
use serde_json::json;

const ACR: &str = "urn:cloakroom:pwd";

/// A BFF (every login parameter allowed) at a fresh node-oidc-provider.
async fn bff_at_oidc_provider() -> InteropStack {
    let allowed = json!(["prompt", "login_hint", "acr_values", "max_age", "ui_locales"]);
    InteropStack::builder().bff("login_parameters", allowed).start().await
}

/// `/bff/login?returnTo=/&<query>` to the BFF's callback; whether the provider's form was
/// shown and the callback's answer.
async fn login(stack: &InteropStack, browser: &Browser, query: &str) -> (bool, common::Page) {
    let start = stack.start_login(browser, &format!("returnTo=%2F&{query}")).await;
    stack.finish_login(browser, start).await
}

#[tokio::test]
async fn the_providers_acr_and_auth_time_reach_the_user_endpoint() {
    let stack = bff_at_oidc_provider().await;
    let browser = Browser::new();

    let (_, done) = login(&stack, &browser, &format!("acr_values={ACR}&max_age=600")).await;
    let user = call(&browser, stack.bff(), "/bff/user").await.json();

    assert_eq!(done.status, 302, "callback: {}", done.body);
    assert_eq!(user["acr"], ACR, "{user}");
    assert!(user["auth_time"].as_i64().is_some_and(|t| t > 0), "{user}");
}

#[tokio::test]
async fn max_age_zero_and_prompt_login_make_a_signed_in_user_authenticate_again() {
    let stack = bff_at_oidc_provider().await;
    let browser = Browser::new();
    let (first_form, _) = login(&stack, &browser, "ui_locales=en").await;
    let (sso_form, sso) = login(&stack, &browser, "ui_locales=en").await;

    let (max_age_form, after_max_age) = login(&stack, &browser, "max_age=0").await;
    let (prompt_form, after_prompt) = login(&stack, &browser, "prompt=login").await;

    assert!(first_form && !sso_form, "the second login is single sign-on");
    assert_eq!(sso.status, 302, "{}", sso.body);
    assert!(max_age_form, "max_age=0 shows the login form again");
    assert!(prompt_form, "prompt=login shows the login form again");
    assert_eq!((after_max_age.status.as_u16(), after_prompt.status.as_u16()), (302, 302));
    assert_eq!(stack.op.stats().await.logins, 3);
}
