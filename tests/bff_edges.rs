//! The BFF's edges that need no login: returnTo validation, CSRF and CORS, strict session
//! cookies, proxy path normalisation, body limits, store failures, health and metrics.

mod common;

use cloakroom::bff::session::SESSION_COOKIE;
use common::redis::{RedisServer, shared};
use common::{Browser, StackConfig};
use reqwest::Method;
use serde_json::json;
use std::net::TcpListener;

/// A BFF on its own: its provider is a closed port, its route points at another closed port.
struct LoneBff {
    url: String,
    namespace: String,
    session_key: [u8; 32],
}

fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    drop(l);
    url
}

async fn lone_bff_on(redis_url: String, tweak: impl FnOnce(StackConfig) -> StackConfig) -> LoneBff {
    let cfg = StackConfig::new()
        .set("bff.oidc.issuer", json!(closed_port_url()))
        .set("bff.routes", json!([{ "path": "/api", "upstream": closed_port_url() }]))
        .set("bff.frontends", json!([]))
        .set("bff.redis_url", json!(redis_url));
    let cfg = tweak(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut bff_cfg = cfg.bff_config();
    bff_cfg.public_url = cloakroom::config::PublicUrl::parse(&url).unwrap();
    let namespace = bff_cfg.store.redis_namespace.clone();
    let session_key = bff_cfg.session_key.as_ref().unwrap().0[0];
    let app = cloakroom::bff::Application::build_with_listener(bff_cfg, listener).await.unwrap();
    tokio::spawn(app.run_until_stopped());
    LoneBff { url, namespace, session_key }
}

async fn lone_bff() -> LoneBff {
    lone_bff_on(shared().url(), |c| c).await
}

impl LoneBff {
    /// A session cookie value that passes the signature check, for an id this BFF never issued.
    fn signed_cookie(&self, id: &str) -> String {
        let keys = cloakroom::bff::keys::Keys::derive(&[self.session_key], None);
        let mut jar = actix_web::cookie::CookieJar::new();
        jar.signed_mut(&keys.cookie_key).add(actix_web::cookie::Cookie::new(SESSION_COOKIE, id.to_string()));
        jar.get(SESSION_COOKIE).unwrap().value().to_string()
    }

    fn store_keys(&self, redis: &RedisServer) -> Vec<String> {
        redis
            .dump()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(&format!("{}:", self.namespace)))
            .collect()
    }
}

fn assert_error(page: &common::Page, status: u16, code: &str) {
    assert_eq!(page.status.as_u16(), status, "{}: {}", page.url, page.body);
    assert_eq!(page.json()["error"], code, "{}", page.body);
    assert!(page.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn login_refuses_return_targets_that_are_not_local_paths() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "evil",
        "/%2f%2fevil.example",
        "/%5cevil",
        "/%09/evil.example",
        "/\t/evil",
        "/x\r\nLocation: https://evil",
        "javascript:alert(1)",
        "",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        let page = browser.get(&format!("{}/bff/login?returnTo={encoded}", bff.url)).await;
        assert_error(&page, 400, "invalid_request");
        assert!(page.set_cookies().is_empty(), "no login cookie for a refused login");
    }
}

#[tokio::test]
async fn login_without_the_provider_metadata_is_a_503_and_readyz_says_so() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let page = browser.get(&format!("{}/bff/login?returnTo=/", bff.url)).await;
    assert_error(&page, 503, "auth_server_unavailable");
    assert_eq!(browser.get(&format!("{}/readyz", bff.url)).await.status, 503);
    assert_eq!(browser.get(&format!("{}/healthz", bff.url)).await.status, 200);
}

#[tokio::test]
async fn the_user_endpoint_needs_the_csrf_header_and_a_session() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let page = browser.get(&format!("{}/bff/user", bff.url)).await;
    assert_error(&page, 403, "csrf");
    let page = browser
        .send(browser.request(Method::GET, &format!("{}/bff/user", bff.url)).header("X-CSRF", "1"))
        .await;
    assert_error(&page, 401, "unauthenticated");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn a_forged_unknown_or_malformed_session_cookie_is_refused_and_creates_no_store_key() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let unknown_signed = bff.signed_cookie(&cloakroom::crypto::random_token(32));
    let forged = format!("{}{}", "A".repeat(44), cloakroom::crypto::random_token(32));
    for value in [unknown_signed, forged, "*".into(), "x".repeat(10_000), "a%0d%0aSet-Cookie:x".into()] {
        let req = browser
            .request(Method::GET, &format!("{}/bff/user", bff.url))
            .header("X-CSRF", "1")
            .header("Cookie", format!("{SESSION_COOKIE}={value}"));
        let page = browser.send(req).await;
        assert_error(&page, 401, "unauthenticated");
        assert!(page.session_set_cookie().is_none());
    }
    assert!(bff.store_keys(shared()).is_empty(), "strict mode: nothing stored for a foreign id");
}

#[tokio::test]
async fn two_session_cookies_in_one_request_are_refused() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let a = bff.signed_cookie(&cloakroom::crypto::random_token(32));
    let b = bff.signed_cookie(&cloakroom::crypto::random_token(32));
    let req = browser
        .request(Method::GET, &format!("{}/bff/user", bff.url))
        .header("X-CSRF", "1")
        .header("Cookie", format!("{SESSION_COOKIE}={a}; {SESSION_COOKIE}={b}"));
    assert_error(&browser.send(req).await, 400, "invalid_request");
}

