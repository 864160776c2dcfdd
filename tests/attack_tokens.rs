//! Attack suite, token surface: JWT attacks (RFC 8725) on the resource server and the auth
//! server's userinfo endpoint, token-endpoint and revocation abuses (RFC 9700, RFC 6749 §10,
//! RFC 7009) at the auth server, and the BFF's promise that no token, verifier or secret ever
//! reaches the browser or a log line. Tokens are forged with the auth server's genuine key,
//! which the harness shares through `signing_key_file` (`common::forge`); the BFF walks go
//! through a recording tap in front of the real auth server (`common::provider_tap`) that
//! learns every secret of the back channel.
//!
//! Index — security checklist lines and issue 6 cases:
//!
//! | case | test |
//! |---|---|
//! | #3 no token, refresh token or PKCE verifier in any response of login → API → refresh → logout | [`no_token_verifier_code_or_client_secret_ever_reaches_the_browser`], `bff_flow::the_whole_walk_login_proxy_refresh_and_logout_never_shows_a_token_to_the_browser` |
//! | #10 session ids (and tokens) never logged | [`no_log_line_carries_a_session_id_cookie_token_or_verifier`] |
//! | #20 rotation, reuse revokes the family | `auth_server::refresh_rotates_and_a_reused_token_revokes_the_whole_family`, `auth_server::two_concurrent_refreshes_with_one_token_let_at_most_one_win` |
//! | #21 another client's refresh token | `auth_server::another_clients_refresh_token_is_refused_and_not_revoked` |
//! | #21 wider scope on refresh | `auth_server::a_refresh_may_narrow_the_scope_but_a_wider_scope_is_invalid_scope` |
//! | #21 client authentication on every refresh, a refused one consumes nothing | [`a_refresh_without_valid_client_authentication_is_refused_and_consumes_nothing`] |
//! | #21 two authentication methods, mismatched client_id | [`two_client_authentication_methods_or_a_mismatched_client_id_are_refused`] |
//! | #22 unguessable, stored hashed | `auth_server::the_code_flow_issues_typed_tokens_signed_with_a_published_key`, `auth_server::no_code_token_cookie_or_password_is_stored_in_the_clear` |
//! | #22 code expiry | [`an_expired_code_is_refused`] |
//! | #22 refresh idle expiry | [`a_refresh_token_unused_past_its_idle_lifetime_is_refused`] |
//! | #22 refresh absolute expiry | [`a_grant_past_its_absolute_lifetime_is_refused_however_often_it_was_refreshed`] |
//! | #22 revoked on logout | `bff_flow::logout_revokes_the_refresh_token_at_the_provider` |
//! | #23 one refresh at a time across instances | `bff_refresh::fifty_parallel_calls_on_two_instances_after_each_expiry_cause_exactly_one_refresh`, `bff_flow::concurrent_requests_needing_a_refresh_share_one_refresh` |
//! | #24 `none`, HS-with-public-key, foreign key | `resource_server::an_unsigned_alg_none_token_is_refused`, `resource_server::hs256_signed_with_the_public_key_is_refused`, `resource_server::a_token_signed_by_a_foreign_key_under_the_genuine_kid_is_refused` |
//! | #24 `alg` not matching the JWK (RS and userinfo) | [`an_alg_that_does_not_match_the_published_key_is_refused_by_both_servers`] |
//! | #24 all-zero (psychic) and DER signatures, tampered payload | [`zero_der_truncated_and_transplanted_signatures_are_refused_by_both_servers`] |
//! | #24 malformed tokens | [`malformed_tokens_of_every_shape_are_refused_with_401_never_a_500`] |
//! | #25 `iss`, `aud`, `exp`/`nbf`/`iat`, typed claims | `resource_server::wrong_audience_issuer_expiry_and_not_before_are_refused` |
//! | #26 `jku`/`x5u`/`jwk` ignored, `crit` | `resource_server::header_members_that_point_at_an_attacker_key_are_ignored`, `resource_server::a_token_with_a_crit_header_is_refused` |
//! | #26 unknown `kid`: one rate-limited refetch | `resource_server_jwks::unknown_kids_cause_at_most_one_jwks_refetch_per_interval_stand_in` |
//! | #26 `kid` injection | [`a_kid_that_is_a_path_an_url_or_an_injection_is_refused_without_a_500`] |
//! | #27 explicit typing | `resource_server::id_tokens_and_logout_tokens_are_never_accepted_as_access_tokens`, `auth_server::userinfo_refuses_an_id_token_presented_as_an_access_token`, `attack_login::an_access_token_in_place_of_the_id_token_is_refused_tampering_tap` |
//! | #28 logout token mutations → 400, session survives; `jti` replay | `bff_backchannel::every_single_mutation_of_a_valid_token_is_refused_and_the_session_survives`, `bff_backchannel::a_replayed_token_is_refused_and_spares_a_session_created_after_it` |
//! | #29 200, or 400 + no-store; every matching session gone | `bff_backchannel::a_valid_token_with_a_sid_ends_that_session_on_both_instances_and_spares_another_user`, `bff_backchannel::requests_that_are_not_a_form_with_one_logout_token_are_refused` |
//! | #30 `/revoke` needs client authentication, 200 for unknown, another client's token | `auth_server::revoke_without_client_authentication_is_refused_with_401`, `auth_server::revoke_kills_the_refresh_token_and_answers_200_for_unknown_tokens`, `auth_server::another_clients_refresh_token_is_refused_and_not_revoked` |
//! | #30 wrong secret at `/revoke`; wrong hint still revokes; the whole grant goes | [`revocation_with_a_wrong_secret_is_refused_and_a_wrong_hint_still_revokes_the_grant`] |
//! | RFC 9700: code replay | `auth_server::a_replayed_code_is_refused_and_kills_the_refresh_token_it_issued` |
//! | RFC 9700: code redeemed by another client | [`a_code_redeemed_by_another_client_is_refused`] |
//! | RFC 9700: PKCE downgrade at authorize (`plain`, none) | `auth_server::authorization_requests_without_s256_pkce_are_refused` |
//! | RFC 9700: PKCE downgrade at the token endpoint (challenge as verifier, missing, malformed) | [`a_pkce_downgrade_at_the_token_endpoint_is_refused`], `auth_server::a_wrong_verifier_or_redirect_uri_at_the_token_endpoint_is_refused` |
//! | RFC 9700: `redirect_uri` mismatch at the token endpoint | `auth_server::a_wrong_verifier_or_redirect_uri_at_the_token_endpoint_is_refused`, [`a_code_redeemed_without_its_redirect_uri_is_refused`] |
//! | RFC 9700: `redirect_uri` not an exact match at authorize | `auth_server::an_unregistered_redirect_uri_or_client_gets_an_error_page_and_no_redirect`, [`redirect_uris_that_are_not_an_exact_match_get_an_error_page_and_no_redirect`] |
//! | token-type confusion at the token endpoint | [`a_refresh_token_used_as_a_code_or_a_code_as_a_refresh_token_is_refused`] |
//! | RFC 9700 2.1.2 / 2.4: implicit and hybrid flows, password and client-credentials grants | [`implicit_and_hybrid_flows_are_refused_and_no_token_lands_in_a_url`], [`the_password_and_client_credentials_grants_are_unsupported`] |
//! | SSRF: `request_uri` / `jwks_uri`-style URLs in an authorization request are never fetched | [`urls_in_an_authorization_request_are_never_fetched`] |
//! | login CSRF at the provider (CSRF-CS "login forms"): a cross-site sign-in or sign-up | [`a_cross_site_post_to_the_providers_login_or_signup_form_signs_nobody_in`] |
//! | issue 16: cross-site post of the provider's logout confirmation | [`a_cross_site_post_to_the_providers_logout_ends_no_session`] |
//! | issue 16: a used code replayed by another client leaves the owner's grant | [`a_used_code_replayed_by_another_client_is_refused_and_leaves_the_owners_grant_alive`] |
//! | issue 16 sibling: a pending request id used from another browser | [`another_browser_presenting_a_pending_request_id_can_neither_complete_nor_spend_it`] |
//! | issue 16: case-variant accounts, shared lockout, `/authorize` per-address limit, `state`/`nonce` caps, `metrics_listen` | `auth_server::a_name_differing_only_in_case_or_width_is_the_existing_account_at_signup_and_login`, `auth_server::wrong_guesses_under_every_spelling_of_a_name_share_one_lockout_that_no_other_login_clears`, `auth_server::authorization_requests_from_one_address_past_the_limit_get_429_and_store_nothing_more`, `auth_server::an_overlong_state_or_nonce_is_refused_with_invalid_request_and_stores_nothing`, `auth_server::with_metrics_listen_each_program_serves_metrics_there_and_not_on_its_main_listener` |

