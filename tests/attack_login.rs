//! Attack suite, login surface: `/bff/login`, `/bff/callback` and logout targets, through HTTP
//! against the real stack. The ID-token attacks need ID tokens no real provider would issue:
//! those tests put a tampering tap in front of the real auth server (`common::provider_tap`)
//! that replaces only the ID token of the token response, and their names end in
//! `_tampering_tap`.
//!
//! Index — security checklist lines and issue 6 cases:
//!
//! | case | test |
//! |---|---|
//! | #15 code + PKCE S256, confidential client, state, nonce, `__Host-` login cookie | [`the_authorization_request_uses_s256_pkce_fresh_state_and_nonce_and_a_host_login_cookie`] |
//! | #15 another browser's state | `bff_flow::another_browsers_callback_is_refused`, [`another_browsers_state_fails_even_beside_a_login_of_the_victims_own`] |
//! | #15 state bound to a `__Host-` cookie: forged binding | [`a_login_cookie_with_the_right_name_but_a_forged_binding_is_refused`] |
//! | #15 state bound to a `__Host-` cookie: tossed under an encoded name | [`a_login_cookie_under_a_percent_encoded_name_binds_no_callback`] |
//! | #15 replayed callback | `bff_flow::a_replayed_callback_fails_and_creates_no_session` |
//! | #15 code injected into another login (PKCE) | [`a_code_from_another_login_injected_into_the_callback_is_refused`] |
//! | #15 mix-up: response from another issuer (RFC 9207) | [`an_authorization_response_naming_another_issuer_or_none_is_refused`] |
//! | #15 nonce / ID token: control | [`an_untouched_id_token_passes_through_the_tap_so_each_refusal_is_the_mutations_tampering_tap`] |
//! | #15 ID token wrong nonce | [`an_id_token_with_a_wrong_or_missing_nonce_is_refused_tampering_tap`] |
//! | #15 ID token wrong aud | [`an_id_token_for_another_audience_is_refused_tampering_tap`] |
//! | #15 ID token wrong iss | [`an_id_token_from_another_issuer_is_refused_tampering_tap`] |
//! | #15 ID token expired / issued in the future | [`an_expired_id_token_is_refused_tampering_tap`] |
//! | #15 ID token unsigned, foreign key, HS256, swapped claims, zero signature | [`an_unsigned_or_foreign_signed_id_token_is_refused_tampering_tap`] |
//! | #15 access token instead of an ID token | [`an_access_token_in_place_of_the_id_token_is_refused_tampering_tap`] |
//! | #15 no ID token | [`a_token_response_without_an_id_token_is_refused_tampering_tap`] |
//! | missing / invalid code | `bff_flow::provider_errors_and_missing_state_are_400_pages`, [`a_live_state_with_a_missing_empty_or_invalid_code_is_refused_and_spent`] |
//! | provider `error=` | `bff_flow::provider_errors_and_missing_state_are_400_pages`, [`a_provider_error_for_a_live_attempt_is_a_400_page_that_spends_it`] |
//! | #16 `returnTo`: `//`, `/\`, `/%2f%2f`, `/%5c`, tab, `/%09/x`, CR/LF, `javascript:`, absolute | `bff_edges::login_refuses_return_targets_that_are_not_local_paths` |
//! | #16 `returnTo`: other spellings, schemes, look-alike hosts, repeats | [`return_targets_that_leave_the_origin_are_refused_in_every_other_spelling`] |
//! | #16 what is accepted lands on our own origin | [`accepted_return_targets_always_land_on_the_bffs_own_origin`] |
//! | #16 non-ASCII targets: refused or percent-encoded, never a 500 | [`a_non_ascii_return_target_never_breaks_the_callback`] |
//! | login flood from one address: 429 `too_many_requests`, store bounded | [`a_flood_of_login_starts_from_one_address_gets_429_and_stores_no_more_attempts`] |
//! | pending attempts expire after `bff.login_attempt_ttl_secs` | [`a_login_attempt_and_its_cookie_live_bff_login_attempt_ttl_secs`] |
//! | login cookies per browser capped (no 431), oldest attempt fails cleanly | [`six_parallel_tabs_keep_the_newest_five_logins_and_the_oldest_callback_fails_cleanly`] |
//! | #16 post-logout target | [`logout_ignores_any_redirect_target_the_request_brings`], `auth_server::end_session_redirects_only_to_registered_uris_and_ends_the_login` |
//! | issue 16: another browser presenting a victim's `state` leaves the attempt to its owner | [`another_browser_presenting_a_victims_state_leaves_the_victims_login_intact`] |

