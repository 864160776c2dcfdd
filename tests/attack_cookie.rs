//! Attack suite, session cookie surface: what an attacker can do with (or to) the
//! `__Host-cloakroom` cookie, through HTTP against the real stack.
//!
//! Index — security checklist lines (`/work/shared/security-checklist.md`) and issue 6 cases:
//!
//! | case | test |
//! |---|---|
//! | #1 `__Host-`, Secure, HttpOnly, Path=/, no Domain, SameSite at login | `bff_flow::the_whole_walk_login_proxy_refresh_and_logout_never_shows_a_token_to_the_browser` |
//! | #1 … at logout of a live session | [`logging_out_a_live_session_expires_the_cookie_with_every_host_attribute`] |
//! | #1 … at logout without a session | `bff_edges::logout_is_post_only_needs_csrf_and_expires_the_cookie` |
//! | #2 ≥ 256 bits, CSPRNG, 10k samples | [`session_ids_are_256_random_bits_without_duplicates_or_fixed_positions_in_10k_samples`] |
//! | #3 no token reaches the browser | `attack_tokens::no_token_verifier_code_or_client_secret_ever_reaches_the_browser` |
//! | #4 forged / unknown id refused, no store key | `bff_edges::a_forged_unknown_or_malformed_session_cookie_is_refused_and_creates_no_store_key` |
//! | #4 forged id never adopted by a later login | [`a_forged_id_is_never_adopted_by_a_later_login`] |
//! | #4 expired id refused | `bff_flow::idle_sessions_expire_server_side`, `bff_flow::activity_slides_the_idle_timeout_but_never_the_absolute_one` |
//! | #5 `*`, CRLF, 10 kB checked before any store lookup | [`malformed_ids_are_refused_before_any_store_lookup_even_under_a_valid_signature`] |
//! | #6 new id at login, planted cookie dead | `bff_flow::a_cookie_planted_before_login_is_dead_after_it` |
//! | #7 id only from the cookie: query | [`a_session_id_in_the_query_string_is_ignored`] |
//! | #7 id only from the cookie: Authorization | [`a_session_id_in_the_authorization_header_is_ignored`] |
//! | #7 id only from the cookie named exactly `__Host-cloakroom` | [`a_session_cookie_under_a_percent_encoded_name_is_never_accepted`] |
//! | #8 idle / absolute timeouts | `bff_flow::idle_sessions_expire_server_side`, `bff_flow::activity_slides_the_idle_timeout_but_never_the_absolute_one` |
//! | #8 never outlives its refresh token | [`a_session_never_outlives_its_refresh_token`] |
//! | #8 refused refresh deletes the session | `bff_flow::a_refresh_refused_by_the_provider_ends_the_session` |
//! | #9 logout POST + CSRF, deletes, expires, revokes | `bff_edges::logout_is_post_only_needs_csrf_and_expires_the_cookie`, `bff_flow::logout_revokes_the_refresh_token_at_the_provider`, `bff_flow::the_server_rendered_page_lists_adds_notes_and_logs_out_by_form` |
//! | #10 no-store on cookie-setting and user-data responses | [`every_response_that_sets_a_cookie_or_carries_user_data_is_no_store`] |
//! | #10 session ids never logged | `attack_tokens::no_log_line_carries_a_session_id_cookie_token_or_verifier` |
//! | forged cookie | `bff_edges::a_forged_unknown_or_malformed_session_cookie_is_refused_and_creates_no_store_key` |
//! | truncated cookie | [`a_truncated_session_cookie_is_refused_and_the_real_session_survives`] |
//! | oversized cookie (8 kB+) | [`an_oversized_session_cookie_is_refused_without_a_500_and_the_real_session_survives`] |
//! | duplicated cookie → 400 | `bff_edges::two_session_cookies_in_one_request_are_refused`, [`two_session_cookies_are_refused_even_beside_the_real_one_and_the_real_session_survives`], [`a_duplicate_hidden_in_a_header_with_non_ascii_bytes_is_still_refused`] |
//! | non-ASCII cookie | [`a_non_ascii_session_cookie_is_refused_without_a_500_and_the_real_session_survives`] |

mod common;

use common::attack::{AttackStack, SESSION_COOKIE, assert_error, assert_session_cookie_untouched};
use common::raw_http;
use common::redis::RedisServer;
use common::{Browser, Page};
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;

async fn stack() -> AttackStack {
    AttackStack::start(|c| c).await
}