mod common;

use common::attack::{AttackStack, SESSION_COOKIE, contains_jwt};
use common::oidc_flow::{
    ALL_SCOPES, IssuedCode, OTHER_CLIENT, OTHER_SECRET, authorize_url, code_flow_tokens, obtain_code,
    pkce_pair, query_param, redeem, redirect_uri, refresh, token_request, urlencode, with_other_client,
};
use common::{Browser, CLIENT_ID, Stack, StackConfig, USER, forge};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// --- No secret reaches the browser or a log line --------------------------------------------

/// Login → user → API (write, read) → echo → page → refresh → logout, in one browser; returns
/// it with the session cookie it held.
async fn full_walk(stack: &AttackStack) -> (Browser, String) {
    let browser = stack.login().await;
    let cookie = browser.cookie(SESSION_COOKIE).expect("session cookie");
    assert_eq!(stack.api(&browser, Method::GET, "/bff/user", None).await.status, 200);
    assert_eq!(
        stack.api(&browser, Method::POST, "/api/notes", Some(json!({"text": "walk"}))).await.status,
        201
    );
    assert_eq!(stack.api(&browser, Method::GET, "/api/notes", None).await.status, 200);
    assert_eq!(stack.api(&browser, Method::GET, "/echo/x", None).await.status, 200);
    assert_eq!(browser.get(&stack.bff("/")).await.status, 200);
    // Access tokens live 3 s, refreshed 1 s early: this call refreshes.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(stack.api(&browser, Method::GET, "/api/whoami", None).await.status, 200);
    assert_eq!(stack.api(&browser, Method::POST, "/bff/logout", None).await.status, 200);
    (browser, cookie)
}