mod common;

use common::attack::{AttackStack, SESSION_COOKIE, assert_error, new_session_cookie};
use common::oidc_flow::{query_param, submit_login, urlencode};
use common::provider_tap::Tamper;
use common::{Browser, CLIENT_ID, Page, USER, forge};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

const LOGIN_COOKIE_PREFIX: &str = "__Host-cloakroom-login-";

/// `/bff/login?returnTo=…` in `browser`; returns the redirect to the provider.
async fn start_login(stack: &AttackStack, browser: &Browser, return_to: &str) -> Page {
    let page = browser.get(&stack.bff(&format!("/bff/login?returnTo={}", urlencode(return_to)))).await;
    assert_eq!(page.status, 302, "{}", page.body);
    page
}

/// From the redirect to the provider to the callback URL (code, state, iss) without calling it:
/// through the login form, or straight back when the provider still knows the browser.
async fn provider_round_trip(stack: &AttackStack, browser: &Browser, start: &Page) -> String {
    let callback = stack.bff("/bff/callback");
    let page = browser.get(&start.location().expect("to the provider")).await;
    if page.location().is_some_and(|l| l.starts_with(&callback)) {
        return page.location().unwrap();
    }
    let page = browser.follow(page).await;
    let after = submit_login(browser, &page, USER).await;
    browser.follow_until(after, &callback).await
}

/// An attacker's own login, run through the provider up to the callback URL, which is not
/// called: the attacker's browser (still holding its login cookie) and that URL.
async fn pending_callback(stack: &AttackStack) -> (Browser, String) {
    let attacker = Browser::new();
    let start = start_login(stack, &attacker, "/").await;
    let callback = provider_round_trip(stack, &attacker, &start).await;
    (attacker, callback)
}

/// The `state` of the authorization request that `start` redirects to.
fn state_of(start: &Page) -> String {
    query_param(&start.location().expect("to the provider"), "state").expect("a state")
}

/// The name and value of the login cookie in `browser`.
fn login_cookie(browser: &Browser) -> (String, String) {
    let name = browser.cookie_names().into_iter().find(|n| n.starts_with(LOGIN_COOKIE_PREFIX)).unwrap();
    let value = browser.cookie(&name).unwrap();
    (name, value)
}

/// Asserts a refused callback: 400 HTML page, no session cookie, no session stored.
fn assert_refused_callback(stack: &AttackStack, page: &Page) {
    assert_eq!(page.status, 400, "{}: {}", page.url, page.body);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"), "an HTML page");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert!(new_session_cookie(page).is_none(), "no session cookie: {:?}", page.set_cookies());
    assert_eq!(stack.session_count(), 0, "no session stored");
}

/// Callback URL with `state` and `iss` of the stack's provider, plus `extra`.
fn callback_with(stack: &AttackStack, state: &str, extra: &str) -> String {
    let iss = stack.tap.as_ref().map(|t| t.url.clone()).unwrap_or_else(|| stack.stack.auth_url.clone());
    stack.bff(&format!("/bff/callback?state={}&iss={}{extra}", urlencode(state), urlencode(&iss)))
}

#[tokio::test]
async fn the_authorization_request_uses_s256_pkce_fresh_state_and_nonce_and_a_host_login_cookie() {
    use base64::Engine;
    use sha2::Digest;
    let stack = AttackStack::start_with_tap(|c| c).await;
    let browser = Browser::new();
    let first = start_login(&stack, &browser, "/").await;
    let second = start_login(&stack, &browser, "/").await;
    let (a, b) = (first.location().unwrap(), second.location().unwrap());
    assert!(a.starts_with(&format!("{}/authorize?", stack.tap().url)), "{a}");
    for (k, v) in [
        ("response_type", "code".to_string()),
        ("client_id", CLIENT_ID.to_string()),
        ("redirect_uri", stack.bff("/bff/callback")),
        ("code_challenge_method", "S256".to_string()),
    ] {
        assert_eq!(query_param(&a, k).as_deref(), Some(v.as_str()), "{k}");
    }
    for k in ["state", "nonce", "code_challenge"] {
        let (x, y) = (query_param(&a, k).unwrap(), query_param(&b, k).unwrap());
        assert!(x.len() >= 43, "{k} of {} characters", x.len());
        assert_ne!(x, y, "{k} is fresh per attempt");
    }
    for page in [&first, &second] {
        assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
        let cookie = page
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with(LOGIN_COOKIE_PREFIX))
            .expect("login cookie");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    }
    // The code is redeemed by the confidential client with the verifier of that challenge.
    let callback = provider_round_trip(&stack, &browser, &second).await;
    assert_eq!(browser.get(&callback).await.status, 302);
    let verifiers = stack.tap().secrets_named("code_verifier");
    assert_eq!(verifiers.len(), 1, "one code redemption");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifiers[0].as_bytes()));
    assert_eq!(Some(challenge), query_param(&b, "code_challenge"));
    assert!(stack.tap().secrets_named("client_secret").is_empty(), "client_secret_basic, not in the body");
}

