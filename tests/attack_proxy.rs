//! Attack suite, proxy and CORS surface: what a cross-site page or a hand-written request can
//! make the BFF forward, through HTTP against the real stack. `/echo` is routed to a small
//! upstream that reports what reached it (`common::echo_upstream`), so every test can prove a
//! refused request never left the BFF; raw TCP (`common::raw_http`) sends what a normal client
//! would normalise away.
//!
//! Index — security checklist lines and issue 6 cases:
//!
//! | case | test |
//! |---|---|
//! | #11 missing `X-CSRF` (no session) | `bff_edges::api_calls_without_the_csrf_header_are_refused_before_anything_else`, `bff_edges::the_user_endpoint_needs_the_csrf_header_and_a_session` |
//! | #11 missing or wrong `X-CSRF` with a live session: upstream never called | [`a_logged_in_call_without_a_valid_x_csrf_never_reaches_the_upstream`] |
//! | #11 form token | `bff_flow::the_server_rendered_page_lists_adds_notes_and_logs_out_by_form`, [`a_form_post_without_the_right_token_adds_nothing`] |
//! | #12 no `Access-Control-Allow-*` for a foreign origin | [`a_foreign_origin_never_gets_access_control_headers_on_any_route_or_method`] |
//! | #12 … not even an upstream's own `*` with credentials | [`an_upstreams_own_cors_headers_never_reach_the_browser`] |
//! | #13 `Sec-Fetch-Site: cross-site`, foreign / `null` / look-alike `Origin` (no session) | `bff_edges::cross_site_unsafe_requests_are_refused_with_exact_origin_comparison` |
//! | #13 … with a live session: nothing changes | [`cross_site_unsafe_requests_with_a_live_session_are_refused_and_change_nothing`] |
//! | #13 a second, foreign `Origin` header | [`a_request_with_two_origin_headers_one_foreign_is_refused`] |
//! | #14 `text/plain` and other simple content types (no session) | `bff_edges::json_routes_refuse_the_content_types_a_form_can_send` |
//! | #14 … with a live session: upstream never called | [`simple_content_types_with_a_live_session_never_reach_the_upstream`] |
//! | #14 no GET changes state | [`no_get_or_head_request_changes_state`] |
//! | #17 traversal `..`, `%2e%2e`, `%2f`, `//` (no session) | `bff_edges::route_prefixes_match_whole_segments_and_traversal_is_refused` |
//! | #17 traversal with a live session, more spellings, a base path | [`traversal_in_any_spelling_never_reaches_the_upstream_with_a_live_session`] |
//! | #17 `/api` does not match `/apiary` and other look-alikes | `bff_edges::route_prefixes_match_whole_segments_and_traversal_is_refused`, [`route_prefixes_never_match_look_alike_paths_with_a_live_session`] |
//! | #17 absolute-form target, spoofed `Host` on the proxy | `bff_flow::absolute_form_targets_and_a_spoofed_host_cannot_pick_the_upstream`, [`absolute_authority_and_asterisk_form_targets_cannot_pick_the_upstream`] |
//! | #17 spoofed `Host` / `X-Forwarded-Host` at login and logout | [`a_spoofed_host_never_changes_the_urls_the_bff_builds`] |
//! | #18 `X-Forwarded-*` (underscore variants too), `Forwarded`, hop-by-hop, Cookie, Authorization | `bff_flow::forwarding_headers_from_the_browser_are_replaced_and_upstream_cookies_dropped`, [`forwarding_and_hop_by_hop_headers_in_every_spelling_are_replaced_or_dropped`] |
//! | smuggling: `Content-Length` + `Transfer-Encoding` | [`content_length_with_transfer_encoding_is_refused_and_smuggles_nothing`] |
//! | smuggling: obfuscated `Transfer-Encoding`, conflicting `Content-Length` | [`obfuscated_transfer_encoding_and_conflicting_lengths_smuggle_nothing`] |
//! | body over the limit → 413 | `bff_edges::a_body_over_the_limit_is_refused_with_413`, `bff_flow::a_streamed_body_crossing_the_limit_is_cut_off_with_413`, [`a_declared_body_over_the_limit_never_reaches_the_upstream`] |
//! | #3 / #17 `TRACE`, `TRACK`, `CONNECT` never proxied (a reflecting upstream would show the token) | [`trace_track_and_connect_are_never_proxied`] |
//! | #19 API routes answer JSON 401/403, never a redirect | [`api_routes_answer_json_never_a_redirect_even_to_page_navigations`] |
//! | #19 upstream 401/403 pass through | `bff_flow::an_upstream_invalid_token_answer_is_refreshed_and_retried_once`, [`upstream_401_and_403_pass_through_and_keep_the_session`], [`the_resource_servers_insufficient_scope_passes_through_and_keeps_the_session`] |
//! | issue 16: request headers by allow-list (`X-Original-URL`, method overrides, client-IP headers…) | [`only_allow_listed_end_to_end_request_headers_reach_the_upstream`], `header_policy` unit tests |
//! | issue 16: per-route `forward_request_headers` | [`a_route_forwards_the_headers_it_adds_and_a_route_without_them_does_not`] |
//! | issue 16 sibling: an upstream's framing/referrer/opener policy or CSP on the BFF's origin | [`an_upstreams_lax_page_policies_never_replace_the_bffs_own`] |