async fn walk_stack() -> AttackStack {
    AttackStack::start_with_tap(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(3)).set("bff.refresh_skew_secs", json!(1))
    })
    .await
}

/// Every secret the back channel carried, by name (authorization codes excluded: they travel
/// through the browser by design).
fn back_channel_secrets(stack: &AttackStack) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> =
        stack.tap().secrets().into_iter().filter(|(n, _)| n != "code").collect();
    secrets.push(("client_secret".into(), stack.stack.client_secret()));
    secrets
}

#[tokio::test]
async fn no_token_verifier_code_or_client_secret_ever_reaches_the_browser() {
    let stack = walk_stack().await;
    let (browser, _) = full_walk(&stack).await;
    let secrets = back_channel_secrets(&stack);
    let count = |name: &str| secrets.iter().filter(|(n, _)| n == name).count();
    assert!(count("code_verifier") >= 1, "the tap saw the verifier");
    assert!(count("refresh_token") >= 3, "issued, presented and rotated refresh tokens");
    assert!(count("access_token") >= 2 && count("id_token") >= 2, "{secrets:?}");
    assert!(count("token") >= 1, "the revocation at logout");
    let history = browser.history.lock().unwrap().clone();
    assert!(history.len() >= 10);
    for page in &history {
        let mut text = page.body.clone();
        for (name, value) in page.headers.iter() {
            text.push_str(&format!("\n{name}: {}", String::from_utf8_lossy(value.as_bytes())));
        }
        for (name, secret) in &secrets {
            assert!(!text.contains(secret.as_str()), "the {name} reached the browser from {}", page.url);
        }
        assert!(!contains_jwt(&text), "a JWT reached the browser from {}", page.url);
    }
}

/// Collects every log line of this test binary (a global subscriber, installed once).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .try_init()
            .expect("the only subscriber of this binary");
        buf
    })
    .clone()
}

#[tokio::test]
async fn no_log_line_carries_a_session_id_cookie_token_or_verifier() {
    let logs = captured_logs();
    let stack = walk_stack().await;
    let (_, cookie) = full_walk(&stack).await;
    let mut secrets = back_channel_secrets(&stack);
    secrets.extend(stack.tap().secrets_named("code").into_iter().map(|c| ("code".to_string(), c)));
    secrets.push(("session cookie".into(), cookie.clone()));
    secrets.push(("session id".into(), cookie[44..].to_string()));
    secrets.push(("password".into(), USER.1.to_string()));
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("session created"), "the logs were captured");
    for (name, secret) in &secrets {
        assert!(!text.contains(secret.as_str()), "a {name} was logged");
    }
    assert!(!contains_jwt(&text), "a JWT was logged");
}

// --- JWT attacks on both verifiers (resource server, userinfo) ------------------------------

async fn servers() -> Stack {
    common::apps::start_auth_and_resource_server(StackConfig::new()).await
}

fn now() -> i64 {
    cloakroom::clock::now()
}

fn claims(stack: &Stack) -> Value {
    json!({
        "iss": stack.auth_url, "sub": "forged-user", "aud": stack.rs_url,
        "exp": now() + 300, "iat": now(), "nbf": now(), "jti": cloakroom::crypto::random_token(8),
        "scope": "openid notes", "client_id": CLIENT_ID, "sid": "s",
    })
}

