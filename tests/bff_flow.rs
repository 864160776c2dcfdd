//! The BFF end to end against the real auth server and resource server: login, session
//! cookie, proxy, transparent refresh, logout, and the error rows of contract §3.

mod common;

use cloakroom::bff::session::SESSION_COOKIE;
use common::apps::start_second_bff;
use common::browser::{assert_error_code, call};
use common::oidc_flow::{bff_login, submit_login, urlencode};
use common::redis::{RedisServer, shared};
use common::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A test upstream behind the `/echo` route: reports what it received, can be slow, and
/// refuses each access token once with `invalid_token`.
async fn echo_upstream() -> String {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new()
            .app_data(web::Data::new(seen))
            .route(
                "/headers",
                web::to(|req: HttpRequest, body: web::Bytes| async move {
                    let headers: serde_json::Map<String, Value> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            let v = v.to_str().unwrap_or("");
                            // The browser must never see a token, even from this test upstream.
                            let v = match v.strip_prefix("Bearer ") {
                                Some(t) => {
                                    format!("Bearer sha256:{}", cloakroom::crypto::sha256_b64(t.as_bytes()))
                                }
                                None => v.to_string(),
                            };
                            (k.as_str().to_string(), json!(v))
                        })
                        .collect();
                    HttpResponse::Ok()
                        .insert_header(("Set-Cookie", "upstream=1; Path=/"))
                        .insert_header(("X-Upstream", "yes"))
                        .json(json!({ "method": req.method().as_str(), "uri": req.uri().to_string(),
                                      "headers": headers, "body_len": body.len() }))
                }),
            )
            .route(
                "/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/once-invalid",
                web::to(|req: HttpRequest, seen: web::Data<Arc<Mutex<HashSet<String>>>>| async move {
                    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let mut seen = seen.lock().unwrap();
                    let first_ever = seen.is_empty();
                    seen.insert(auth.to_string());
                    if first_ever {
                        return HttpResponse::Unauthorized()
                            .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
                            .finish();
                    }
                    HttpResponse::Ok().body("second token accepted")
                }),
            )
            .route(
                "/always-invalid",
                web::to(|seen: web::Data<Arc<Mutex<HashSet<String>>>>| async move {
                    seen.lock().unwrap().insert(format!("always-{}", cloakroom::crypto::random_token(8)));
                    HttpResponse::Unauthorized()
                        .insert_header(("WWW-Authenticate", "Bearer error=\"invalid_token\""))
                        .finish()
                }),
            )
            .route(
                "/hits",
                web::get().to(|seen: web::Data<Arc<Mutex<HashSet<String>>>>| async move {
                    let n = seen.lock().unwrap().iter().filter(|s| s.starts_with("always-")).count();
                    HttpResponse::Ok().body(n.to_string())
                }),
            )
    })
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

async fn stack_with(tweak: impl FnOnce(StackConfig) -> StackConfig) -> Stack {
    let echo = echo_upstream().await;
    let cfg = StackConfig::new();
    let rs = cfg.doc["resource_server"]["audience"].clone();
    let cfg = cfg.set(
        "bff.routes",
        json!([{ "path": "/api", "upstream": rs }, { "path": "/echo", "upstream": echo }]),
    );
    Stack::start_ready(tweak(cfg)).await
}

fn assert_no_tokens_in(pages: &[Page]) {
    let jwt = regex_like_jwt();
    for p in pages {
        let headers = format!("{:?}", p.headers);
        assert!(!jwt(&p.body) && !jwt(&headers), "a JWT reached the browser from {}", p.url);
    }
}

/// `eyJ[\w-]+\.[\w-]+\.` without a regex dependency.
fn regex_like_jwt() -> impl Fn(&str) -> bool {
    |s: &str| {
        s.match_indices("eyJ").any(|(i, _)| {
            let rest = &s[i..];
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            let mut parts = rest.splitn(3, '.');
            let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            parts.next().is_some()
                && a.len() > 3
                && a.chars().all(word)
                && !b.is_empty()
                && b.chars().all(word)
        })
    }
}