#[tokio::test]
async fn an_unreachable_session_store_is_a_503_with_retry_after_and_keeps_the_cookie() {
    let redis = RedisServer::start();
    let bff = lone_bff_on(redis.url(), |c| c).await;
    redis.stop();
    let browser = Browser::new();
    let cookie = bff.signed_cookie(&cloakroom::crypto::random_token(32));
    let req = browser
        .request(Method::GET, &format!("{}/bff/user", bff.url))
        .header("X-CSRF", "1")
        .header("Cookie", format!("{SESSION_COOKIE}={cookie}"));
    let page = browser.send(req).await;
    assert_error(&page, 503, "store_unavailable");
    assert!(page.header("retry-after").is_some());
    assert!(page.set_cookies().is_empty(), "a store error is never a logout");
    assert_eq!(browser.get(&format!("{}/readyz", bff.url)).await.status, 503);
}

#[tokio::test]
async fn api_calls_without_the_csrf_header_are_refused_before_anything_else() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let page = browser.send(browser.request(method, &format!("{}/api/notes", bff.url))).await;
        assert_error(&page, 403, "csrf");
    }
}

#[tokio::test]
async fn cross_site_unsafe_requests_are_refused_with_exact_origin_comparison() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let foreign = [
        ("Origin", format!("{}.attacker.com", bff.url)),
        ("Origin", "null".to_string()),
        ("Origin", "http://evil.example".to_string()),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ];
    for (name, value) in foreign {
        for path in ["/api/notes", "/bff/logout"] {
            let req = browser
                .request(Method::POST, &format!("{}{path}", bff.url))
                .header("X-CSRF", "1")
                .header("Content-Type", "application/json")
                .header(name, value.clone())
                .body("{}");
            assert_error(&browser.send(req).await, 403, "csrf");
        }
    }
}

#[tokio::test]
async fn json_routes_refuse_the_content_types_a_form_can_send() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let req = browser
            .request(Method::POST, &format!("{}/api/notes", bff.url))
            .header("X-CSRF", "1")
            .header("Content-Type", ct)
            .body("{\"text\":\"x\"}");
        assert_error(&browser.send(req).await, 415, "unsupported_media_type");
    }
}

/// Sends a request line exactly as given (no client-side normalisation) and returns the status.
async fn raw_status(base: &str, target: &str, extra_headers: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nX-CSRF: 1\r\n{extra_headers}Connection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn route_prefixes_match_whole_segments_and_traversal_is_refused() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let page = browser
        .send(browser.request(Method::GET, &format!("{}/apiary", bff.url)).header("X-CSRF", "1"))
        .await;
    assert_error(&page, 404, "not_found");
    for bad in [
        "/api/%2e%2e/admin",
        "/api/%2E%2E/admin",
        "/api/../admin",
        "/api/a%2fb",
        "/api/a%5cb",
        "/api//x",
        "/api/%252e%252e/x",
        "/api/./x",
        "/api/a\\b",
    ] {
        assert_eq!(raw_status(&bff.url, bad, "").await, 400, "{bad}");
    }
    // A well-formed path without a session: 401 JSON, never a redirect to login.
    let page = browser
        .send(browser.request(Method::GET, &format!("{}/api/notes", bff.url)).header("X-CSRF", "1"))
        .await;
    assert_error(&page, 401, "unauthenticated");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let bff = lone_bff_on(shared().url(), |c| c.set("bff.max_body_bytes", json!(1024))).await;
    let browser = Browser::new();
    let req = browser
        .request(Method::POST, &format!("{}/api/notes", bff.url))
        .header("X-CSRF", "1")
        .header("Content-Type", "application/json")
        .body(vec![b'a'; 4096]);
    assert_error(&browser.send(req).await, 413, "payload_too_large");
}

#[tokio::test]
async fn logout_is_post_only_needs_csrf_and_expires_the_cookie() {
    let bff = lone_bff().await;
    let browser = Browser::new();
    let page = browser.get(&format!("{}/bff/logout", bff.url)).await;
    assert!(page.status == 405 || page.status == 404, "no GET logout: {}", page.status);
    let page = browser.send(browser.request(Method::POST, &format!("{}/bff/logout", bff.url))).await;
    assert_error(&page, 403, "csrf");
    let page = browser
        .send(browser.request(Method::POST, &format!("{}/bff/logout", bff.url)).header("X-CSRF", "1"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["logout_url"], "/");
    let cookie = page.session_set_cookie().unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=0"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain"), "{cookie}");
}

#[tokio::test]
async fn pages_carry_security_headers_and_metrics_list_the_refresh_counter() {
    let stack = common::Stack::start_ready(StackConfig::new()).await;
    let browser = Browser::new();
    let page = browser.get(&format!("{}/", stack.bff_url)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/bff/login?returnTo=/"));
    assert!(page.header("content-security-policy").unwrap().contains("script-src 'self'"));
    // Under `no-referrer` a browser sends `Origin: null` on the page's own form posts, which the
    // Origin check refuses: the policy must let same-origin requests carry their origin.
    assert_eq!(page.header("referrer-policy").as_deref(), Some("same-origin"));
    let app = browser.get(&format!("{}/app/", stack.bff_url)).await;
    assert_eq!(app.status, 200);
    assert!(app.body.contains("/app/app.js") && !app.body.contains("<script>"));
    assert_eq!(browser.get(&format!("{}/app/app.js", stack.bff_url)).await.status, 200);
    let metrics = browser.get(&format!("{}/metrics", stack.bff_url)).await;
    assert!(metrics.body.contains("cloakroom_token_refresh_total"), "{}", metrics.body);
}