/// Presents `token` to the resource server and to userinfo; both must answer 401
/// `invalid_token` with `WWW-Authenticate: Bearer …`.
async fn assert_refused_by_both(stack: &Stack, token: &str, why: &str) {
    for url in [format!("{}/whoami", stack.rs_url), format!("{}/userinfo", stack.auth_url)] {
        let res = reqwest::Client::new()
            .get(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let www =
            res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(status, 401, "{why} at {url}");
        assert!(www.starts_with("Bearer") && www.contains("invalid_token"), "{why} at {url}: {www}");
    }
}

#[tokio::test]
async fn a_genuine_token_is_accepted_by_both_servers_so_each_refusal_is_the_attacks() {
    let stack = servers().await;
    let token = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    let rs = reqwest::Client::new()
        .get(format!("{}/whoami", stack.rs_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rs.status(), 200);
    // userinfo knows real users only; a real login's token passes there.
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let at = tokens["access_token"].as_str().unwrap();
    let info = reqwest::Client::new()
        .get(format!("{}/userinfo", stack.auth_url))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
}

#[tokio::test]
async fn an_alg_that_does_not_match_the_published_key_is_refused_by_both_servers() {
    let stack = servers().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let genuine = tokens["access_token"].as_str().unwrap().to_string();
    let (header, _) = forge::parts(&genuine);
    for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "HS256", "none", "NONE", "nOnE", "es256", ""] {
        let mut h = header.clone();
        h["alg"] = json!(alg);
        assert_refused_by_both(&stack, &forge::with_header(&genuine, &h), &format!("alg {alg:?}")).await;
    }
    let mut h = header.clone();
    h.as_object_mut().unwrap().remove("alg");
    assert_refused_by_both(&stack, &forge::with_header(&genuine, &h), "no alg").await;
}

#[tokio::test]
async fn zero_der_truncated_and_transplanted_signatures_are_refused_by_both_servers() {
    use base64::Engine;
    use p256::ecdsa::Signature;
    let stack = servers().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let genuine = tokens["access_token"].as_str().unwrap().to_string();
    let raw_sig =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(genuine.rsplit('.').next().unwrap()).unwrap();
    let der = Signature::from_slice(&raw_sig).unwrap().to_der();
    let mut longer = raw_sig.clone();
    longer.push(0);
    for (why, token) in [
        ("all-zero (psychic) signature", forge::with_signature(&genuine, &[0u8; 64])),
        ("DER-encoded signature", forge::with_signature(&genuine, der.as_bytes())),
        ("truncated signature", forge::with_signature(&genuine, &raw_sig[..63])),
        ("signature with a trailing byte", forge::with_signature(&genuine, &longer)),
        ("empty signature", format!("{}.", genuine.rsplit_once('.').unwrap().0)),
        ("another user's claims under the genuine signature", {
            let mut c = forge::parts(&genuine).1;
            c["sub"] = json!("someone-else");
            forge::with_claims(&genuine, &c)
        }),
        ("a wider scope under the genuine signature", {
            let mut c = forge::parts(&genuine).1;
            c["scope"] = json!("openid notes admin");
            forge::with_claims(&genuine, &c)
        }),
    ] {
        assert_refused_by_both(&stack, &token, why).await;
    }
}

#[tokio::test]
async fn a_kid_that_is_a_path_an_url_or_an_injection_is_refused_without_a_500() {
    let stack = servers().await;
    let c = claims(&stack);
    for kid in [
        json!("../../../../../../dev/null"),
        json!("/etc/passwd"),
        json!("' OR '1'='1"),
        json!("http://127.0.0.1:1/jwks.json"),
        json!("*"),
        json!("x".repeat(10_000)),
        json!(""),
        json!(7),
        json!([stack.signing_key.kid()]),
        json!(null),
    ] {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        // Signed with the genuine key: only the `kid` is wrong.
        let genuine = stack.signing_key.sign("at+jwt", &c).unwrap();
        assert_refused_by_both(&stack, &forge::with_header(&genuine, &header), &format!("kid {kid}")).await;
    }
}

#[tokio::test]
async fn malformed_tokens_of_every_shape_are_refused_with_401_never_a_500() {
    let stack = servers().await;
    let genuine = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    let (h, c, s) = {
        let mut it = genuine.split('.');
        (it.next().unwrap().to_string(), it.next().unwrap().to_string(), it.next().unwrap().to_string())
    };
    let b64 = |v: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v);
    for (why, token) in [
        ("a single dot", ".".to_string()),
        ("two dots", "..".into()),
        ("two parts", format!("{h}.{c}")),
        ("four parts", format!("{genuine}.x")),
        ("five parts (JWE)", format!("{h}.{c}.{s}.{c}.{s}")),
        ("padding in base64url", format!("{h}==.{c}.{s}")),
        ("standard base64 characters", format!("{}.{c}.{s}", h.replace('-', "+").replace('_', "/") + "+/")),
        ("header not JSON", format!("{}.{c}.{s}", b64("not json"))),
        ("header a JSON array", format!("{}.{c}.{s}", b64("[1,2]"))),
        ("header null", format!("{}.{c}.{s}", b64("null"))),
        ("claims not JSON", format!("{h}.{}.{s}", b64("{\"sub\":"))),
        ("claims a JWT string", format!("{h}.{}.{s}", b64(&format!("\"{genuine}\"")))),
        ("a 100 kB token", format!("{h}.{}.{s}", "A".repeat(100 * 1024))),
        ("non-ASCII", format!("{h}.{c}.{s}\u{e9}")),
        ("whitespace inside", format!("{h} .{c}.{s}")),
    ] {
        let res = reqwest::Client::new()
            .get(format!("{}/whoami", stack.rs_url))
            .header("Authorization", format!("Bearer {token}").as_bytes())
            .send()
            .await;
        // Some shapes are refused by the HTTP layer already (a header value with a space or
        // `é` may still pass): whatever refuses them, never a 5xx, never a 200.
        let status = res.map(|r| r.status().as_u16()).unwrap_or(400);
        assert!(matches!(status, 400 | 401 | 431), "{why}: {status}");
        if status == 401 && !token.contains(' ') && token.is_ascii() {
            assert_refused_by_both(&stack, &token, why).await;
        }
    }
}