/// `/bff/user` with exactly this `Cookie` header, from a browser without a jar.
async fn user_with_cookie_header(stack: &AttackStack, cookie: &str) -> Page {
    let browser = Browser::new();
    let req =
        browser.request(Method::GET, &stack.bff("/bff/user")).header("X-CSRF", "1").header("Cookie", cookie);
    browser.send(req).await
}

/// `GET /bff/user` over raw TCP with these extra header lines (bytes as given).
async fn raw_user(stack: &AttackStack, extra: &[u8]) -> raw_http::RawResponse {
    let mut req = format!(
        "GET /bff/user HTTP/1.1\r\nHost: {}\r\nX-CSRF: 1\r\n",
        raw_http::authority(&stack.stack.bff_url)
    )
    .into_bytes();
    req.extend_from_slice(extra);
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    raw_http::send(&stack.stack.bff_url, &req).await
}

fn raw_error(res: &raw_http::RawResponse, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    assert_eq!(res.json()["error"], code, "{}", res.text());
    assert!(
        res.set_cookies().iter().all(|c| !c.starts_with(&format!("{SESSION_COOKIE}="))),
        "no session cookie set or removed: {:?}",
        res.set_cookies()
    );
}

#[tokio::test]
async fn a_truncated_session_cookie_is_refused_and_the_real_session_survives() {
    let stack = stack().await;
    let browser = stack.login().await;
    let value = browser.session_cookie().unwrap();
    assert_eq!(value.len(), 87, "44 characters of signature and 43 of id");
    for truncated in [
        &value[..value.len() - 1],
        &value[1..],
        &value[..value.len() / 2],
        &value[..44],
        &value[44..],
        &value[..value.len() - 43 + 42],
    ] {
        let page = user_with_cookie_header(&stack, &format!("{SESSION_COOKIE}={truncated}")).await;
        assert_error(&page, 401, "unauthenticated");
        assert_session_cookie_untouched(&page);
    }
    stack.assert_session_alive(&browser).await;
    assert_eq!(stack.session_count(), 1, "no session created or lost");
}

#[tokio::test]
async fn an_oversized_session_cookie_is_refused_without_a_500_and_the_real_session_survives() {
    let stack = stack().await;
    let browser = stack.login().await;
    let real = browser.session_cookie().unwrap();
    for size in [8 * 1024, 9 * 1024, 16 * 1024, 30 * 1024] {
        // The real value padded to `size`: a prefix that passes the signature check would not help.
        let big = format!("{real}{}", "A".repeat(size - real.len()));
        let page = user_with_cookie_header(&stack, &format!("{SESSION_COOKIE}={big}")).await;
        assert_error(&page, 401, "unauthenticated");
        assert_session_cookie_untouched(&page);
    }
    // An oversized neighbour cookie does not disturb the real session.
    let page =
        user_with_cookie_header(&stack, &format!("{SESSION_COOKIE}={real}; junk={}", "j".repeat(9000))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Past any sane header size the server refuses the request itself, still without a 500.
    let huge = format!("Cookie: {SESSION_COOKIE}={}\r\n", "A".repeat(200 * 1024));
    let res = raw_user(&stack, huge.as_bytes()).await;
    assert!(matches!(res.status, 400 | 401 | 431), "huge cookie answered {}", res.status);
    stack.assert_session_alive(&browser).await;
    assert_eq!(stack.session_count(), 1);
}

#[tokio::test]
async fn two_session_cookies_are_refused_even_beside_the_real_one_and_the_real_session_survives() {
    let stack = stack().await;
    let browser = stack.login().await;
    let real = browser.session_cookie().unwrap();
    let forged = stack.signed_cookie(&cloakroom::crypto::random_token(32));
    for header in [
        format!("{SESSION_COOKIE}={real}; {SESSION_COOKIE}={forged}"),
        format!("{SESSION_COOKIE}={forged}; {SESSION_COOKIE}={real}"),
        format!("{SESSION_COOKIE}={real}; {SESSION_COOKIE}={real}"),
        format!("{SESSION_COOKIE}={real};{SESSION_COOKIE}="),
        format!("{SESSION_COOKIE}={real}; {SESSION_COOKIE} ={forged}"),
    ] {
        let page = user_with_cookie_header(&stack, &header).await;
        assert_error(&page, 400, "invalid_request");
        assert_session_cookie_untouched(&page);
    }
    // Two Cookie header lines (HTTP/1.1 allows no such thing, proxies may produce it).
    let res = raw_user(
        &stack,
        format!("Cookie: {SESSION_COOKIE}={real}\r\nCookie: {SESSION_COOKIE}={forged}\r\n").as_bytes(),
    )
    .await;
    raw_error(&res, 400, "invalid_request");
    stack.assert_session_alive(&browser).await;
    assert_eq!(stack.session_count(), 1);
}

#[tokio::test]
async fn a_duplicate_hidden_in_a_header_with_non_ascii_bytes_is_still_refused() {
    let stack = stack().await;
    let browser = stack.login().await;
    let real = browser.session_cookie().unwrap();
    let forged = stack.signed_cookie(&cloakroom::crypto::random_token(32));
    // `é` makes the header value non-visible-ASCII, but it is valid UTF-8, which is all the
    // cookie parser behind the guard asks for.
    let header = format!("Cookie: {SESSION_COOKIE}={forged}; {SESSION_COOKIE}={real}; theme=caf\u{e9}\r\n");
    let res = raw_user(&stack, header.as_bytes()).await;
    raw_error(&res, 400, "invalid_request");
    stack.assert_session_alive(&browser).await;
}

#[tokio::test]
async fn a_non_ascii_session_cookie_is_refused_without_a_500_and_the_real_session_survives() {
    let stack = stack().await;
    let browser = stack.login().await;
    let real = browser.session_cookie().unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        format!("{real}\u{e9}").into_bytes(),
        format!("\u{1F36A}{real}").into_bytes(),
        "\u{442}\u{43e}\u{43a}\u{435}\u{43d}".as_bytes().to_vec(),
        format!("{}%C3%A9", &real[..86]).into_bytes(),
    ];
    let mut latin1 = real.as_bytes().to_vec();
    latin1.push(0xff);
    cases.push(latin1);
    for value in cases {
        let mut line = format!("Cookie: {SESSION_COOKIE}=").into_bytes();
        line.extend_from_slice(&value);
        line.extend_from_slice(b"\r\n");
        let res = raw_user(&stack, &line).await;
        assert!(
            matches!(res.status, 400 | 401),
            "{:?} answered {}",
            String::from_utf8_lossy(&value),
            res.status
        );
        if res.status == 401 {
            raw_error(&res, 401, "unauthenticated");
        }
        assert!(res.set_cookies().iter().all(|c| !c.starts_with(&format!("{SESSION_COOKIE}="))));
    }
    stack.assert_session_alive(&browser).await;
    assert_eq!(stack.session_count(), 1);
}

