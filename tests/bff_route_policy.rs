//! Per-route policy (`[[bff.routes]]` `session`, `csrf`, `methods`): what each route asks of a
//! request, and that a route without a session never hands the upstream a token. The upstream
//! is the echo stand-in, which reports the headers it received (a real API cannot).

mod common;

use common::attack::{AttackStack, assert_error};
use common::{Browser, Page};
use reqwest::Method;
use serde_json::{Value, json};

/// The attack stack with extra routes to the echo upstream: `/echo/public` (no session),
/// `/echo-optional` (optional session), `/files` (`csrf = "unsafe-methods"`) and `/ro` (GET only).
async fn stack() -> AttackStack {
    AttackStack::start(|cfg| {
        let routes = cfg.doc["bff"]["routes"].clone();
        let echo = routes[1]["upstream"].clone();
        let mut all = routes.as_array().cloned().unwrap_or_default();
        all.extend([
            json!({ "path": "/echo/public", "upstream": echo, "session": "none" }),
            json!({ "path": "/echo-optional", "upstream": echo, "session": "optional" }),
            json!({ "path": "/files", "upstream": echo, "csrf": "unsafe-methods" }),
            json!({ "path": "/ro", "upstream": echo, "methods": ["GET", "HEAD"] }),
        ]);
        cfg.set("bff.routes", Value::Array(all))
    })
    .await
}

/// `GET path` with only the headers given (no `X-CSRF`).
async fn get_with(browser: &Browser, stack: &AttackStack, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = browser.request(Method::GET, &stack.bff(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    browser.send(req).await
}

/// The `Authorization` values the echo upstream saw on its last request.
fn last_authorization(stack: &AttackStack) -> Vec<String> {
    stack.echo.seen().last().expect("the upstream was called").all("authorization")
}

#[tokio::test]
async fn a_route_without_a_session_never_hands_the_upstream_a_token_even_for_a_signed_in_browser() {
    let stack = stack().await;
    let signed_in = stack.login().await;

    let page = stack.api(&signed_in, Method::GET, "/echo/public/status", None).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(last_authorization(&stack).is_empty(), "no token reaches a session = \"none\" route");
    let forged = signed_in
        .request(Method::GET, &stack.bff("/echo/public/x"))
        .header("X-CSRF", "1")
        .header("Authorization", "Bearer forged");
    let page = signed_in.send(forged).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(last_authorization(&stack).is_empty(), "nor one the browser brings");
    stack.assert_session_alive(&signed_in).await;
}

#[tokio::test]
async fn a_route_without_a_session_serves_an_anonymous_browser() {
    let stack = stack().await;
    let anonymous = Browser::new();

    let page = stack.api(&anonymous, Method::GET, "/echo/public/status", None).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(last_authorization(&stack).is_empty());
    assert_eq!(stack.session_count(), 0, "no session was created");
}

#[tokio::test]
async fn the_longest_matching_prefix_decides_so_a_sibling_route_still_requires_a_session() {
    let stack = stack().await;
    let anonymous = Browser::new();

    let public = stack.api(&anonymous, Method::GET, "/echo/public/x", None).await;
    let private = stack.api(&anonymous, Method::GET, "/echo/publicity", None).await;

    assert_eq!(public.status, 200, "{}", public.body);
    assert_error(&private, 401, "unauthenticated");
}

#[tokio::test]
async fn an_optional_session_route_sends_the_token_when_signed_in_and_none_otherwise() {
    let stack = stack().await;
    let signed_in = stack.login().await;
    let anonymous = Browser::new();

    let as_user = stack.api(&signed_in, Method::GET, "/echo-optional/me", None).await;
    let user_auth = last_authorization(&stack);
    let as_nobody = stack.api(&anonymous, Method::GET, "/echo-optional/me", None).await;
    let nobody_auth = last_authorization(&stack);

    assert_eq!(as_user.status, 200, "{}", as_user.body);
    assert_eq!(user_auth.len(), 1, "one Authorization header: {user_auth:?}");
    assert!(user_auth[0].starts_with("Bearer "), "{user_auth:?}");
    assert_eq!(as_nobody.status, 200, "{}", as_nobody.body);
    assert!(nobody_auth.is_empty(), "{nobody_auth:?}");
}

#[tokio::test]
async fn unsafe_methods_csrf_lets_a_same_origin_download_through_without_the_header() {
    let stack = stack().await;
    let browser = stack.login().await;
    let origin = stack.stack.bff_url.clone();

    let plain = get_with(&browser, &stack, "/files/report.csv", &[]).await;
    let navigation =
        get_with(&browser, &stack, "/files/report.csv", &[("Sec-Fetch-Site", "same-origin")]).await;
    let typed = get_with(&browser, &stack, "/files/report.csv", &[("Sec-Fetch-Site", "none")]).await;
    let with_origin = get_with(&browser, &stack, "/files/report.csv", &[("Origin", &origin)]).await;

    for page in [&plain, &navigation, &typed, &with_origin] {
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert!(last_authorization(&stack)[0].starts_with("Bearer "), "the download carries the user's token");
}

#[tokio::test]
async fn unsafe_methods_csrf_refuses_cross_site_and_same_site_reads_and_headerless_writes() {
    let stack = stack().await;
    let browser = stack.login().await;
    let hits_before = stack.echo.hits();

    let cross_site = get_with(&browser, &stack, "/files/a", &[("Sec-Fetch-Site", "cross-site")]).await;
    let same_site = get_with(&browser, &stack, "/files/a", &[("Sec-Fetch-Site", "same-site")]).await;
    let foreign = get_with(&browser, &stack, "/files/a", &[("Origin", "https://evil.example")]).await;
    let null_origin = get_with(&browser, &stack, "/files/a", &[("Origin", "null")]).await;
    let write =
        browser.send(browser.request(Method::POST, &stack.bff("/files/a")).json(&json!({ "x": 1 }))).await;

    for page in [&cross_site, &same_site, &foreign, &null_origin, &write] {
        assert_error(page, 403, "csrf");
    }
    assert_eq!(stack.echo.hits(), hits_before, "nothing reached the upstream");
    let allowed = stack.api(&browser, Method::POST, "/files/a", Some(json!({ "x": 1 }))).await;
    assert_eq!(allowed.status, 200, "a write with X-CSRF: 1 passes: {}", allowed.body);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn the_default_header_rule_still_wants_x_csrf_on_a_get() {
    let stack = stack().await;
    let browser = stack.login().await;

    let page = get_with(&browser, &stack, "/echo/x", &[("Sec-Fetch-Site", "same-origin")]).await;

    assert_error(&page, 403, "csrf");
}

#[tokio::test]
async fn a_route_refuses_a_method_it_does_not_take_before_the_upstream_sees_it() {
    let stack = stack().await;
    let browser = stack.login().await;
    let hits_before = stack.echo.hits();

    let delete = stack.api(&browser, Method::DELETE, "/ro/thing", None).await;
    let post = stack.api(&browser, Method::POST, "/ro/thing", Some(json!({}))).await;

    assert_error(&delete, 405, "method_not_allowed");
    assert_error(&post, 405, "method_not_allowed");
    assert_eq!(stack.echo.hits(), hits_before, "nothing reached the upstream");
    let get = stack.api(&browser, Method::GET, "/ro/thing", None).await;
    assert_eq!(get.status, 200, "{}", get.body);
}