// --- Token endpoint and revocation abuses ---------------------------------------------------

async fn auth_server(tweak: impl FnOnce(StackConfig) -> StackConfig) -> Stack {
    common::apps::start_auth_server(tweak(with_other_client(StackConfig::new()))).await
}

/// POSTs `form` to `/token` with `auth` = (client_id, secret) as client_secret_basic, or none.
async fn token_as(stack: &Stack, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{}/token", stack.auth_url)).form(form);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    (status, res.json().await.unwrap_or(Value::Null))
}

fn assert_oauth_error(answer: &(u16, Value), status: u16, code: &str, why: &str) {
    assert_eq!((answer.0, answer.1["error"].as_str()), (status, Some(code)), "{why}: {}", answer.1);
    assert!(answer.1.get("access_token").is_none() && answer.1.get("refresh_token").is_none(), "{why}");
}

/// The other registered client presents `code` (with the right verifier and redirect URI).
async fn redeem_as_other_client(stack: &Stack, code: &str, verifier: &str) -> (u16, Value) {
    let redirect = redirect_uri(stack);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect),
        ("code_verifier", verifier),
    ];
    token_as(stack, Some((OTHER_CLIENT, OTHER_SECRET)), &form).await
}

#[tokio::test]
async fn a_code_redeemed_by_another_client_is_refused() {
    let stack = auth_server(|c| c).await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let answer = redeem_as_other_client(&stack, &code, &verifier).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "another client's code");
}

#[tokio::test]
async fn a_pkce_downgrade_at_the_token_endpoint_is_refused() {
    let stack = auth_server(|c| c).await;
    let IssuedCode { code, verifier, challenge } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let redirect = redirect_uri(&stack);
    // `plain` semantics: the challenge itself as the verifier.
    assert_oauth_error(
        &redeem(&stack, &code, &challenge).await,
        400,
        "invalid_grant",
        "challenge as verifier",
    );
    let answer = token_request(
        &stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &challenge),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_grant", "plain asked for at the token endpoint");
    for bad in [
        &verifier[..42],
        &format!("{verifier}{}", "a".repeat(90))[..129],
        "",
        &format!("{}!", &verifier[..42]),
    ] {
        let answer = redeem(&stack, &code, bad).await;
        assert_oauth_error(&answer, 400, "invalid_request", &format!("malformed verifier {bad:?}"));
    }
    let answer = token_request(
        &stack,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &redirect)],
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_request", "no verifier");
}

#[tokio::test]
async fn a_code_redeemed_without_its_redirect_uri_is_refused() {
    let stack = auth_server(|c| c).await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let answer = token_request(
        &stack,
        &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &verifier)],
    )
    .await;
    assert_oauth_error(&answer, 400, "invalid_request", "no redirect_uri");
    for uri in [
        format!("{}/", redirect_uri(&stack)),
        format!("{}?x=1", redirect_uri(&stack)),
        redirect_uri(&stack).to_uppercase(),
    ] {
        let answer = token_request(
            &stack,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_oauth_error(&answer, 400, "invalid_grant", &uri);
    }
}

#[tokio::test]
async fn redirect_uris_that_are_not_an_exact_match_get_an_error_page_and_no_redirect() {
    let stack = auth_server(|c| c).await;
    let good = redirect_uri(&stack);
    let host = stack.bff_url.trim_start_matches("http://").to_string();
    let (_, challenge) = pkce_pair();
    for uri in [
        format!("{good}/"),
        format!("{good}?next=https://evil.example"),
        format!("{good}#x"),
        format!("{good}/../../evil"),
        format!("{good}%2F..%2F..%2Fevil"),
        format!("{good}.evil.example"),
        format!("http://{host}@evil.example/bff/callback"),
        format!("http://evil.example/{host}/bff/callback"),
        good.replace("http://", "https://"),
        good.replace("/bff/callback", "/bff/CALLBACK"),
        good.replace("127.0.0.1", "localhost"),
        format!("{good}\n"),
        "javascript:alert(1)//".to_string(),
    ] {
        let url = format!(
            "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
            stack.auth_url,
            urlencode(&uri)
        );
        let page = Browser::new().get(&url).await;
        assert_eq!(page.status, 400, "{uri:?}: {}", page.status);
        assert!(page.header("location").is_none(), "{uri:?}: redirected to {:?}", page.header("location"));
        assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    }
}

#[tokio::test]
async fn a_refresh_token_used_as_a_code_or_a_code_as_a_refresh_token_is_refused() {
    let stack = auth_server(|c| c).await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let answer = refresh(&stack, &code).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "a code as a refresh token");
    let (status, tokens) = redeem(&stack, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        &redeem(&stack, rt, &verifier).await,
        400,
        "invalid_grant",
        "a refresh token as a code",
    );
    let at = tokens["access_token"].as_str().unwrap();
    assert_oauth_error(
        &refresh(&stack, at).await,
        400,
        "invalid_grant",
        "an access token as a refresh token",
    );
    assert_eq!(refresh(&stack, rt).await.0, 200, "the genuine refresh token still works");
}

