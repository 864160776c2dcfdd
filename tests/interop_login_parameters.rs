//! Login parameters and the authentication context against a provider this project did not
//! write (node-oidc-provider with `acrValues`): the ID token's `acr` reaches `/bff/user`, and
//! `max_age=0` and `prompt=login` make a signed-in user authenticate again.

mod common;

use common::apps::wait_ready;
use common::browser::call;
use common::oidc_flow::submit_login;
use common::oidc_provider::{OidcProvider, PROVIDER_USER, ProviderOptions};
use common::{Browser, StackConfig};
use serde_json::json;
use std::net::TcpListener;

const ACR: &str = "urn:cloakroom:pwd";

/// A BFF (every login parameter allowed) and cloakroom's resource server, clients of a fresh
/// node-oidc-provider; returns the provider and the BFF's URL.
async fn bff_at_oidc_provider() -> (OidcProvider, String) {
    let bind = || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
        (l, url)
    };
    let ((rs_listener, rs_url), (bff_listener, bff_url)) = (bind(), bind());
    let op = OidcProvider::start(ProviderOptions::for_bff(&bff_url, &rs_url));
    let cfg = StackConfig::new()
        .set("resource_server.issuer", json!(op.issuer()))
        .set("resource_server.audience", json!(rs_url))
        .set("bff.public_url", json!(bff_url))
        .set(
            "bff.oidc",
            json!({ "issuer": op.issuer(), "client_id": op.client_id(), "client_secret": op.client_secret() }),
        )
        .set("bff.routes", json!([{ "path": "/api", "upstream": rs_url }]))
        .set("bff.login_parameters", json!(["prompt", "login_hint", "acr_values", "max_age", "ui_locales"]));
    common::apps::start_resource_server_and_bff(&cfg, rs_listener, bff_listener).await;
    wait_ready(&bff_url).await;
    (op, bff_url)
}

/// `/bff/login?<query>`: through the provider's login form (when it shows one) to the BFF's
/// callback; returns whether the form was shown and the callback's answer.
async fn login(browser: &Browser, bff_url: &str, query: &str) -> (bool, common::Page) {
    let start = browser.get(&format!("{bff_url}/bff/login?returnTo=%2F&{query}")).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let callback_prefix = format!("{bff_url}/bff/callback");
    let mut page = start;
    let mut form_shown = false;
    for _ in 0..10 {
        match page.location() {
            Some(next) if next.starts_with(&callback_prefix) => break,
            Some(next) => page = browser.get(&next).await,
            None => {
                assert!(page.body.contains("name=\"password\""), "{}: {}", page.url, page.body);
                form_shown = true;
                page = submit_login(browser, &page, PROVIDER_USER).await;
            }
        }
    }
    let callback = browser.follow_until(page, &callback_prefix).await;
    (form_shown, browser.get(&callback).await)
}

#[tokio::test]
async fn the_providers_acr_and_auth_time_reach_the_user_endpoint() {
    let (_op, bff) = bff_at_oidc_provider().await;
    let browser = Browser::new();

    let (_, done) = login(&browser, &bff, &format!("acr_values={ACR}&max_age=600")).await;
    let user = call(&browser, &bff, "/bff/user").await.json();

    assert_eq!(done.status, 302, "callback: {}", done.body);
    assert_eq!(user["acr"], ACR, "{user}");
    assert!(user["auth_time"].as_i64().is_some_and(|t| t > 0), "{user}");
}

#[tokio::test]
async fn max_age_zero_and_prompt_login_make_a_signed_in_user_authenticate_again() {
    let (op, bff) = bff_at_oidc_provider().await;
    let browser = Browser::new();
    let (first_form, _) = login(&browser, &bff, "ui_locales=en").await;
    let (sso_form, sso) = login(&browser, &bff, "ui_locales=en").await;

    let (max_age_form, after_max_age) = login(&browser, &bff, "max_age=0").await;
    let (prompt_form, after_prompt) = login(&browser, &bff, "prompt=login").await;

    assert!(first_form && !sso_form, "the second login is single sign-on");
    assert_eq!(sso.status, 302, "{}", sso.body);
    assert!(max_age_form, "max_age=0 shows the login form again");
    assert!(prompt_form, "prompt=login shows the login form again");
    assert_eq!((after_max_age.status.as_u16(), after_prompt.status.as_u16()), (302, 302));
    assert_eq!(op.stats().await.logins, 3);
}