#[tokio::test]
async fn the_whole_walk_login_proxy_refresh_and_logout_never_shows_a_token_to_the_browser() {
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(3)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let browser = Browser::new();
    let callback = bff_login(&browser, &stack, USER, "/app/").await;
    assert_eq!(callback.status, 302, "{}", callback.body);
    assert_eq!(callback.header("location").as_deref(), Some("/app/"));
    let cookie = callback.session_set_cookie().expect("session cookie set at login");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="));
    let value = browser.session_cookie().unwrap();
    assert!(value.len() <= 100 && value.len() >= 43, "cookie value of {} bytes", value.len());
    assert_eq!(callback.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        browser.cookie_names().iter().all(|n| !n.starts_with("__Host-cloakroom-login-")),
        "login cookie cleared"
    );

    let user = stack.user(&browser).await;
    assert_eq!(user.status, 200, "{}", user.body);
    let user = user.json();
    assert!(user["sub"].is_string() && user["claims"].is_object());
    assert!(
        user["session"]["expires_at"].as_i64().unwrap()
            >= user["session"]["idle_expires_at"].as_i64().unwrap()
    );

    let created = stack.api_post_json(&browser, "/api/notes", json!({"text": "hello"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].clone();
    let list = stack.api_get(&browser, "/api/notes").await;
    assert!(list.body.contains("hello"), "{}", list.body);
    let id = id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string());
    let deleted = stack.api(&browser, Method::DELETE, &format!("/api/notes/{id}"), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    let echoed = stack.api_get(&browser, "/echo/headers?x=1").await.json();
    assert!(echoed["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "));
    assert!(echoed["headers"].get("cookie").is_none() && echoed["headers"].get("x-csrf").is_none());
    assert_eq!(echoed["uri"], "/headers?x=1");

    let first = stack.api_get(&browser, "/api/whoami").await.json();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(second.status, 200, "refresh must be transparent: {}", second.body);
    assert_ne!(first["jti"], second.json()["jti"], "a new access token after refresh");
    let metrics = browser.get(&stack.bff("/metrics")).await;
    assert!(metrics.body.contains("cloakroom_token_refresh_total{outcome=\"success\"} "), "{}", metrics.body);

    // Redis holds neither a raw session id nor a raw token.
    let raw_id = &value[value.len() - 43..];
    for (key, val) in shared().dump() {
        let text = String::from_utf8_lossy(&val);
        assert!(!key.contains(raw_id) && !text.contains(raw_id), "raw session id stored under {key}");
        assert!(!regex_like_jwt()(&text), "a raw JWT stored under {key}");
    }

    let logout = stack.logout(&browser).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let logout_url = logout.json()["logout_url"].as_str().unwrap().to_string();
    assert!(logout_url.starts_with(&stack.auth_url), "{logout_url}");
    let removal = logout.session_set_cookie().expect("cookie expired at logout");
    assert!(removal.contains("Max-Age=0") && removal.contains("Secure") && removal.contains("HttpOnly"));
    assert_no_tokens_in(&browser.history.lock().unwrap());

    browser.set_cookie(SESSION_COOKIE, &value);
    assert_error_code(&stack.user(&browser).await, 401, "unauthenticated");
    assert_error_code(&stack.api_get(&browser, "/api/notes").await, 401, "unauthenticated");
}

#[tokio::test]
async fn a_replayed_callback_fails_and_creates_no_session() {
    let stack = stack_with(|c| c).await;
    let browser = Browser::new();
    let start = browser.get(&stack.bff("/bff/login?returnTo=/")).await;
    let login_page = browser.follow(start).await;
    let after = submit_login(&browser, &login_page, USER).await;
    let callback = browser.follow_until(after, &stack.bff("/bff/callback")).await;
    assert_eq!(browser.get(&callback).await.status, 302);
    let cookie = browser.session_cookie();
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("<html"), "an HTML page");
    assert!(replay.session_set_cookie().is_none());
    assert_eq!(browser.session_cookie(), cookie);
}

#[tokio::test]
async fn another_browsers_callback_is_refused() {
    let stack = stack_with(|c| c).await;
    let victim = Browser::new();
    let attacker = Browser::new();
    let start = attacker.get(&stack.bff("/bff/login?returnTo=/")).await;
    let login_page = attacker.follow(start).await;
    let after = submit_login(&attacker, &login_page, USER).await;
    let callback = attacker.follow_until(after, &stack.bff("/bff/callback")).await;
    let page = victim.get(&callback).await;
    assert_eq!(page.status, 400, "state is bound to the browser that started the login");
    assert!(victim.session_cookie().is_none());
}

#[tokio::test]
async fn provider_errors_and_missing_state_are_400_pages() {
    let stack = stack_with(|c| c).await;
    let browser = Browser::new();
    for q in ["error=access_denied&state=x", "code=abc", "code=abc&state=unknown", ""] {
        let page = browser.get(&format!("{}/bff/callback?{q}", stack.bff_url)).await;
        assert_eq!(page.status, 400, "{q}");
        assert!(page.session_set_cookie().is_none());
    }
}

#[tokio::test]
async fn a_cookie_planted_before_login_is_dead_after_it() {
    let stack = stack_with(|c| c).await;
    let attacker = stack.login_as(USER).await;
    let planted = attacker.session_cookie().unwrap();
    let victim = Browser::new();
    victim.set_cookie(SESSION_COOKIE, &planted);
    let page = bff_login(&victim, &stack, USER, "/").await;
    assert_eq!(page.status, 302, "{}", page.body);
    let fresh = victim.session_cookie().unwrap();
    assert_ne!(planted, fresh, "a new id at login");
    assert_eq!(stack.user(&victim).await.status, 200);
    assert_error_code(&stack.user(&attacker).await, 401, "unauthenticated");
}

/// From `/bff/login`'s redirect to the callback URL: through the login form, or straight back
/// when the provider still has a login session for this browser.
async fn callback_url(browser: &Browser, stack: &Stack, start: Page) -> String {
    let callback = stack.bff("/bff/callback");
    let to_provider = start.location().expect("redirect to the provider");
    let page = browser.get(&to_provider).await;
    if page.location().is_some_and(|l| l.starts_with(&callback)) {
        return page.location().unwrap();
    }
    let page = browser.follow(page).await;
    let after = submit_login(browser, &page, USER).await;
    browser.follow_until(after, &callback).await
}

#[tokio::test]
async fn parallel_logins_in_two_tabs_both_complete() {
    let stack = stack_with(|c| c).await;
    let browser = Browser::new();
    let start = |return_to: &str| format!("{}/bff/login?returnTo={}", stack.bff_url, urlencode(return_to));
    let a = browser.get(&start("/a")).await;
    let b = browser.get(&start("/b")).await;
    let cb_a = callback_url(&browser, &stack, a).await;
    let cb_b = callback_url(&browser, &stack, b).await;
    for (cb, target) in [(cb_b, "/b"), (cb_a, "/a")] {
        let page = browser.get(&cb).await;
        assert_eq!(page.status, 302, "{}", page.body);
        assert_eq!(page.header("location").as_deref(), Some(target));
    }
}

#[tokio::test]
async fn login_cookies_are_bounded_per_browser() {
    let stack = stack_with(|c| c).await;
    let browser = Browser::new();
    for _ in 0..12 {
        browser.get(&stack.bff("/bff/login?returnTo=/")).await;
    }
    let n = browser.cookie_names().iter().filter(|n| n.starts_with("__Host-cloakroom-login-")).count();
    assert!(n <= 5, "{n} login cookies");
}

#[tokio::test]
async fn concurrent_requests_needing_a_refresh_share_one_refresh() {
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(4)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let browser = stack.login_as(USER).await;
    for _ in 0..2 {
        // Lifetime 4 s, skew 1 s: due after 3 s, and a fresh token is not due again this round.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let calls = (0..10).map(|_| stack.api_get(&browser, "/echo/headers"));
        let pages = futures_util::future::join_all(calls).await;
        for p in &pages {
            assert_eq!(p.status, 200, "{}", p.body);
        }
        let jtis: HashSet<String> =
            pages.iter().map(|p| p.json()["headers"]["authorization"].to_string()).collect();
        assert_eq!(jtis.len(), 1, "all requests used the one refreshed token");
    }
    assert_eq!(stack.user(&browser).await.status, 200);
    let metrics = browser.get(&stack.bff("/metrics")).await.body;
    assert!(metrics.contains("cloakroom_token_refresh_total{outcome=\"success\"} 2"), "{metrics}");
}

#[tokio::test]
async fn a_refresh_refused_by_the_provider_ends_the_session() {
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(2)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let browser = stack.login_as(USER).await;
    // The provider forgets every grant: the next refresh is `invalid_grant`.
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().unwrap().to_string();
    shared().delete_prefixed(&format!("{ns}:"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;
    assert_error_code(&page, 401, "session_expired");
    assert_error_code(&stack.user(&browser).await, 401, "unauthenticated");
}

#[tokio::test]
async fn an_unreachable_provider_during_a_due_refresh_is_503_and_keeps_the_session() {
    let as_redis = RedisServer::start();
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(2))
            .set("bff.refresh_skew_secs", json!(1))
            .set("auth_server.redis_url", json!(as_redis.url()))
    })
    .await;
    let browser = stack.login_as(USER).await;
    as_redis.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;
    assert_error_code(&page, 503, "auth_server_unavailable");
    assert!(page.header("retry-after").is_some());
    assert_eq!(stack.user(&browser).await.status, 200, "session kept");
}