#[tokio::test]
async fn return_targets_that_leave_the_origin_are_refused_in_every_other_spelling() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    let bff = stack.stack.bff_url.clone();
    let host = bff.trim_start_matches("http://").to_string();
    let refused = [
        "HTTPS://evil.example/".to_string(),
        "http:evil.example".into(),
        "http:/evil.example".into(),
        "http:\\\\evil.example".into(),
        "///evil.example".into(),
        "////evil.example".into(),
        "/\\/evil.example".into(),
        "\\\\evil.example".into(),
        "/%2F%2Fevil.example".into(),
        "/%2f/evil.example".into(),
        "%2F%2Fevil.example".into(),
        "/%5C%5Cevil.example".into(),
        "/%5c/evil.example".into(),
        " //evil.example".into(),
        "\t//evil.example".into(),
        "/%0a/evil.example".into(),
        "/%0d%0aSet-Cookie:%20x=1".into(),
        "/x\nLocation: //evil.example".into(),
        "/x%00".into(),
        "JaVaScRiPt:alert(1)".into(),
        "java\nscript:alert(1)".into(),
        "data:text/html,<script>alert(1)</script>".into(),
        "vbscript:msgbox(1)".into(),
        format!("{bff}/app/"),
        format!("{bff}.evil.example/"),
        format!("http://{host}@evil.example/"),
        format!("//{host}.evil.example/"),
        "https://evil.example\\@app.example".into(),
        format!("/{}", "a".repeat(4096)),
    ];
    for bad in &refused {
        let page = browser.get(&stack.bff(&format!("/bff/login?returnTo={}", urlencode(bad)))).await;
        assert_error(&page, 400, "invalid_request");
        assert!(page.set_cookies().is_empty(), "{bad:?}: no login cookie for a refused login");
    }
    // Two targets: which one would win is nobody's business.
    let page = browser.get(&stack.bff("/bff/login?returnTo=/a&returnTo=%2F%2Fevil.example")).await;
    assert_error(&page, 400, "invalid_request");
    assert!(stack.bff_keys().iter().all(|k| !k.starts_with("login:")), "no login attempt stored");
}

#[tokio::test]
async fn accepted_return_targets_always_land_on_the_bffs_own_origin() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    let origin = url::Url::parse(&stack.stack.bff_url).unwrap().origin();
    for target in [
        "/",
        "/app/",
        "/a%20b?x=1",
        "/@evil.example",
        "/.//evil.example",
        "/a/../..//evil.example",
        "/?next=https://evil.example",
        "/#//evil.example",
        "/%252f%252fevil.example",
    ] {
        let start = start_login(&stack, &browser, target).await;
        let callback = provider_round_trip(&stack, &browser, &start).await;
        let page = browser.get(&callback).await;
        assert_eq!(page.status, 302, "{target}: {}", page.body);
        assert_eq!(page.header("location").as_deref(), Some(target));
        let landed = url::Url::parse(&page.location().unwrap()).unwrap();
        assert_eq!(landed.origin(), origin, "{target} left the origin: {landed}");
    }
}

#[tokio::test]
async fn another_browsers_state_fails_even_beside_a_login_of_the_victims_own() {
    let stack = AttackStack::start(|c| c).await;
    let (_, attackers_callback) = pending_callback(&stack).await;
    let victim = Browser::new();
    let victims_start = start_login(&stack, &victim, "/mine").await;
    let page = victim.get(&attackers_callback).await;
    assert_refused_callback(&stack, &page);
    // The victim's own login is untouched by the attempt.
    let victims_callback = provider_round_trip(&stack, &victim, &victims_start).await;
    let page = victim.get(&victims_callback).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.header("location").as_deref(), Some("/mine"));
    assert_eq!(stack.session_count(), 1);
}

