//! A team's frontend server behind cloakroom (`[[bff.frontends]] upstream = …`): a
//! server-rendered app or a dev server gets the whole request path, the signed-in user's
//! `Authorization: Bearer` and never the browser's cookies; its form posts need no `X-CSRF`
//! but must be same-origin; `login = "required"` sends navigations to the login. The frontend
//! server here is the tests' echo upstream, which records what it received.

mod common;

use common::attack::assert_error;
use common::echo_upstream::{EchoUpstream, Seen};
use common::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;

/// The stack with the echo upstream as the frontend server at `/site` (`login` as given) beside
/// the usual frontends and `/api`.
async fn stack_with_site(login: &str) -> (Stack, EchoUpstream) {
    let echo = EchoUpstream::start();
    let base = StackConfig::new();
    let mut frontends = base.doc["bff"]["frontends"].clone();
    frontends.as_array_mut().expect("frontends").push(json!({
        "path": "/site", "upstream": echo.url, "login": login,
        "csp": "default-src 'self'; connect-src 'self' ws:"
    }));
    let stack = Stack::start_ready(base.set("bff.frontends", frontends)).await;
    (stack, echo)
}

async fn send(
    browser: &Browser,
    stack: &Stack,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Page {
    let mut req = browser.request(method, &stack.bff(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    browser.send(req).await
}

const NAVIGATE: [(&str, &str); 2] = [("Sec-Fetch-Mode", "navigate"), ("Accept", "text/html")];

fn last(echo: &EchoUpstream) -> Seen {
    echo.seen().pop().expect("the frontend server saw a request")
}

#[tokio::test]
async fn a_navigation_carries_the_users_bearer_token_the_whole_path_and_never_the_cookie() {
    let (stack, echo) = stack_with_site("optional").await;
    let browser = stack.login_as(USER).await;

    let page = send(&browser, &stack, Method::GET, "/site/reports/7?tab=all", &NAVIGATE).await;

    assert_eq!(page.status, 200, "{}", page.body);
    let seen = last(&echo);
    assert_eq!(seen.target, "/site/reports/7?tab=all", "the prefix is not stripped");
    let auth = seen.all("authorization");
    assert_eq!(auth.len(), 1);
    assert!(auth[0].starts_with("Bearer ey"), "{auth:?}");
    assert!(seen.all("cookie").is_empty(), "no browser cookie crosses");
    assert_eq!(seen.all("x-cloakroom-csrf-token"), vec![stack.form_token(&browser).await]);
    assert!(page.set_cookies().iter().all(|c| !c.starts_with("upstream=")), "no upstream cookie crosses");
    let csp = page.headers.get_all("content-security-policy").iter().count();
    assert!(csp >= 1 && page.header("content-security-policy").unwrap().contains("connect-src 'self' ws:"));
}

#[tokio::test]
async fn an_anonymous_navigation_reaches_an_optional_frontend_server_without_any_token() {
    let (stack, echo) = stack_with_site("optional").await;

    let page = send(&Browser::new(), &stack, Method::GET, "/site/", &NAVIGATE).await;

    assert_eq!(page.status, 200);
    let seen = last(&echo);
    assert!(seen.all("authorization").is_empty() && seen.all("x-cloakroom-csrf-token").is_empty());
}

#[tokio::test]
async fn after_logout_the_frontend_server_gets_no_token_any_more() {
    let (stack, echo) = stack_with_site("optional").await;
    let browser = stack.login_as(USER).await;
    send(&browser, &stack, Method::GET, "/site/", &NAVIGATE).await;
    assert_eq!(last(&echo).all("authorization").len(), 1);

    assert_eq!(stack.logout(&browser).await.status, 200);
    send(&browser, &stack, Method::GET, "/site/", &NAVIGATE).await;

    assert!(last(&echo).all("authorization").is_empty());
}

#[tokio::test]
async fn a_required_frontend_server_sends_navigations_to_the_login_and_answers_fetches_401() {
    let (stack, echo) = stack_with_site("required").await;
    let browser = Browser::new();

    let nav = send(&browser, &stack, Method::GET, "/site/admin?q=1", &NAVIGATE).await;
    let fetch = send(&browser, &stack, Method::GET, "/site/data.json", &[("Sec-Fetch-Mode", "cors")]).await;
    let post = send(&browser, &stack, Method::POST, "/site/form", &[("Origin", &stack.bff_url)]).await;

    assert_eq!(nav.status, 302);
    let to = nav.location().expect("a Location");
    assert!(to.ends_with("/bff/login?returnTo=%2Fsite%2Fadmin%3Fq%3D1"), "{to}");
    assert_error(&fetch, 401, "unauthenticated");
    assert_error(&post, 401, "unauthenticated");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_same_origin_form_post_needs_no_x_csrf_header_and_carries_its_body() {
    let (stack, echo) = stack_with_site("optional").await;
    let browser = stack.login_as(USER).await;
    let origin = stack.bff_url.clone();

    let req = browser
        .request(Method::POST, &stack.bff("/site/notes"))
        .header("Origin", &origin)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("text", "from a server-rendered form")]);
    let page = browser.send(req).await;

    assert_eq!(page.status, 200, "{}", page.body);
    let seen = last(&echo);
    assert_eq!((seen.method.as_str(), seen.target.as_str()), ("POST", "/site/notes"));
    assert_eq!(seen.body_len, "text=from+a+server-rendered+form".len());
    assert_eq!(seen.all("authorization").len(), 1);
}

#[tokio::test]
async fn a_cross_site_or_same_site_unsafe_request_is_refused_before_the_frontend_server() {
    let (stack, echo) = stack_with_site("optional").await;
    let browser = stack.login_as(USER).await;
    let own = stack.bff_url.clone();
    let look_alike = format!("{own}.evil.example");
    let cases: [&[(&str, &str)]; 5] = [
        &[("Origin", "http://evil.example")],
        &[("Origin", "null")],
        &[("Origin", look_alike.as_str())],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Origin", own.as_str()), ("Sec-Fetch-Site", "same-site")],
    ];
    for headers in cases {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let page = send(&browser, &stack, method.clone(), "/site/notes", headers).await;
            assert_error(&page, 403, "csrf");
        }
    }
    assert_eq!(echo.hits(), 0);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn tunnel_methods_and_encoded_separators_never_reach_the_frontend_server() {
    let (stack, echo) = stack_with_site("optional").await;
    let browser = stack.login_as(USER).await;

    let trace = send(&browser, &stack, Method::TRACE, "/site/", &[]).await;
    let slash = send(&browser, &stack, Method::GET, "/site/a%2fb", &NAVIGATE).await;
    let backslash = send(&browser, &stack, Method::GET, "/site/a%5c..%5capi", &NAVIGATE).await;

    assert_error(&trace, 405, "method_not_allowed");
    assert_error(&slash, 400, "invalid_request");
    assert_error(&backslash, 400, "invalid_request");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test]
async fn a_frontend_with_both_or_neither_source_or_on_a_routes_path_refuses_to_start_naming_the_key() {
    for (frontends, key) in [
        (json!([{ "path": "/x", "dir": "static", "upstream": "http://localhost:1" }]), "bff.frontends"),
        (json!([{ "path": "/x" }]), "bff.frontends"),
        (json!([{ "path": "/api", "upstream": "http://localhost:1" }]), "bff.frontends.0.path"),
        (json!([{ "upstream": "http://localhost:1", "immutable_dir": "a" }]), "bff.frontends"),
        (json!([{ "upstream": "http://localhost:1", "csp": "a\nb" }]), "bff.frontends.0.csp"),
    ] {
        let cfg = StackConfig::new().set("bff.frontends", frontends.clone());
        let built = cloakroom::config::ConfigSource::from_toml_str("")
            .set("bff", &cfg.doc["bff"])
            .section::<cloakroom::config::BffConfig>("bff");
        let err = match built {
            Err(e) => e.to_string(),
            Ok(config) => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                match cloakroom::bff::Application::build_with_listener(config, listener).await {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("{frontends} was accepted"),
                }
            }
        };
        assert!(err.contains(key), "{frontends}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

/// `stack_with_site` with access tokens that expire in two seconds.
async fn stack_with_short_tokens(login: &str) -> (Stack, EchoUpstream) {
    let echo = EchoUpstream::start();
    let base = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(2))
        .set("bff.refresh_skew_secs", json!(1));
    let mut frontends = base.doc["bff"]["frontends"].clone();
    frontends
        .as_array_mut()
        .expect("frontends")
        .push(json!({ "path": "/site", "upstream": echo.url, "login": login }));
    (Stack::start_ready(base.set("bff.frontends", frontends)).await, echo)
}

/// Makes the provider forget every grant, so that the next refresh is `invalid_grant`, and
/// waits until the access token is due.
async fn revoke_every_grant_and_wait(stack: &Stack) {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().expect("namespace").to_string();
    common::redis::shared().delete_prefixed(&format!("{ns}:"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
}

#[tokio::test]
async fn a_page_whose_grant_was_revoked_is_served_as_to_a_visitor_and_the_session_ends() {
    let (stack, echo) = stack_with_short_tokens("optional").await;
    let browser = stack.login_as(USER).await;
    revoke_every_grant_and_wait(&stack).await;

    let page = send(&browser, &stack, Method::GET, "/site/", &NAVIGATE).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(last(&echo).all("authorization").is_empty());
    assert_error(&stack.user(&browser).await, 401, "unauthenticated");
}

#[tokio::test]
async fn a_required_page_whose_grant_was_revoked_sends_the_navigation_to_the_login() {
    let (stack, echo) = stack_with_short_tokens("required").await;
    let browser = stack.login_as(USER).await;
    revoke_every_grant_and_wait(&stack).await;

    let page = send(&browser, &stack, Method::GET, "/site/x", &NAVIGATE).await;

    assert_eq!(page.status, 302);
    assert!(page.location().expect("Location").ends_with("/bff/login?returnTo=%2Fsite%2Fx"));
    assert_eq!(echo.hits(), 0);
    assert_error(&stack.user(&browser).await, 401, "unauthenticated");
}