#[tokio::test]
async fn idle_sessions_expire_server_side() {
    let stack = stack_with(|c| c.set("bff.session.idle_timeout_secs", json!(1))).await;
    let browser = stack.login_as(USER).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_error_code(&stack.user(&browser).await, 401, "unauthenticated");
}

#[tokio::test]
async fn upstream_failures_map_to_502_and_504_and_leave_the_session_alone() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let echo = echo_upstream().await;
    let cfg = StackConfig::new();
    let rs = cfg.doc["resource_server"]["audience"].clone();
    let cfg = cfg.set("bff.upstream_timeout_secs", json!(1)).set(
        "bff.routes",
        json!([{ "path": "/api", "upstream": rs }, { "path": "/dead", "upstream": dead }, { "path": "/echo", "upstream": echo }]),
    );
    let stack = Stack::start_ready(cfg).await;
    let browser = stack.login_as(USER).await;
    assert_error_code(&stack.api_get(&browser, "/dead/x").await, 502, "upstream_unavailable");
    assert_error_code(&stack.api_get(&browser, "/echo/slow").await, 504, "upstream_timeout");
    assert_eq!(stack.user(&browser).await.status, 200);
}

#[tokio::test]
async fn an_upstream_invalid_token_answer_is_refreshed_and_retried_once() {
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    let page = stack.api_get(&browser, "/echo/once-invalid").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Retried once only, then the upstream's 401 passes through as it is.
    let page = stack.api_get(&browser, "/echo/always-invalid").await;
    assert_eq!(page.status, 401);
    assert_eq!(stack.api_get(&browser, "/echo/hits").await.body, "2");
    // A body that was streamed is never replayed.
    let page = stack.api_post_json(&browser, "/echo/always-invalid", json!({"a": 1})).await;
    assert_eq!(page.status, 401);
    assert_eq!(stack.api_get(&browser, "/echo/hits").await.body, "3");
    assert_eq!(stack.user(&browser).await.status, 200, "session kept");
}