#[tokio::test]
async fn a_login_cookie_with_the_right_name_but_a_forged_binding_is_refused() {
    let stack = AttackStack::start(|c| c).await;
    let (attacker, callback) = pending_callback(&stack).await;
    let (name, value) = login_cookie(&attacker);
    let victim = Browser::new();
    let (ts, _) = value.split_once('.').unwrap();
    victim.set_cookie(&name, &format!("{ts}.{}", cloakroom::crypto::random_token(32)));
    let page = victim.get(&callback).await;
    assert_refused_callback(&stack, &page);
}

#[tokio::test]
async fn a_login_cookie_under_a_percent_encoded_name_binds_no_callback() {
    // A sibling domain cannot set `__Host-cloakroom-login-…`, but it can set
    // `%5F_Host-cloakroom-login-…`, which reads the same once percent-decoded: tossing the
    // attacker's own binding into the victim's browser must not complete the attacker's login
    // there (login CSRF).
    let stack = AttackStack::start(|c| c).await;
    let (attacker, callback) = pending_callback(&stack).await;
    let (name, value) = login_cookie(&attacker);
    let victim = Browser::new();
    victim.set_cookie(&format!("%5F{}", &name[1..]), &value);
    let page = victim.get(&callback).await;
    assert_refused_callback(&stack, &page);
    assert!(victim.cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn a_code_from_another_login_injected_into_the_callback_is_refused() {
    let stack = AttackStack::start(|c| c).await;
    let (_, attackers_callback) = pending_callback(&stack).await;
    let stolen_code = query_param(&attackers_callback, "code").unwrap();
    let victim = Browser::new();
    let victims_start = start_login(&stack, &victim, "/").await;
    let victims_state = state_of(&victims_start);
    // The victim's state and login cookie, the attacker's code: the victim's PKCE verifier
    // does not match the code's challenge.
    let page = victim
        .get(&callback_with(&stack, &victims_state, &format!("&code={}", urlencode(&stolen_code))))
        .await;
    assert_refused_callback(&stack, &page);
}

#[tokio::test]
async fn an_authorization_response_naming_another_issuer_or_none_is_refused() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    for replace in [Some("http://evil.example"), Some(""), None] {
        let start = start_login(&stack, &browser, "/").await;
        let callback = provider_round_trip(&stack, &browser, &start).await;
        let mut url = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            if let Some(iss) = replace {
                q.append_pair("iss", iss);
            }
        }
        let page = browser.get(url.as_str()).await;
        assert_refused_callback(&stack, &page);
        // The attempt is spent: the untouched response no longer works either.
        assert_refused_callback(&stack, &browser.get(&callback).await);
    }
}

#[tokio::test]
async fn a_live_state_with_a_missing_empty_or_invalid_code_is_refused_and_spent() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    for extra in ["", "&code=", "&code=not-a-code", "&code=%00%0d%0a"] {
        let start = start_login(&stack, &browser, "/").await;
        let state = state_of(&start);
        let real_callback = provider_round_trip(&stack, &browser, &start).await;
        let page = browser.get(&callback_with(&stack, &state, extra)).await;
        assert_refused_callback(&stack, &page);
        assert!(
            page.set_cookies().iter().any(|c| c.starts_with(LOGIN_COOKIE_PREFIX) && c.contains("Max-Age=0")),
            "the login cookie is cleared"
        );
        assert_refused_callback(&stack, &browser.get(&real_callback).await);
    }
}

#[tokio::test]
async fn a_provider_error_for_a_live_attempt_is_a_400_page_that_spends_it() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    let start = start_login(&stack, &browser, "/").await;
    let state = state_of(&start);
    let real_callback = provider_round_trip(&stack, &browser, &start).await;
    let code = query_param(&real_callback, "code").unwrap();
    // An error next to a valid code: the error wins.
    let page = browser
        .get(&callback_with(
            &stack,
            &state,
            &format!("&error=access_denied&error_description=%3Cscript%3E&code={code}"),
        ))
        .await;
    assert_refused_callback(&stack, &page);
    assert!(!page.body.contains("<script>"), "the provider's text is not echoed as HTML");
    assert_refused_callback(&stack, &browser.get(&real_callback).await);
}