#[tokio::test]
async fn a_session_id_in_the_query_string_is_ignored() {
    let stack = stack().await;
    let victim = stack.login().await;
    let value = victim.session_cookie().unwrap();
    let id = &value[44..];
    let attacker = Browser::new();
    for path in ["/bff/user", "/api/whoami", "/echo/x"] {
        for name in [SESSION_COOKIE, "session", "session_id", "sid", "id", "cookie"] {
            for v in [value.as_str(), id] {
                let url = format!(
                    "{}?{}={}",
                    stack.bff(path),
                    common::oidc_flow::urlencode(name),
                    common::oidc_flow::urlencode(v)
                );
                let page = attacker.send(attacker.request(Method::GET, &url).header("X-CSRF", "1")).await;
                assert_error(&page, 401, "unauthenticated");
                assert_session_cookie_untouched(&page);
            }
        }
    }
    assert_eq!(stack.echo.hits(), 0, "nothing reached the upstream");
    assert!(attacker.session_cookie().is_none());
    stack.assert_session_alive(&victim).await;
}

#[tokio::test]
async fn a_session_id_in_the_authorization_header_is_ignored() {
    use base64::Engine;
    let stack = stack().await;
    let victim = stack.login().await;
    let value = victim.session_cookie().unwrap();
    let id = value[44..].to_string();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SESSION_COOKIE}:{value}"));
    let attacker = Browser::new();
    for auth in [
        format!("Bearer {value}"),
        format!("Bearer {id}"),
        value.clone(),
        format!("Session {value}"),
        format!("Basic {basic}"),
    ] {
        for path in ["/bff/user", "/api/whoami"] {
            let req = attacker
                .request(Method::GET, &stack.bff(path))
                .header("X-CSRF", "1")
                .header("Authorization", &auth);
            let page = attacker.send(req).await;
            assert_error(&page, 401, "unauthenticated");
            assert_session_cookie_untouched(&page);
        }
        let req = attacker
            .request(Method::GET, &stack.bff("/bff/user"))
            .header("X-CSRF", "1")
            .header("X-Session-Id", &value)
            .header("Cookie", format!("session={value}"));
        assert_error(&attacker.send(req).await, 401, "unauthenticated");
    }
    stack.assert_session_alive(&victim).await;
}