mod common;

use common::attack::{
    AttackStack, SESSION_COOKIE, assert_error, assert_no_cors, assert_session_cookie_untouched,
};
use common::raw_http::{self, RawResponse};
use common::{Browser, Page};
use reqwest::Method;
use serde_json::json;

async fn stack() -> AttackStack {
    AttackStack::start(|c| c).await
}

/// The attack stack and a browser logged in to it.
async fn stack_with_session() -> (AttackStack, Browser) {
    let stack = stack().await;
    let browser = stack.login().await;
    (stack, browser)
}

fn cookie_line(browser: &Browser) -> String {
    format!("{SESSION_COOKIE}={}", browser.cookie(SESSION_COOKIE).expect("session cookie"))
}

/// A raw request with the browser's session cookie and `X-CSRF: 1`.
async fn raw_with_session(
    stack: &AttackStack,
    browser: &Browser,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let cookie = cookie_line(browser);
    let mut all = vec![("Cookie", cookie.as_str()), ("X-CSRF", "1")];
    all.extend_from_slice(headers);
    raw_http::send(&stack.stack.bff_url, &raw_http::request(&stack.stack.bff_url, method, target, &all, body))
        .await
}

fn assert_raw_error(res: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(res.status, status, "{what}: {}", res.text());
    assert_eq!(res.json()["error"], code, "{what}: {}", res.text());
}