#[tokio::test]
async fn logout_ignores_any_redirect_target_the_request_brings() {
    let stack = AttackStack::start(|c| c).await;
    let expected_target = stack.bff("/");
    let browser = stack.login().await;
    let url = stack
        .bff("/bff/logout?returnTo=%2F%2Fevil.example&post_logout_redirect_uri=https%3A%2F%2Fevil.example");
    let req = browser
        .request(Method::POST, &url)
        .header("X-CSRF", "1")
        .json(&json!({"post_logout_redirect_uri": "https://evil.example", "returnTo": "//evil.example"}));
    let page = browser.send(req).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let logout_url = page.json()["logout_url"].as_str().unwrap().to_string();
    assert!(!logout_url.contains("evil"), "{logout_url}");
    assert_eq!(query_param(&logout_url, "post_logout_redirect_uri"), Some(expected_target.clone()));

    // The form variant.
    let browser = stack.login().await;
    let token = stack.form_token(&browser).await;
    let page = browser
        .post_form(
            &url,
            &[
                ("csrf_token".into(), token),
                ("post_logout_redirect_uri".into(), "https://evil.example".into()),
                ("returnTo".into(), "//evil.example".into()),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.header("location").unwrap();
    assert!(!location.contains("evil"), "{location}");
    assert_eq!(query_param(&location, "post_logout_redirect_uri"), Some(expected_target));
}

// --- ID token attacks through the tampering tap -------------------------------------------

/// Logs in through a stack whose tap passes every ID token through the tamper that `make`
/// builds (it sees the started stack, e.g. for its signing key); returns the callback's answer.
async fn login_through_tap(make: impl FnOnce(&AttackStack) -> Tamper) -> (AttackStack, Page) {
    let stack = AttackStack::start_with_tap(|c| c).await;
    stack.tap().tamper_id_tokens(make(&stack));
    let browser = Browser::new();
    let start = start_login(&stack, &browser, "/app/").await;
    let callback = provider_round_trip(&stack, &browser, &start).await;
    let page = browser.get(&callback).await;
    assert_eq!(stack.tap().token_requests(), 1, "the code was redeemed once");
    (stack, page)
}

/// The genuine ID token's claims changed by `f`, signed again with the auth server's own key
/// under `typ`.
async fn tap_key_signed(
    f: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
    typ: &'static str,
) -> (AttackStack, Page) {
    login_through_tap(|stack| {
        let key = cloakroom::jwt::SigningKey::from_pem(stack.stack.signing_key.to_pem()).unwrap();
        Arc::new(move |token: &str| Some(forge::resign(&key, typ, token, &f)))
    })
    .await
}

#[tokio::test]
async fn an_untouched_id_token_passes_through_the_tap_so_each_refusal_is_the_mutations_tampering_tap() {
    let (stack, page) = tap_key_signed(|_| {}, "JWT").await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(new_session_cookie(&page).is_some());
    assert_eq!(stack.session_count(), 1);
}

#[tokio::test]
async fn an_id_token_with_a_wrong_or_missing_nonce_is_refused_tampering_tap() {
    for mutate in [
        |c: &mut serde_json::Value| c["nonce"] = json!("attacker-nonce"),
        |c: &mut serde_json::Value| {
            c.as_object_mut().unwrap().remove("nonce");
        },
        |c: &mut serde_json::Value| c["nonce"] = json!([c["nonce"].clone()]),
    ] {
        let (stack, page) = tap_key_signed(mutate, "JWT").await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn an_id_token_for_another_audience_is_refused_tampering_tap() {
    for mutate in [
        |c: &mut serde_json::Value| c["aud"] = json!("other-client"),
        |c: &mut serde_json::Value| c["aud"] = json!(["other-client"]),
        |c: &mut serde_json::Value| {
            c["aud"] = json!([CLIENT_ID, "other-client"]);
            c.as_object_mut().unwrap().remove("azp");
        },
        |c: &mut serde_json::Value| c["azp"] = json!("other-client"),
        |c: &mut serde_json::Value| c["aud"] = json!({ "0": CLIENT_ID }),
    ] {
        let (stack, page) = tap_key_signed(mutate, "JWT").await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused_tampering_tap() {
    for mutate in [
        |c: &mut serde_json::Value| c["iss"] = json!("http://evil.example"),
        |c: &mut serde_json::Value| c["iss"] = json!(format!("{}/", c["iss"].as_str().unwrap())),
        |c: &mut serde_json::Value| c["iss"] = json!([c["iss"].clone()]),
        |c: &mut serde_json::Value| {
            c.as_object_mut().unwrap().remove("iss");
        },
    ] {
        let (stack, page) = tap_key_signed(mutate, "JWT").await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn an_expired_id_token_is_refused_tampering_tap() {
    for mutate in [
        |c: &mut serde_json::Value| {
            let now = cloakroom::clock::now();
            c["exp"] = json!(now - 120);
            c["iat"] = json!(now - 420);
        },
        |c: &mut serde_json::Value| c["iat"] = json!(cloakroom::clock::now() + 600),
        |c: &mut serde_json::Value| c["exp"] = json!((cloakroom::clock::now() + 300).to_string()),
        |c: &mut serde_json::Value| {
            c.as_object_mut().unwrap().remove("exp");
        },
    ] {
        let (stack, page) = tap_key_signed(mutate, "JWT").await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn an_unsigned_or_foreign_signed_id_token_is_refused_tampering_tap() {
    let makers: Vec<fn(&AttackStack) -> Tamper> = vec![
        |_| {
            Arc::new(|t: &str| {
                let (mut h, c) = forge::parts(t);
                h["alg"] = json!("none");
                Some(forge::unsigned(&h, &c))
            })
        },
        |_| {
            Arc::new(|t: &str| {
                let (h, c) = forge::parts(t);
                Some(forge::foreign_signed("JWT", h["kid"].as_str().unwrap(), &c))
            })
        },
        |stack| {
            // HS256 keyed with the published public key (the algorithm-confusion attack).
            let jwk = serde_json::to_vec(stack.stack.signing_key.public_jwk()).unwrap();
            Arc::new(move |t: &str| {
                let (mut h, c) = forge::parts(t);
                h["alg"] = json!("HS256");
                Some(forge::hs256(&h, &c, &jwk))
            })
        },
        |_| {
            // The genuine signature over the genuine claims, claims swapped for another user's.
            Arc::new(|t: &str| {
                let mut c = forge::parts(t).1;
                c["sub"] = json!("someone-else");
                Some(forge::with_claims(t, &c))
            })
        },
        |_| Arc::new(|t: &str| Some(forge::with_signature(t, &[0u8; 64]))),
    ];
    for make in makers {
        let (stack, page) = login_through_tap(make).await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn an_access_token_in_place_of_the_id_token_is_refused_tampering_tap() {
    for typ in ["at+jwt", "logout+jwt"] {
        let (stack, page) = tap_key_signed(|_| {}, typ).await;
        assert_refused_callback(&stack, &page);
    }
}

#[tokio::test]
async fn a_token_response_without_an_id_token_is_refused_tampering_tap() {
    let (stack, page) = login_through_tap(|_| Arc::new(|_| None)).await;
    assert_refused_callback(&stack, &page);
}

#[tokio::test]
async fn a_non_ascii_return_target_never_breaks_the_callback() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    let origin = url::Url::parse(&stack.stack.bff_url).unwrap().origin();
    for target in
        ["/caf\u{e9}", "/\u{ff0f}\u{ff0f}evil.example", "/\u{2215}\u{2215}evil.example", "/\u{202e}x"]
    {
        let page = browser.get(&stack.bff(&format!("/bff/login?returnTo={}", urlencode(target)))).await;
        if page.status == 400 {
            assert_error(&page, 400, "invalid_request");
            continue;
        }
        assert_eq!(page.status, 302, "{target}: {}", page.body);
        let callback = provider_round_trip(&stack, &browser, &page).await;
        let page = browser.get(&callback).await;
        assert_eq!(page.status, 302, "{target:?}: {}", page.body);
        assert!(page.headers["location"].to_str().is_ok(), "{target:?}: a Location of visible ASCII only");
        let landed = url::Url::parse(&page.location().unwrap()).unwrap();
        assert_eq!(landed.origin(), origin, "{target:?} left the origin: {landed}");
    }
}

#[tokio::test]
async fn a_flood_of_login_starts_from_one_address_gets_429_and_stores_no_more_attempts() {
    let limit = 5;
    let stack = AttackStack::start(|c| {
        c.set("bff.login_rate_limit_per_ip", json!(limit)).set("bff.login_rate_limit_window_secs", json!(60))
    })
    .await;

    // Fresh browsers, as a flood would come: no cookie links the requests, only the address.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let page = Browser::new().get(&stack.bff("/bff/login?returnTo=/")).await;
        if page.status == 429 {
            assert_error(&page, 429, "too_many_requests");
            let retry: u64 = page.header("retry-after").expect("Retry-After").parse().expect("seconds");
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            assert!(page.set_cookies().is_empty(), "a refused start sets no cookie");
        }
        statuses.push(page.status.as_u16());
    }

    assert_eq!(statuses[..limit], [302; 5], "{statuses:?}");
    assert!(statuses[limit..].iter().all(|s| *s == 429), "{statuses:?}");
    let attempts = stack.bff_keys().iter().filter(|k| k.starts_with("login:")).count();
    assert_eq!(attempts, limit, "one stored attempt per admitted start");
}

#[tokio::test]
async fn a_login_attempt_and_its_cookie_live_bff_login_attempt_ttl_secs() {
    let stack = AttackStack::start(|c| c.set("bff.login_attempt_ttl_secs", json!(45))).await;
    let browser = Browser::new();

    let start = start_login(&stack, &browser, "/").await;

    let cookie = start.set_cookies().into_iter().find(|c| c.starts_with(LOGIN_COOKIE_PREFIX)).unwrap();
    assert!(cookie.contains("Max-Age=45"), "{cookie}");
    let key = stack.bff_keys().into_iter().find(|k| k.starts_with("login:")).expect("attempt stored");
    let ttl = stack.bff_key_ttl(&key).expect("the attempt expires");
    assert!((1..=45).contains(&ttl), "attempt TTL {ttl}");
}

#[tokio::test]
async fn six_parallel_tabs_keep_the_newest_five_logins_and_the_oldest_callback_fails_cleanly() {
    let stack = AttackStack::start(|c| c).await;
    let browser = Browser::new();
    let mut starts = Vec::new();
    for tab in 1..=6 {
        starts.push(start_login(&stack, &browser, &format!("/tab{tab}")).await);
    }
    let login_cookies =
        browser.cookie_names().into_iter().filter(|n| n.starts_with(LOGIN_COOKIE_PREFIX)).count();
    assert_eq!(login_cookies, 5, "the oldest login cookie was expired");
    let mut callbacks = Vec::new();
    for start in &starts {
        callbacks.push(provider_round_trip(&stack, &browser, start).await);
    }

    let oldest = browser.get(&callbacks[0]).await;
    assert_refused_callback(&stack, &oldest);
    for (tab, callback) in callbacks.iter().enumerate().skip(1) {
        let page = browser.get(callback).await;
        assert_eq!(page.status, 302, "tab {}: {}", tab + 1, page.body);
        assert_eq!(page.header("location"), Some(format!("/tab{}", tab + 1)));
    }
    let left = browser.cookie_names().into_iter().filter(|n| n.starts_with(LOGIN_COOKIE_PREFIX)).count();
    assert_eq!(left, 0, "every finished attempt removed its cookie");
}

#[tokio::test]
async fn another_browser_presenting_a_victims_state_leaves_the_victims_login_intact() {
    // Whoever learns a victim's `state` (a log, a Referer, a shoulder) calls the callback with
    // it from their own browser: with a code, with a provider error, or with nothing else. The
    // attempt is bound to the victim's browser, so none of it may void the victim's login.
    let stack = AttackStack::start(|c| c).await;
    let victim = Browser::new();
    let start = start_login(&stack, &victim, "/mine").await;
    let callback = provider_round_trip(&stack, &victim, &start).await;
    let state = state_of(&start);
    let attacker = Browser::new();
    for url in [
        callback.clone(),
        callback_with(&stack, &state, "&error=access_denied"),
        callback_with(&stack, &state, ""),
    ] {
        let page = attacker.get(&url).await;
        assert_refused_callback(&stack, &page);
    }
    let page = victim.get(&callback).await;
    assert_eq!(page.status, 302, "the victim's login completes: {}", page.body);
    assert_eq!(page.header("location").as_deref(), Some("/mine"));
    assert_eq!(stack.session_count(), 1);
}