#[tokio::test]
async fn a_session_cookie_under_a_percent_encoded_name_is_never_accepted() {
    // A sibling subdomain cannot set a `__Host-` cookie, but it can set `%5F_Host-cloakroom`,
    // whose name only becomes `__Host-cloakroom` after percent-decoding (cookie tossing past
    // the prefix). The session cookie counts only under its exact name.
    let stack = stack().await;
    let attacker = stack.login().await;
    let attackers_session = attacker.session_cookie().unwrap();
    for name in ["%5F_Host-cloakroom", "__Host-cloakroo%6D", "%5F%5FHost%2Dcloakroom", "%5f_Host-cloakroom"] {
        let page = user_with_cookie_header(&stack, &format!("{name}={attackers_session}")).await;
        assert_error(&page, 401, "unauthenticated");
        assert_session_cookie_untouched(&page);
    }
    // Beside a real session cookie, the tossed one is a duplicate, not a silent override.
    let victim = stack.login().await;
    let victims = victim.session_cookie().unwrap();
    for header in [
        format!("%5F_Host-cloakroom={attackers_session}; {SESSION_COOKIE}={victims}"),
        format!("{SESSION_COOKIE}={victims}; __Host-cloakroo%6D={attackers_session}"),
    ] {
        let page = user_with_cookie_header(&stack, &header).await;
        assert_error(&page, 400, "invalid_request");
    }
    stack.assert_session_alive(&victim).await;
    stack.assert_session_alive(&attacker).await;
}

#[tokio::test]
async fn malformed_ids_are_refused_before_any_store_lookup_even_under_a_valid_signature() {
    // The BFF's Redis is stopped: any store lookup would answer 503 `store_unavailable`, so a
    // 401 proves the id was refused by its format alone.
    let redis = RedisServer::start();
    let stack = AttackStack::start(|c| c.set("bff.redis_url", json!(redis.url()))).await;
    redis.stop();
    let malformed = [
        "*".to_string(),
        "session:*".to_string(),
        "a\r\nSet-Cookie: x=1".to_string(),
        "A".repeat(10 * 1024),
        "A".repeat(42),
        "A".repeat(44),
        "../../../../etc/passwd".to_string(),
        format!("{}*", "A".repeat(42)),
        format!("{} ", "A".repeat(42)),
    ];
    for id in &malformed {
        // Unsigned too, where a header can carry it at all.
        let raw = Some(id.clone()).filter(|i| !i.chars().any(char::is_control));
        for cookie in std::iter::once(stack.signed_cookie(id)).chain(raw) {
            let page = user_with_cookie_header(&stack, &format!("{SESSION_COOKIE}={cookie}")).await;
            assert_error(&page, 401, "unauthenticated");
            assert_session_cookie_untouched(&page);
        }
    }
    // The control: a well-formed (signed, unknown) id does reach the store.
    let page = user_with_cookie_header(
        &stack,
        &format!("{SESSION_COOKIE}={}", stack.signed_cookie(&"A".repeat(43))),
    )
    .await;
    assert_error(&page, 503, "store_unavailable");
}

#[tokio::test]
async fn a_forged_id_is_never_adopted_by_a_later_login() {
    let stack = stack().await;
    let forged_id = cloakroom::crypto::random_token(32);
    let browser = Browser::new();
    browser.set_cookie(SESSION_COOKIE, &stack.signed_cookie(&forged_id));
    assert_error(&stack.api(&browser, Method::GET, "/bff/user", None).await, 401, "unauthenticated");
    let page = common::oidc_flow::bff_login(&browser, &stack.stack, common::USER, "/").await;
    assert_eq!(page.status, 302, "{}", page.body);
    let fresh = browser.session_cookie().unwrap();
    assert!(!fresh.contains(&forged_id), "the login issued a new id");
    stack.assert_session_alive(&browser).await;
    let hashed = stack.keys().hash_id(&forged_id);
    assert!(stack.bff_keys().iter().all(|k| !k.contains(&hashed)), "nothing stored under the forged id");
    assert_eq!(stack.session_count(), 1);
    // The forged id is still worth nothing.
    let stale = Browser::new();
    stale.set_cookie(SESSION_COOKIE, &stack.signed_cookie(&forged_id));
    assert_error(&stack.api(&stale, Method::GET, "/bff/user", None).await, 401, "unauthenticated");
}