#[tokio::test]
async fn a_refresh_without_valid_client_authentication_is_refused_and_consumes_nothing() {
    let stack = auth_server(|c| c).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    assert_oauth_error(
        &token_as(&stack, None, &form).await,
        401,
        "invalid_client",
        "no client authentication",
    );
    assert_oauth_error(
        &token_as(&stack, Some((CLIENT_ID, "wrong")), &form).await,
        401,
        "invalid_client",
        "wrong secret",
    );
    assert_oauth_error(
        &token_as(&stack, Some(("nobody", "x")), &form).await,
        401,
        "invalid_client",
        "unknown client",
    );
    let with_id = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", CLIENT_ID)];
    assert_oauth_error(
        &token_as(&stack, None, &with_id).await,
        401,
        "invalid_client",
        "client_id without a secret",
    );
    assert_eq!(refresh(&stack, rt).await.0, 200, "refused attempts neither rotated nor revoked the token");
}

#[tokio::test]
async fn two_client_authentication_methods_or_a_mismatched_client_id_are_refused() {
    let stack = auth_server(|c| c).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let secret = stack.client_secret();
    let both = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", CLIENT_ID),
        ("client_secret", &secret),
    ];
    assert_oauth_error(
        &token_as(&stack, Some((CLIENT_ID, &secret)), &both).await,
        400,
        "invalid_request",
        "two methods",
    );
    let mismatched = [("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", OTHER_CLIENT)];
    assert_oauth_error(
        &token_as(&stack, Some((CLIENT_ID, &secret)), &mismatched).await,
        401,
        "invalid_client",
        "client_id differs from the basic credentials",
    );
    assert_eq!(refresh(&stack, rt).await.0, 200);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let stack = auth_server(|c| c.set("auth_server.code_ttl_secs", json!(1))).await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_oauth_error(&redeem(&stack, &code, &verifier).await, 400, "invalid_grant", "expired code");
}

#[tokio::test]
async fn a_refresh_token_unused_past_its_idle_lifetime_is_refused() {
    let stack = auth_server(|c| c.set("auth_server.refresh_token_idle_ttl_secs", json!(1))).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(&answer, 400, "invalid_grant", "idle refresh token");
}

#[tokio::test]
async fn a_grant_past_its_absolute_lifetime_is_refused_however_often_it_was_refreshed() {
    // Expiry is kept in whole seconds: four of them leave every step a margin of at least 0.9 s.
    let stack = auth_server(|c| c.set("auth_server.refresh_token_ttl_secs", json!(4))).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    assert!(tokens["refresh_expires_in"].as_i64().unwrap() <= 4, "{tokens}");
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (status, body) = refresh(&stack, &rt).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["refresh_expires_in"].as_i64().unwrap() <= 3, "never extended: {body}");
        rt = body["refresh_token"].as_str().unwrap().to_string();
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_oauth_error(&refresh(&stack, &rt).await, 400, "invalid_grant", "grant past its absolute lifetime");
}

/// Grants the auth server holds (its store layout: `as:grant:{gid}` under its namespace).
fn provider_grants(stack: &Stack) -> usize {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().unwrap().to_string();
    common::redis::shared()
        .dump()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{ns}:as:grant:")))
        .count()
}