#[tokio::test]
async fn forwarding_headers_from_the_browser_are_replaced_and_upstream_cookies_dropped() {
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    let req = browser
        .request(Method::POST, &stack.bff("/echo/headers"))
        .header("X-CSRF", "1")
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X_Forwarded_Host", "evil.example")
        .header("Forwarded", "for=6.6.6.6")
        .header("Authorization", "Bearer attacker")
        .header("Connection", "X-Hop")
        .header("X-Hop", "secret")
        .body("{\"x\":1}");
    let page = browser.send(req).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("set-cookie").is_none_or(|c| !c.starts_with("upstream=")));
    assert_eq!(page.header("x-upstream").as_deref(), Some("yes"));
    let seen = page.json();
    let h = &seen["headers"];
    assert_eq!(seen["body_len"], 7);
    assert_ne!(h["x-forwarded-for"], "6.6.6.6");
    assert!(h.get("x_forwarded_host").is_none() && h.get("forwarded").is_none() && h.get("x-hop").is_none());
    assert_ne!(h["authorization"], "Bearer attacker");
}

#[tokio::test]
async fn the_server_rendered_page_lists_adds_notes_and_logs_out_by_form() {
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    let page = browser.get(&stack.bff("/")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(USER.0), "{}", page.body);
    let token = page.inputs().into_iter().find(|(n, _)| n == "csrf_token").unwrap().1;
    let add = browser
        .post_form(
            &stack.bff("/notes-form"),
            &[("csrf_token".into(), token.clone()), ("text".into(), "from the form".into())],
        )
        .await;
    assert_eq!(add.status, 303);
    assert!(browser.get(&stack.bff("/")).await.body.contains("from the form"));
    let bad = browser.post_form(&stack.bff("/bff/logout"), &[("csrf_token".into(), "wrong".into())]).await;
    assert_eq!(bad.status, 403);
    let out = browser.post_form(&stack.bff("/bff/logout"), &[("csrf_token".into(), token)]).await;
    assert_eq!(out.status, 303);
    assert!(browser.session_cookie().is_none());
    assert_no_tokens_in(&browser.history.lock().unwrap());
}