#[tokio::test]
async fn session_ids_are_256_random_bits_without_duplicates_or_fixed_positions_in_10k_samples() {
    use actix_session::storage::SessionStore;
    use base64::Engine;
    // Ids come from the session store's `save`, the one place the BFF mints them (a login per
    // sample would take hours). A real login's cookie shows the same shape.
    let stack = stack().await;
    let browser = stack.login().await;
    let cookie_id = browser.session_cookie().unwrap()[44..].to_string();
    assert!(cloakroom::bff::session::is_well_formed_id(&cookie_id), "{cookie_id}");

    let store =
        cloakroom::store::Store::connect(&cloakroom::config::StoreConfig::default(), "bff").await.unwrap();
    let sessions = cloakroom::bff::session::BffSessionStore::new(store, stack.keys());
    let ttl = actix_web::cookie::time::Duration::seconds(60);
    const N: usize = 10_000;
    let mut ids = HashSet::with_capacity(N);
    let mut ones = [0u32; 256];
    for _ in 0..N {
        let key = sessions.save(Default::default(), &ttl).await.expect("save");
        let id: String = key.as_ref().to_string();
        assert!(cloakroom::bff::session::is_well_formed_id(&id), "{id}");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&id).expect("base64url");
        assert_eq!(bytes.len(), 32, "256 bits");
        for (i, b) in bytes.iter().enumerate() {
            for bit in 0..8 {
                ones[i * 8 + bit] += u32::from((b >> bit) & 1);
            }
        }
        assert!(ids.insert(id), "duplicate session id");
    }
    // Each bit is set in about half the samples: binomial(10k, 1/2) has σ = 50; 6σ bounds make
    // a false alarm over 256 bits less likely than one in a million runs, while a constant or
    // counter-like position lands at 0, 10 000 or far off.
    for (i, n) in ones.iter().enumerate() {
        assert!((4700..=5300).contains(n), "bit {i} was set in {n} of {N} ids");
    }
    assert!(!ids.contains(&cookie_id));
}

#[tokio::test]
async fn logging_out_a_live_session_expires_the_cookie_with_every_host_attribute() {
    let stack = stack().await;
    let browser = stack.login().await;
    let page = stack.api(&browser, Method::POST, "/bff/logout", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let removal = page.session_set_cookie().expect("cookie expired");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=0"] {
        assert!(removal.contains(attr), "{removal} lacks {attr}");
    }
    assert!(!removal.to_ascii_lowercase().contains("domain="), "{removal}");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert!(browser.session_cookie().is_none());
    assert_eq!(stack.session_count(), 0);
}

#[tokio::test]
async fn every_response_that_sets_a_cookie_or_carries_user_data_is_no_store() {
    let stack = stack().await;
    let browser = stack.login().await;
    stack.api(&browser, Method::GET, "/bff/user", None).await;
    stack.api(&browser, Method::POST, "/api/notes", Some(json!({"text": "private"}))).await;
    stack.api(&browser, Method::GET, "/api/notes", None).await;
    stack.api(&browser, Method::GET, "/echo/x", None).await;
    browser.get(&stack.bff("/")).await;
    stack.api(&browser, Method::POST, "/bff/logout", None).await;
    stack.api(&browser, Method::GET, "/bff/user", None).await;
    let history = browser.history.lock().unwrap().clone();
    let mut checked = 0;
    for page in &history {
        let user_data = page.url.starts_with(&stack.bff("/bff/"))
            || page.url.starts_with(&stack.bff("/api/"))
            || page.url.starts_with(&stack.bff("/echo/"))
            || page.url == stack.bff("/");
        if user_data || !page.set_cookies().is_empty() {
            checked += 1;
            assert_eq!(
                page.header("cache-control").as_deref(),
                Some("no-store"),
                "{} ({}) sets {:?}",
                page.url,
                page.status,
                page.set_cookies()
            );
        }
    }
    assert!(checked >= 10, "only {checked} responses checked");
}

#[tokio::test]
async fn a_session_never_outlives_its_refresh_token() {
    let stack = AttackStack::start(|c| c.set("auth_server.refresh_token_ttl_secs", json!(60))).await;
    let browser = stack.login().await;
    let now = cloakroom::clock::now();
    let user = stack.api(&browser, Method::GET, "/bff/user", None).await.json();
    let expires_at = user["session"]["expires_at"].as_i64().unwrap();
    assert!(expires_at <= now + 61, "the session ends at {expires_at}, the refresh token at {}", now + 60);
    assert!(user["session"]["idle_expires_at"].as_i64().unwrap() <= expires_at);
}