async fn notes_count(stack: &AttackStack, browser: &Browser) -> usize {
    let page = stack.api(browser, Method::GET, "/api/notes", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.json().as_array().unwrap().len()
}

#[tokio::test]
async fn a_logged_in_call_without_a_valid_x_csrf_never_reaches_the_upstream() {
    let (stack, browser) = stack_with_session().await;
    for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for csrf in [None, Some("0"), Some("true"), Some(""), Some("11"), Some("1, 1")] {
            let mut req = browser
                .request(method.clone(), &stack.bff("/echo/x"))
                .header("Content-Type", "application/json");
            if let Some(v) = csrf {
                req = req.header("X-CSRF", v);
            }
            let page = browser.send(req.body("{}")).await;
            assert_error(&page, 403, "csrf");
            assert_session_cookie_untouched(&page);
        }
    }
    let page =
        browser.send(browser.request(Method::GET, &stack.bff("/bff/user")).header("X-CSRF", "yes")).await;
    assert_error(&page, 403, "csrf");
    assert_eq!(stack.echo.hits(), 0, "the upstream was never called");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn simple_content_types_with_a_live_session_never_reach_the_upstream() {
    let (stack, browser) = stack_with_session().await;
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for ct in [
            "text/plain",
            "TEXT/PLAIN; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            " text/plain ;x=y",
        ] {
            let req = browser
                .request(method.clone(), &stack.bff("/echo/x"))
                .header("X-CSRF", "1")
                .header("Content-Type", ct)
                .body("{\"text\":\"csrf\"}");
            let page = browser.send(req).await;
            assert_error(&page, 415, "unsupported_media_type");
        }
    }
    assert_eq!(stack.echo.hits(), 0);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn cross_site_unsafe_requests_with_a_live_session_are_refused_and_change_nothing() {
    let (stack, browser) = stack_with_session().await;
    let before = notes_count(&stack, &browser).await;
    let token = stack.form_token(&browser).await;
    let bff = stack.stack.bff_url.clone();
    let port = url::Url::parse(&bff).unwrap().port().unwrap();
    let foreign = [
        ("Origin", format!("{bff}.attacker.com")),
        ("Origin", format!("http://attacker.com:{port}")),
        ("Origin", "null".into()),
        ("Origin", format!("https://127.0.0.1:{port}")),
        ("Origin", format!("http://127.0.0.1:{}", port + 1)),
        ("Origin", format!("http://localhost:{port}")),
        ("Origin", format!("{bff}/")),
        ("Origin", bff.to_uppercase()),
        ("Origin", format!("http://attacker.com@127.0.0.1:{port}")),
        ("Sec-Fetch-Site", "cross-site".into()),
        ("Sec-Fetch-Site", "CROSS-SITE".into()),
    ];
    for (name, value) in &foreign {
        for (method, path) in [
            (Method::POST, "/api/notes"),
            (Method::PUT, "/echo/x"),
            (Method::PATCH, "/echo/x"),
            (Method::DELETE, "/echo/x"),
            (Method::POST, "/bff/logout"),
        ] {
            let req = browser
                .request(method.clone(), &stack.bff(path))
                .header("X-CSRF", "1")
                .header("Content-Type", "application/json")
                .header(*name, value.as_str())
                .body("{\"text\":\"forged\"}");
            let page = browser.send(req).await;
            assert_error(&page, 403, "csrf");
            assert_session_cookie_untouched(&page);
        }
        let req = browser
            .request(Method::POST, &stack.bff("/notes-form"))
            .header(*name, value.as_str())
            .form(&[("csrf_token", token.as_str()), ("text", "forged")]);
        let page = browser.send(req).await;
        assert_eq!(page.status, 403, "{name}: {value}: {}", page.body);
        let req = browser
            .request(Method::POST, &stack.bff("/bff/logout"))
            .header(*name, value.as_str())
            .form(&[("csrf_token", token.as_str())]);
        assert_eq!(browser.send(req).await.status, 403, "form logout with {name}: {value}");
    }
    assert_eq!(stack.echo.hits(), 0);
    assert_eq!(notes_count(&stack, &browser).await, before, "no note was added");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_request_with_two_origin_headers_one_foreign_is_refused() {
    let (stack, browser) = stack_with_session().await;
    let own = stack.stack.bff_url.clone();
    for (first, second) in [(own.as_str(), "http://evil.example"), ("http://evil.example", own.as_str())] {
        let res = raw_with_session(
            &stack,
            &browser,
            "POST",
            "/echo/x",
            &[("Origin", first), ("Origin", second), ("Content-Type", "application/json")],
            b"{}",
        )
        .await;
        assert_raw_error(&res, 403, "csrf", "two Origin headers");
    }
    assert_eq!(stack.echo.hits(), 0);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_foreign_origin_never_gets_access_control_headers_on_any_route_or_method() {
    let (stack, browser) = stack_with_session().await;
    for origin in ["http://evil.example", "null", stack.stack.bff_url.as_str()] {
        for path in ["/api/notes", "/echo/x", "/bff/user", "/bff/logout", "/bff/login", "/", "/app/"] {
            // A preflight, as a browser sends it before a credentialed cross-origin fetch.
            let req = browser
                .request(Method::OPTIONS, &stack.bff(path))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "x-csrf, content-type");
            let page = browser.send(req).await;
            assert_no_cors(&page);
            assert!(page.status.as_u16() < 500, "preflight {path}: {}", page.status);
            assert!(
                !page.status.is_success() || path == "/bff/login",
                "preflight {path} succeeded: {}",
                page.status
            );
            // The request itself: whatever the answer, the page cannot read it.
            let req =
                browser.request(Method::GET, &stack.bff(path)).header("Origin", origin).header("X-CSRF", "1");
            let page = browser.send(req).await;
            assert_no_cors(&page);
            assert!(page.status.as_u16() < 500, "GET {path}: {}", page.status);
        }
    }
    assert!(stack.echo.seen().iter().all(|s| s.method != "OPTIONS"), "no preflight reached the upstream");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn an_upstreams_own_cors_headers_never_reach_the_browser() {
    let (stack, browser) = stack_with_session().await;
    let req = browser
        .request(Method::GET, &stack.bff("/echo/cors"))
        .header("X-CSRF", "1")
        .header("Origin", "http://evil.example");
    let page = browser.send(req).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["cors"], "permissive", "the upstream answered");
    assert_no_cors(&page);
    assert!(page.header("access-control-expose-headers").is_none());
}

#[tokio::test]
async fn a_form_post_without_the_right_token_adds_nothing() {
    let (stack, browser) = stack_with_session().await;
    let before = notes_count(&stack, &browser).await;
    for fields in [
        vec![("text".to_string(), "forged".to_string())],
        vec![("csrf_token".into(), "".into()), ("text".into(), "forged".into())],
        vec![("csrf_token".into(), cloakroom::crypto::random_token(32)), ("text".into(), "forged".into())],
    ] {
        let page = browser.post_form(&stack.bff("/notes-form"), &fields).await;
        assert_eq!(page.status, 403, "{}", page.body);
    }
    assert_eq!(notes_count(&stack, &browser).await, before);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn no_get_or_head_request_changes_state() {
    let (stack, browser) = stack_with_session().await;
    let before = notes_count(&stack, &browser).await;
    let token = stack.form_token(&browser).await;
    for method in [Method::GET, Method::HEAD] {
        for path in [
            "/bff/logout".to_string(),
            format!("/bff/logout?csrf_token={token}"),
            format!("/notes-form?csrf_token={token}&text=by-get"),
            "/bff/backchannel-logout?logout_token=x".into(),
        ] {
            let req = browser.request(method.clone(), &stack.bff(&path)).header("X-CSRF", "1");
            let page = browser.send(req).await;
            assert!(matches!(page.status.as_u16(), 404 | 405), "{method} {path}: {}", page.status);
            assert_session_cookie_untouched(&page);
        }
    }
    assert_eq!(notes_count(&stack, &browser).await, before);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn traversal_in_any_spelling_never_reaches_the_upstream_with_a_live_session() {
    let stack = AttackStack::start(|c| {
        let echo = c.doc["bff"]["routes"][1]["upstream"].as_str().unwrap().to_string();
        let rs = c.doc["bff"]["routes"][0]["upstream"].clone();
        c.set(
            "bff.routes",
            json!([{ "path": "/api", "upstream": rs }, { "path": "/echo", "upstream": format!("{echo}/base") }]),
        )
    })
    .await;
    let browser = stack.login().await;
    for target in [
        "/echo/../x",
        "/echo/..",
        "/echo/a/../../x",
        "/echo/%2e%2e/x",
        "/echo/%2E%2E/x",
        "/echo/.%2e/x",
        "/echo/%2e./x",
        "/echo/%2e",
        "/echo/./x",
        "/echo/a%2fb",
        "/echo/a%2F..%2Fb",
        "/echo/a%5c..%5cb",
        "/echo//x",
        "/echo/x//y",
        "/echo/%2f%2fevil.example/x",
        "/echo/%252e%252e/x",
        "/echo/..;/x",
        "/echo/.;/x",
        "/echo/%2e%2e;jsessionid=1/x",
        "/echo/..%3b/x",
        "/echo/a\\..\\b",
        "/echo/%c0%ae%c0%ae/x",
        "/echo/%e0%80%ae%e0%80%ae/x",
        "/echo/%00/x",
        "/echo/%0d%0aX-Injected:%201",
    ] {
        let res = raw_with_session(&stack, &browser, "GET", target, &[], b"").await;
        assert_raw_error(&res, 400, "invalid_request", target);
    }
    assert_eq!(stack.echo.hits(), 0, "no traversal reached the upstream: {:?}", stack.echo.seen());
    // The control: a plain path arrives under the route's base path.
    let res = raw_with_session(&stack, &browser, "GET", "/echo/notes/7?x=1", &[], b"").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(stack.echo.seen()[0].target, "/base/notes/7?x=1");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn route_prefixes_never_match_look_alike_paths_with_a_live_session() {
    let (stack, browser) = stack_with_session().await;
    for target in [
        "/apiary",
        "/api-v2/notes",
        "/api.json",
        "/api_/notes",
        "/API/notes",
        "/%61pi/notes",
        "/api%2fnotes",
        "/api%2Fnotes",
        "/echox",
        "/echo%2fx",
        "/Echo/x",
        "/%65cho/x",
        "/echo%00/x",
        "/.echo/x",
        "/echo\\..\\x",
    ] {
        let res = raw_with_session(&stack, &browser, "GET", target, &[], b"").await;
        assert!(matches!(res.status, 400 | 404), "{target}: {} {}", res.status, res.text());
        assert!(
            matches!(res.json()["error"].as_str(), Some("not_found" | "invalid_request")),
            "{target}: {}",
            res.text()
        );
    }
    assert_eq!(stack.echo.hits(), 0, "{:?}", stack.echo.seen());
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn absolute_authority_and_asterisk_form_targets_cannot_pick_the_upstream() {
    let (stack, browser) = stack_with_session().await;
    let echo_authority = raw_http::authority(&stack.echo.url);
    // Absolute form: only the path counts; the upstream stays the configured one.
    for target in
        ["http://evil.example/echo/x", "https://127.0.0.1:1/echo/x", "http://169.254.169.254/echo/x"]
    {
        let res = raw_with_session(&stack, &browser, "GET", target, &[("Host", "evil.example")], b"").await;
        assert_eq!(res.status, 200, "{target}: {}", res.text());
    }
    for seen in stack.echo.seen() {
        assert_eq!(seen.target, "/x");
        assert_eq!(seen.all("host"), vec![echo_authority.clone()], "the upstream's own Host");
    }
    let hits = stack.echo.hits();
    // Authority form (CONNECT), asterisk form, a target without a leading slash.
    for (method, target) in [
        ("CONNECT", "evil.example:443"),
        ("GET", "evil.example:80"),
        ("OPTIONS", "*"),
        ("GET", "echo/x"),
        ("GET", "*"),
    ] {
        let res = raw_with_session(&stack, &browser, method, target, &[], b"").await;
        assert!((400..500).contains(&res.status), "{method} {target}: {} {}", res.status, res.text());
    }
    assert_eq!(stack.echo.hits(), hits, "none of them reached the upstream");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_spoofed_host_never_changes_the_urls_the_bff_builds() {
    let stack = stack().await;
    let public = stack.stack.bff_url.clone();
    let spoofs: [&[(&str, &str)]; 4] = [
        &[("Host", "evil.example")],
        &[("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https")],
        &[("Forwarded", "host=evil.example;proto=https")],
        &[("X_Forwarded_Host", "evil.example")],
    ];
    for headers in spoofs {
        let res = raw_http::send(
            &public,
            &raw_http::request(&public, "GET", "/bff/login?returnTo=/", headers, b""),
        )
        .await;
        assert_eq!(res.status, 302, "{}", res.text());
        let location = res.header("location").unwrap().to_string();
        assert!(!location.contains("evil"), "{location}");
        let redirect_uri = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        assert_eq!(redirect_uri, Some(format!("{public}/bff/callback")));
    }
    // Logout and the proxy of a live session.
    let browser = stack.login().await;
    let res = raw_with_session(
        &stack,
        &browser,
        "GET",
        "/echo/x",
        &[("Host", "evil.example"), ("X-Forwarded-Host", "evil.example")],
        b"",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &stack.echo.seen()[0];
    assert_eq!(seen.all("host"), vec![raw_http::authority(&stack.echo.url)]);
    assert_eq!(seen.all("x-forwarded-host"), vec![raw_http::authority(&public)]);
    let res =
        raw_with_session(&stack, &browser, "POST", "/bff/logout", &[("Host", "evil.example")], b"").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!res.text().contains("evil"), "{}", res.text());
}

#[tokio::test]
async fn forwarding_and_hop_by_hop_headers_in_every_spelling_are_replaced_or_dropped() {
    let (stack, browser) = stack_with_session().await;
    let spoofed: Vec<(&str, &str)> = vec![
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-For", "7.7.7.7"),
        ("x-forwarded-for", "8.8.8.8"),
        ("X_Forwarded_For", "6.6.6.6"),
        ("X-Forwarded_For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X_FORWARDED_PROTO", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Port", "443"),
        ("X_Forwarded_Port", "443"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Forwarded-Server", "evil.example"),
        ("X-Forwarded-User", "admin"),
        ("X_Forwarded_Email", "admin@example.org"),
        ("X-Real-IP", "6.6.6.6"),
        ("X_Real_IP", "6.6.6.6"),
        ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
        ("TE", "trailers"),
        ("Upgrade", "websocket"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic YWRtaW46YWRtaW4="),
        ("Proxy-Connection", "keep-alive"),
        ("Trailer", "X-Late"),
        ("Connection", "X-Private, x_other"),
        ("X-Private", "secret"),
        ("X-Other", "secret"),
        ("Authorization", "Bearer attacker"),
    ];
    let res = raw_with_session(&stack, &browser, "GET", "/echo/x", &spoofed, b"").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &stack.echo.seen()[0];
    let names: Vec<&str> = seen.headers.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in &seen.headers {
        let n = name.replace('_', "-");
        assert!(
            !matches!(
                n.as_str(),
                "x-real-ip"
                    | "forwarded"
                    | "te"
                    | "upgrade"
                    | "keep-alive"
                    | "trailer"
                    | "x-private"
                    | "x-other"
                    | "cookie"
                    | "x-csrf"
            ) && !n.starts_with("proxy-")
                && (!n.starts_with("x-forwarded-")
                    || matches!(n.as_str(), "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host")),
            "{name} reached the upstream: {names:?}"
        );
    }
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1".to_string()]);
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http".to_string()]);
    assert_eq!(seen.all("x-forwarded-host"), vec![raw_http::authority(&stack.stack.bff_url)]);
    let auth = seen.all("authorization");
    assert_eq!(auth.len(), 1);
    assert!(auth[0].starts_with("Bearer eyJ") && auth[0] != "Bearer attacker", "the BFF's own token only");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_smuggles_nothing() {
    let (stack, browser) = stack_with_session().await;
    let cookie = cookie_line(&browser);
    let host = raw_http::authority(&stack.stack.bff_url);
    let smuggled =
        format!("GET /echo/smuggled HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF: 1\r\n\r\n");
    // The HTTP layer itself refuses ambiguous framing (a bare 400, before any handler runs).
    // CL.TE: a front end trusting Content-Length passes the smuggled request on as body.
    let cl_te = format!(
        "POST /echo/x HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF: 1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
    );
    // TE.CL: the chunk holds the smuggled request, Content-Length says 4.
    let chunk = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    let te_cl = format!(
        "POST /echo/x HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF: 1\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunk}"
    );
    for request in [cl_te, te_cl] {
        let responses = raw_http::exchange(&stack.stack.bff_url, request.as_bytes()).await;
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![400], "one refusal, no second (smuggled) answer: {responses:?}");
    }
    let seen = stack.echo.seen();
    assert!(
        seen.iter().all(|s| !s.target.contains("smuggled")),
        "a smuggled request reached the upstream: {seen:?}"
    );
    assert!(seen.is_empty(), "an ambiguous request reached the upstream: {seen:?}");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn obfuscated_transfer_encoding_and_conflicting_lengths_smuggle_nothing() {
    let (stack, browser) = stack_with_session().await;
    let cookie = cookie_line(&browser);
    let host = raw_http::authority(&stack.stack.bff_url);
    let smuggled =
        format!("GET /echo/smuggled HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF: 1\r\n\r\n");
    let head = |extra: &str| {
        format!(
            "POST /echo/x HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nX-CSRF: 1\r\nContent-Type: application/json\r\n{extra}\r\n"
        )
    };
    let body = format!("0\r\n\r\n{smuggled}");
    let cases = [
        head(&format!("Content-Length: {}\r\nTransfer-Encoding: xchunked\r\n", body.len())) + &body,
        head(&format!("Content-Length: {}\r\nTransfer-Encoding : chunked\r\n", body.len())) + &body,
        head(&format!("Content-Length: {}\r\nTransfer-Encoding:\tchunked\r\n", body.len())) + &body,
        head(&format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            body.len()
        )) + &body,
        head(&format!("Content-Length: {}\r\nTransfer-Encoding: identity, chunked\r\n", body.len())) + &body,
        head("Content-Length: 2\r\nContent-Length: 200\r\n") + "{}" + &smuggled,
        head("Content-Length: 2, 200\r\n") + "{}" + &smuggled,
        head("Content-Length: +2\r\n") + "{}" + &smuggled,
        head("Content-Length: -1\r\n") + &smuggled,
        head("Content-Length: 99999999999999999999999\r\n") + &smuggled,
    ];
    for request in &cases {
        let responses = raw_http::exchange(&stack.stack.bff_url, request.as_bytes()).await;
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![400], "one refusal and nothing after it: {request:?}");
    }
    let seen = stack.echo.seen();
    assert!(seen.is_empty(), "an ambiguously framed request reached the upstream: {seen:?}");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_never_reaches_the_upstream() {
    let stack = AttackStack::start(|c| c.set("bff.max_body_bytes", json!(1024))).await;
    let browser = stack.login().await;
    let req = browser
        .request(Method::POST, &stack.bff("/echo/x"))
        .header("X-CSRF", "1")
        .header("Content-Type", "application/json")
        .body(vec![b' '; 1025]);
    let page = browser.send(req).await;
    assert_error(&page, 413, "payload_too_large");
    assert_eq!(stack.echo.hits(), 0);
    let req = browser
        .request(Method::POST, &stack.bff("/echo/x"))
        .header("X-CSRF", "1")
        .header("Content-Type", "application/json")
        .body(vec![b' '; 1024]);
    assert_eq!(browser.send(req).await.status, 200, "exactly the limit passes");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn api_routes_answer_json_never_a_redirect_even_to_page_navigations() {
    let stack = stack().await;
    let navigation = [
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "document"),
    ];
    let stranger = Browser::new();
    for path in ["/api/notes", "/echo/x", "/bff/user"] {
        let mut req = stranger.request(Method::GET, &stack.bff(path)).header("X-CSRF", "1");
        for (n, v) in navigation {
            req = req.header(n, v);
        }
        let page = stranger.send(req).await;
        assert_error(&page, 401, "unauthenticated");
        assert!(page.header("location").is_none());
        assert!(page.header("content-type").unwrap().starts_with("application/json"));
        // Without the header: 403 JSON, not a redirect either.
        let mut req = stranger.request(Method::GET, &stack.bff(path));
        for (n, v) in navigation {
            req = req.header(n, v);
        }
        let page = stranger.send(req).await;
        assert_error(&page, 403, "csrf");
        assert!(page.header("location").is_none());
    }
    // An ended session answers the same way.
    let browser = stack.login().await;
    let cookie = browser.cookie(SESSION_COOKIE).unwrap();
    stack.api(&browser, Method::POST, "/bff/logout", None).await;
    browser.set_cookie(SESSION_COOKIE, &cookie);
    let page = stack.api(&browser, Method::GET, "/api/notes", None).await;
    assert_error(&page, 401, "unauthenticated");
    assert!(page.header("location").is_none());
}

#[tokio::test]
async fn upstream_401_and_403_pass_through_and_keep_the_session() {
    let (stack, browser) = stack_with_session().await;
    for code in [401u16, 403] {
        let page = stack.api(&browser, Method::GET, &format!("/echo/status/{code}"), None).await;
        assert_eq!(page.status.as_u16(), code, "{}", page.body);
        assert_eq!(page.json()["error"], format!("upstream_{code}"), "the upstream's own body");
        assert!(page.header("location").is_none());
        assert_session_cookie_untouched(&page);
    }
    assert_eq!(stack.echo.hits(), 2, "no retry for a 401 that is not invalid_token");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn the_resource_servers_insufficient_scope_passes_through_and_keeps_the_session() {
    let stack =
        AttackStack::start(|c| c.set("bff.oidc.scopes", json!(["openid", "profile", "offline_access"])))
            .await;
    let browser = stack.login().await;
    let page: Page = stack.api(&browser, Method::GET, "/api/notes", None).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.json()["error"], "insufficient_scope");
    assert!(page.header("www-authenticate").is_some_and(|w| w.contains("insufficient_scope")));
    assert_session_cookie_untouched(&page);
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn trace_track_and_connect_are_never_proxied() {
    let (stack, browser) = stack_with_session().await;
    for method in ["TRACE", "TRACK", "trace", "CONNECT"] {
        let res = raw_with_session(&stack, &browser, method, "/echo/x", &[], b"").await;
        if method == "CONNECT" {
            // Refused by the HTTP layer or by the proxy, whichever sees it first.
            assert!(matches!(res.status, 400 | 405), "{method}: {} {}", res.status, res.text());
        } else {
            assert_raw_error(&res, 405, "method_not_allowed", method);
        }
        assert!(!common::attack::contains_jwt(&res.text()), "{method} reflected the access token");
    }
    assert_eq!(stack.echo.hits(), 0, "{:?}", stack.echo.seen());
    stack.assert_session_alive(&browser).await;
}

// --- Issue 16: request headers are an allow-list --------------------------------------------

/// Headers that proxies and frameworks trust as facts about the request, or that no route
/// asked for: none may reach an upstream.
const NOT_ALLOWED: &[(&str, &str)] = &[
    ("X-Original-URL", "/admin"),
    ("X-Rewrite-URL", "/admin"),
    ("X-Original-URI", "/admin"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-HTTP-Method", "DELETE"),
    ("X-Method-Override", "DELETE"),
    ("True-Client-IP", "6.6.6.6"),
    ("X-Client-IP", "6.6.6.6"),
    ("X-Cluster-Client-IP", "6.6.6.6"),
    ("CF-Connecting-IP", "6.6.6.6"),
    ("X-Originating-IP", "6.6.6.6"),
    ("X-Host", "evil.example"),
    ("X-Middleware-Subrequest", "middleware"),
    ("X-Tenant", "other-tenant"),
    ("X-Anything-New", "1"),
    // The browser's trace context: never forwarded (the BFF writes its own when traces are on).
    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("tracestate", "vendor=browser"),
];

/// End-to-end headers an API needs: each must arrive unchanged.
const ALLOWED: &[(&str, &str)] = &[
    ("Accept", "application/json"),
    ("Accept-Language", "de-CH"),
    ("If-None-Match", "\"v1\""),
    ("Range", "bytes=0-10"),
    ("X-Request-Id", "req-16"),
];

#[tokio::test]
async fn only_allow_listed_end_to_end_request_headers_reach_the_upstream() {
    let (stack, browser) = stack_with_session().await;
    let mut headers: Vec<(&str, &str)> = NOT_ALLOWED.to_vec();
    headers.extend_from_slice(ALLOWED);
    let res = raw_with_session(&stack, &browser, "GET", "/echo/x", &headers, b"").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = &stack.echo.seen()[0];
    let names: Vec<&str> = seen.headers.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in NOT_ALLOWED {
        assert!(seen.all(&name.to_ascii_lowercase()).is_empty(), "{name} reached the upstream: {names:?}");
    }
    for (name, value) in ALLOWED {
        assert_eq!(seen.all(&name.to_ascii_lowercase()), vec![value.to_string()], "{name}: {names:?}");
    }
}

#[tokio::test]
async fn a_route_forwards_the_headers_it_adds_and_a_route_without_them_does_not() {
    let stack = AttackStack::start(|c| {
        let mut routes = c.doc["bff"]["routes"].clone();
        let echo = routes[1]["upstream"].clone();
        routes[1]["forward_request_headers"] = json!(["X-Tenant"]);
        routes.as_array_mut().unwrap().push(json!({ "path": "/plain", "upstream": echo }));
        c.set("bff.routes", routes)
    })
    .await;
    let browser = stack.login().await;
    let headers = [("X-Tenant", "t-1"), ("X_Tenant", "t-2"), ("X-Original-URL", "/admin")];
    for path in ["/echo/x", "/plain/x"] {
        let res = raw_with_session(&stack, &browser, "GET", path, &headers, b"").await;
        assert_eq!(res.status, 200, "{path}: {}", res.text());
    }
    let seen = stack.echo.seen();
    assert_eq!(seen[0].all("x-tenant"), vec!["t-1".to_string()], "the route's own header");
    assert!(seen[0].all("x_tenant").is_empty(), "an underscore spelling is another header");
    assert!(seen[0].all("x-original-url").is_empty());
    assert!(seen[1].all("x-tenant").is_empty(), "another route does not forward it");
}

#[tokio::test]
async fn an_upstreams_lax_page_policies_never_replace_the_bffs_own() {
    // The proxied answer is served on the BFF's origin: an upstream's framing, referrer or
    // opener policy must not become the origin's, and its CSP only adds to the BFF's.
    let (stack, browser) = stack_with_session().await;
    let page = stack.api(&browser, Method::GET, "/echo/lax-policies", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let all = |name: &str| -> Vec<String> {
        page.headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("").to_string()).collect()
    };
    assert_eq!(all("x-frame-options"), vec!["DENY".to_string()]);
    assert_eq!(all("referrer-policy"), vec!["same-origin".to_string()]);
    assert_eq!(all("cross-origin-opener-policy"), vec!["same-origin".to_string()]);
    assert_eq!(all("x-content-type-options"), vec!["nosniff".to_string()]);
    let csp = all("content-security-policy");
    assert!(csp.contains(&cloakroom::web::CONTENT_SECURITY_POLICY.to_string()), "the BFF's CSP: {csp:?}");
}