#[tokio::test]
async fn revocation_with_a_wrong_secret_is_refused_and_a_wrong_hint_still_revokes_the_grant() {
    let stack = auth_server(|c| c).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let (status, rotated) = refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let rt = rotated["refresh_token"].as_str().unwrap().to_string();
    let revoke = |auth: (&'static str, String), form: Vec<(&'static str, String)>| {
        let url = format!("{}/revoke", stack.auth_url);
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(auth.0, Some(auth.1))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let res = revoke((CLIENT_ID, "wrong".into()), vec![("token", rt.clone())]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
    assert_eq!(provider_grants(&stack), 1, "nothing revoked");
    // An access token (a JWT the server does not keep) is simply acknowledged.
    let res = revoke(
        (CLIENT_ID, stack.client_secret()),
        vec![("token", rotated["access_token"].as_str().unwrap().into())],
    )
    .await;
    assert_eq!(res.status(), 200);
    // The refresh token under the wrong hint: still found, and its whole grant goes.
    let res = revoke(
        (CLIENT_ID, stack.client_secret()),
        vec![("token", rt.clone()), ("token_type_hint", "access_token".into())],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(provider_grants(&stack), 0, "the grant is gone");
    assert_oauth_error(&refresh(&stack, &rt).await, 400, "invalid_grant", "revoked");
}

/// The provider's login page for a fresh authorization request of the BFF client in a new
/// browser: its hidden `request` id.
async fn pending_request_id(stack: &Stack) -> String {
    pending_request_id_in(stack, &Browser::new()).await
}

/// Like [`pending_request_id`], in `browser` (which the request is bound to).
async fn pending_request_id_in(stack: &Stack, browser: &Browser) -> String {
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(stack, &challenge, "openid")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.inputs().into_iter().find(|(n, _)| n == "request").expect("request id").1
}

#[tokio::test]
async fn a_cross_site_post_to_the_providers_login_or_signup_form_signs_nobody_in() {
    // An attacker's page posts the attacker's credentials (and an authorization request the
    // attacker started) from the victim's browser: the victim would be signed in to the
    // provider as the attacker, and every later login there would be the attacker's.
    let stack = auth_server(|c| c).await;
    let attacker = common::OTHER_USER;
    for (name, value) in [
        ("Origin", "http://evil.example".to_string()),
        ("Origin", "null".to_string()),
        ("Origin", format!("{}.evil.example", stack.auth_url)),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ] {
        let victim = Browser::new();
        let request = pending_request_id(&stack).await;
        let req = victim
            .request(Method::POST, &format!("{}/login", stack.auth_url))
            .header(name, value.as_str())
            .form(&[("request", request.as_str()), ("username", attacker.0), ("password", attacker.1)]);
        let page = victim.send(req).await;
        assert_eq!(page.status, 403, "login with {name}: {value}: {}", page.body);
        assert!(page.header("location").is_none());
        assert!(victim.cookie("__Host-cloakroom-op").is_none(), "no provider session for the victim");
        let new_name = format!("mallory-{}", cloakroom::crypto::random_token(4));
        let req = victim
            .request(Method::POST, &format!("{}/signup", stack.auth_url))
            .header(name, value.as_str())
            .form(&[
                ("request", request.as_str()),
                ("username", &new_name),
                ("password", "mallory-password-1"),
            ]);
        let page = victim.send(req).await;
        assert_eq!(page.status, 403, "signup with {name}: {value}: {}", page.body);
        assert!(victim.cookie("__Host-cloakroom-op").is_none());
    }
    // The control: the same post from the provider's own page signs in.
    let browser = Browser::new();
    let request = pending_request_id_in(&stack, &browser).await;
    let req = browser
        .request(Method::POST, &format!("{}/login", stack.auth_url))
        .header("Origin", stack.auth_url.as_str())
        .form(&[("request", request.as_str()), ("username", attacker.0), ("password", attacker.1)]);
    let page = browser.send(req).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(browser.cookie("__Host-cloakroom-op").is_some());
}

/// An authorization request of the BFF client without `response_type`: `extra` adds it.
fn authorize_url_without_response_type(stack: &Stack, extra: &str) -> String {
    let (_, challenge) = pkce_pair();
    format!(
        "{}/authorize?client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256{extra}",
        stack.auth_url,
        urlencode(&redirect_uri(stack)),
    )
}

#[tokio::test]
async fn implicit_and_hybrid_flows_are_refused_and_no_token_lands_in_a_url() {
    let stack = auth_server(|c| c).await;
    for response_type in ["token", "id_token", "id_token token", "code id_token", "code token", "none", ""] {
        let browser = Browser::new();
        let page = browser
            .get(&authorize_url_without_response_type(
                &stack,
                &format!("&response_type={}", urlencode(response_type)),
            ))
            .await;
        // Either an error page, or an error redirect to the registered client: never a login
        // that would end in a token in a URL.
        match page.status.as_u16() {
            400 => assert!(page.header("location").is_none()),
            302 => {
                let loc = page.location().unwrap();
                assert!(loc.starts_with(&redirect_uri(&stack)), "{response_type:?}: {loc}");
                assert!(query_param(&loc, "error").is_some(), "{response_type:?}: {loc}");
                assert!(
                    !loc.contains("access_token") && !loc.contains("id_token=") && !loc.contains('#'),
                    "{loc}"
                );
            }
            other => panic!("{response_type:?}: {other}: {}", page.body),
        }
        assert!(
            !contains_jwt(&page.body) && page.inputs().iter().all(|(n, _)| n != "password"),
            "{response_type:?}"
        );
    }
}

#[tokio::test]
async fn the_password_grant_is_unsupported_and_client_credentials_need_the_grant_type() {
    let stack = auth_server(|c| c).await;
    for form in [
        vec![("grant_type", "password"), ("username", USER.0), ("password", USER.1), ("scope", "openid")],
        vec![("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", "x")],
        vec![("grant_type", "implicit")],
    ] {
        let answer = token_request(&stack, &form).await;
        assert_oauth_error(&answer, 400, "unsupported_grant_type", form[0].1);
    }
    let form = [("grant_type", "client_credentials"), ("scope", "notes")];
    let answer = token_request(&stack, &form).await;
    assert_oauth_error(&answer, 400, "unauthorized_client", "the BFF's client is not registered for it");
}

#[tokio::test]
async fn urls_in_an_authorization_request_are_never_fetched() {
    let stack = auth_server(|c| c).await;
    let target = common::echo_upstream::EchoUpstream::start();
    let browser = Browser::new();
    for extra in [
        format!("&request_uri={}", urlencode(&format!("{}/request-object", target.url))),
        format!(
            "&request={}",
            urlencode("eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwOi8vZXZpbC5leGFtcGxlIn0.")
        ),
        format!("&jwks_uri={}", urlencode(&format!("{}/jwks", target.url))),
        format!("&logo_uri={}", urlencode(&format!("{}/logo", target.url))),
        format!("&sector_identifier_uri={}", urlencode(&format!("{}/sector", target.url))),
    ] {
        let page = browser
            .get(&authorize_url_without_response_type(&stack, &format!("&response_type=code{extra}")))
            .await;
        assert!(page.status.as_u16() < 500, "{extra}: {}", page.status);
        if let Some(loc) = page.location() {
            assert!(loc.starts_with(&redirect_uri(&stack)), "{extra}: redirected to {loc}");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.hits(), 0, "the auth server fetched a URL from the request: {:?}", target.seen());
}

// --- Issue 16: replay by another client, cross-site logout ----------------------------------

#[tokio::test]
async fn a_used_code_replayed_by_another_client_is_refused_and_leaves_the_owners_grant_alive() {
    let stack = auth_server(|c| c).await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let (status, owner) = redeem(&stack, &code, &verifier).await;
    assert_eq!(status, 200, "{owner}");
    let replay = redeem_as_other_client(&stack, &code, &verifier).await;
    assert_oauth_error(&replay, 400, "invalid_grant", "another client replaying a used code");
    let (status, body) = refresh(&stack, owner["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the owner's grant survives: {body}");
}

#[tokio::test]
async fn a_cross_site_post_to_the_providers_logout_ends_no_session() {
    // A page on another origin (a sibling subdomain is same-site, so the Lax login cookie goes
    // along) posts the logout confirmation: the victim's provider session and grants must live.
    let stack = auth_server(|c| c).await;
    let victim = Browser::new();
    let tokens = code_flow_tokens(&victim, &stack, USER, ALL_SCOPES).await;
    for (name, value) in [
        ("Origin", "http://evil.example".to_string()),
        ("Origin", "null".to_string()),
        ("Sec-Fetch-Site", "cross-site".to_string()),
    ] {
        for form in [vec![], vec![("client_id", CLIENT_ID)]] {
            let req = victim
                .request(Method::POST, &format!("{}/logout", stack.auth_url))
                .header(name, value.as_str())
                .form(&form);
            let page = victim.send(req).await;
            assert_eq!(page.status, 403, "logout with {name}: {value}: {}", page.body);
            assert!(victim.cookie("__Host-cloakroom-op").is_some(), "the login cookie stays");
        }
    }
    let (status, body) = refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the grant survives: {body}");
    let (_, challenge) = pkce_pair();
    let again = victim.get(&authorize_url(&stack, &challenge, "openid")).await;
    assert_eq!(again.status, 302, "single sign-on still works: {}", again.body);
    // The control: the confirmation posted from the provider's own page signs out.
    let req = victim
        .request(Method::POST, &format!("{}/logout", stack.auth_url))
        .header("Origin", stack.auth_url.as_str())
        .form(&[("client_id", CLIENT_ID)]);
    let page = victim.send(req).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(victim.cookie("__Host-cloakroom-op").is_none(), "signed out");
}

#[tokio::test]
async fn another_browser_presenting_a_pending_request_id_can_neither_complete_nor_spend_it() {
    // The provider's sibling of the BFF's `state` binding: whoever learns the request id of a
    // victim's login page posts it from their own browser, with their own credentials.
    let stack = auth_server(|c| c).await;
    let victim = Browser::new();
    let (_, challenge) = pkce_pair();
    let page = victim.get(&authorize_url(&stack, &challenge, "openid")).await;
    let request = page.inputs().into_iter().find(|(n, _)| n == "request").expect("request id").1;
    let attacker = Browser::new();
    let own = common::OTHER_USER;
    let req = attacker
        .request(Method::POST, &format!("{}/login", stack.auth_url))
        .header("Origin", stack.auth_url.as_str())
        .form(&[("request", request.as_str()), ("username", own.0), ("password", own.1)]);
    let login = attacker.send(req).await;
    assert_eq!(login.status, 400, "{}", login.body);
    assert!(login.header("location").is_none(), "no code for the victim's request");
    let req = attacker
        .request(Method::POST, &format!("{}/signup", stack.auth_url))
        .header("Origin", stack.auth_url.as_str())
        .form(&[("request", request.as_str()), ("username", "mallory"), ("password", "mallory-password-1")]);
    let signup = attacker.send(req).await;
    assert!(signup.header("location").is_none(), "no code for the victim's request: {}", signup.body);
    // The victim's own sign-in is untouched.
    let done = common::oidc_flow::submit_login(&victim, &page, USER).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(query_param(&done.location().unwrap(), "code").is_some());
}