#[tokio::test]
async fn a_session_store_outage_is_a_503_never_a_logout() {
    let bff_redis = RedisServer::start();
    let stack = stack_with(|c| c.set("bff.redis_url", json!(bff_redis.url()))).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().unwrap();
    bff_redis.stop();
    for path in ["/bff/user", "/echo/headers"] {
        let page = stack.api_get(&browser, path).await;
        assert_error_code(&page, 503, "store_unavailable");
        assert!(page.header("retry-after").is_some());
        assert!(page.session_set_cookie().is_none(), "the cookie is kept");
    }
    assert_eq!(browser.session_cookie(), Some(cookie));
}

#[tokio::test]
async fn absolute_form_targets_and_a_spoofed_host_cannot_pick_the_upstream() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().unwrap();
    let addr = stack.bff_url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET http://evil.example/echo/headers HTTP/1.1\r\nHost: evil.example\r\nX-CSRF: 1\r\n\
         Cookie: {SESSION_COOKIE}={cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"uri\":\"/headers\""), "{text}");
    assert!(!text.contains("\"x-forwarded-host\":\"evil.example\""), "{text}");
    assert!(!text.contains("\"host\":\"evil.example\""), "{text}");
}

#[tokio::test]
async fn a_streamed_body_crossing_the_limit_is_cut_off_with_413() {
    let stack = stack_with(|c| c.set("bff.max_body_bytes", json!(1024))).await;
    let browser = stack.login_as(USER).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8).map(|_| Ok(vec![b'a'; 512])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let req = browser
        .request(Method::POST, &stack.bff("/echo/headers"))
        .header("X-CSRF", "1")
        .header("Content-Type", "application/json")
        .body(body);
    assert_error_code(&browser.send(req).await, 413, "payload_too_large");
    let small = stack.api_post_json(&browser, "/echo/headers", json!({"a": 1})).await;
    assert_eq!(small.status, 200, "{}", small.body);
}

/// Grants the auth server holds (its store layout: `as:grant:{gid}` under its namespace).
fn provider_grants(stack: &Stack) -> usize {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().unwrap().to_string();
    shared().dump().into_iter().filter(|(k, _)| k.starts_with(&format!("{ns}:as:grant:"))).count()
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_at_the_provider() {
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    assert_eq!(provider_grants(&stack), 1);
    let logout = stack.logout(&browser).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let url = logout.json()["logout_url"].as_str().unwrap().to_string();
    assert!(url.contains("client_id=") && url.contains("post_logout_redirect_uri="), "{url}");
    assert!(!url.contains("id_token_hint"), "no ID token reaches the browser: {url}");
    assert_eq!(provider_grants(&stack), 0, "the grant was revoked (RFC 7009)");
    assert_no_tokens_in(&browser.history.lock().unwrap());
}

#[tokio::test]
async fn activity_slides_the_idle_timeout_but_never_the_absolute_one() {
    let stack = stack_with(|c| {
        c.set("bff.session.idle_timeout_secs", json!(3)).set("bff.session.absolute_timeout_secs", json!(5))
    })
    .await;
    let browser = stack.login_as(USER).await;
    // Expiry is kept in whole seconds, so the margins here are at least 0.8 s.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(stack.user(&browser).await.status, 200, "activity keeps it");
    }
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_error_code(&stack.user(&browser).await, 401, "unauthenticated");
}

#[tokio::test]
async fn a_second_instance_on_the_same_store_serves_the_same_session() {
    let stack = stack_with(|c| c).await;
    let browser = stack.login_as(USER).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let page = call(&browser, &second, "/bff/user").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = call(&browser, &second, "/echo/headers").await;
    assert_eq!(page.status, 200, "{}", page.body);
}
