//! `POST /bff/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0 §2.6-2.8) against the
//! real auth server, with logout tokens signed by its own key: valid tokens end exactly the
//! matching sessions on every instance; every single mutation is refused with 400 and leaves
//! the session alive.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::apps::{metrics, start_second_bff};
use common::browser::call;
use common::oidc_flow::{pkce_pair, token_request, urlencode};
use common::{Browser, CLIENT_ID, OTHER_USER, Stack, StackConfig, USER};
use serde_json::{Value, json};
use std::time::Duration;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn started_stack() -> Stack {
    Stack::start_ready(StackConfig::new()).await
}

/// Status of `GET /bff/user` at the BFF `base` for this browser.
async fn user_status(browser: &Browser, base: &str) -> u16 {
    call(browser, base, "/bff/user").await.status.as_u16()
}

/// The provider session id of this browser's login at the auth server: a second code flow
/// (single sign-on, no form) whose ID token carries the same `sid` the BFF's session holds.
async fn provider_sid(browser: &Browser, stack: &Stack) -> String {
    let (verifier, challenge) = pkce_pair();
    let redirect_uri = stack.bff("/bff/callback");
    let url = format!(
        "{}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        stack.auth_url,
        urlencode(&redirect_uri),
    );
    let callback = browser.follow_until(browser.get(&url).await, &redirect_uri).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let (status, body) = token_request(
        stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let payload = body["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().expect("sid in the ID token").to_string()
}

/// Valid logout claims for this stack; `sub` / `sid` only when given.
fn logout_claims(stack: &Stack, sub: Option<&str>, sid: Option<&str>) -> Value {
    let now = cloakroom::clock::now();
    let mut c = json!({
        "iss": stack.auth_url, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
        "jti": cloakroom::crypto::random_token(16), "events": { EVENT: {} },
    });
    if let Some(sub) = sub {
        c["sub"] = json!(sub);
    }
    if let Some(sid) = sid {
        c["sid"] = json!(sid);
    }
    c
}

fn with(mut claims: Value, key: &str, value: Option<Value>) -> Value {
    match value {
        Some(v) => claims[key] = v,
        None => {
            claims.as_object_mut().unwrap().remove(key);
        }
    }
    claims
}

fn sign(stack: &Stack, claims: &Value) -> String {
    stack.signing_key.sign("logout+jwt", claims).unwrap()
}

struct Answer {
    status: u16,
    cache_control: Option<String>,
    body: String,
}

async fn post_logout_token(base: &str, token: &str) -> Answer {
    let res = reqwest::Client::new()
        .post(format!("{base}/bff/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let cache_control = res.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_string);
    Answer { status, cache_control, body: res.text().await.unwrap_or_default() }
}

fn assert_refused(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 400, "{what}: {}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"), "{what}");
    let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    assert_eq!(body["error"], "invalid_request", "{what}: {}", answer.body);
}

#[tokio::test]
async fn a_valid_token_with_a_sid_ends_that_session_on_both_instances_and_spares_another_user() {
    let stack = started_stack().await;
    let second = start_second_bff(&stack, |_| {}).await;
    let alice = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let sid = provider_sid(&alice, &stack).await;
    let sub = stack.sub_of(&alice).await;
    for base in [&stack.bff_url, &second] {
        assert_eq!(user_status(&alice, base).await, 200);
        assert_eq!(user_status(&bob, base).await, 200);
    }

    let answer =
        post_logout_token(&second, &sign(&stack, &logout_claims(&stack, Some(&sub), Some(&sid)))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    for base in [&stack.bff_url, &second] {
        assert_eq!(user_status(&alice, base).await, 401, "alice's session is gone at {base}");
        assert_eq!(user_status(&bob, base).await, 200, "bob's session lives at {base}");
    }
    let metrics = metrics(&second).await;
    assert!(metrics.contains("cloakroom_backchannel_logout_total{outcome=\"success\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_token_with_only_a_sub_ends_every_session_of_that_user_and_only_those() {
    let stack = started_stack().await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let sub = stack.sub_of(&laptop).await;
    assert_ne!(
        provider_sid(&laptop, &stack).await,
        provider_sid(&phone, &stack).await,
        "two provider sessions"
    );

    let answer =
        post_logout_token(&stack.bff_url, &sign(&stack, &logout_claims(&stack, Some(&sub), None))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(user_status(&laptop, &stack.bff_url).await, 401);
    assert_eq!(user_status(&phone, &stack.bff_url).await, 401);
    assert_eq!(user_status(&bob, &stack.bff_url).await, 200);
}

#[tokio::test]
async fn a_token_with_a_sid_and_a_sub_ends_only_the_sessions_of_that_sid() {
    let stack = started_stack().await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let sub = stack.sub_of(&laptop).await;
    let sid = provider_sid(&laptop, &stack).await;

    let answer =
        post_logout_token(&stack.bff_url, &sign(&stack, &logout_claims(&stack, Some(&sub), Some(&sid))))
            .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(user_status(&laptop, &stack.bff_url).await, 401);
    assert_eq!(
        user_status(&phone, &stack.bff_url).await,
        200,
        "the other provider session's BFF session lives"
    );
}

#[tokio::test]
async fn every_single_mutation_of_a_valid_token_is_refused_and_the_session_survives() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;
    let sid = provider_sid(&alice, &stack).await;
    let sub = stack.sub_of(&alice).await;
    let valid = || logout_claims(&stack, Some(&sub), Some(&sid));
    let now = cloakroom::clock::now();
    let foreign = cloakroom::jwt::SigningKey::generate().unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());

    let mut cases: Vec<(&str, &str, String)> = vec![
        ("wrong iss", "Issuer", sign(&stack, &with(valid(), "iss", Some(json!("http://evil.example"))))),
        ("wrong aud", "Audience", sign(&stack, &with(valid(), "aud", Some(json!("someone-else"))))),
        (
            "expired",
            "Expired",
            sign(&stack, &with(with(valid(), "exp", Some(json!(now - 120))), "iat", Some(json!(now - 240)))),
        ),
        ("nonce present", "Forbidden", sign(&stack, &with(valid(), "nonce", Some(json!("n"))))),
        ("events missing", "MissingClaim", sign(&stack, &with(valid(), "events", None))),
        (
            "events without the member",
            "MissingClaim",
            sign(&stack, &with(valid(), "events", Some(json!({ "http://x/other": {} })))),
        ),
        ("neither sid nor sub", "MissingClaim", sign(&stack, &with(with(valid(), "sid", None), "sub", None))),
        ("jti missing", "MissingClaim", sign(&stack, &with(valid(), "jti", None))),
        ("typ at+jwt", "wrong token type", stack.signing_key.sign("at+jwt", &valid()).unwrap()),
        ("foreign key", "unknown signing key", foreign.sign("logout+jwt", &valid()).unwrap()),
    ];
    let id_token_like = with(with(valid(), "events", None), "nonce", Some(json!("n")));
    cases.push((
        "an ID token (typ JWT, nonce, no events)",
        "MissingClaim",
        stack.signing_key.sign("JWT", &id_token_like).unwrap(),
    ));
    let ours = sign(&stack, &valid());
    let theirs = foreign.sign("logout+jwt", &valid()).unwrap();
    let mut parts: Vec<&str> = ours.split('.').collect();
    parts[2] = theirs.split('.').nth(2).unwrap();
    cases.push(("signature of a foreign key under our kid", "Signature", parts.join(".")));
    let none_header = json!({ "alg": "none", "typ": "logout+jwt", "kid": stack.signing_key.kid() });
    cases.push(("alg none", "malformed", format!("{}.{}.", b64(&none_header), b64(&valid()))));

    for (what, reason, token) in &cases {
        let answer = post_logout_token(&stack.bff_url, token).await;
        assert_refused(&answer, what);
        assert!(answer.body.contains(reason), "{what} refused for its own reason: {}", answer.body);
        assert_eq!(user_status(&alice, &stack.bff_url).await, 200, "the session survives: {what}");
    }
}

#[tokio::test]
async fn a_replayed_token_is_refused_and_spares_a_session_created_after_it() {
    let stack = started_stack().await;
    let first = stack.login_as(USER).await;
    let sub = stack.sub_of(&first).await;
    let token = sign(&stack, &logout_claims(&stack, Some(&sub), None));
    assert_eq!(post_logout_token(&stack.bff_url, &token).await.status, 200);
    assert_eq!(user_status(&first, &stack.bff_url).await, 401);
    let later = stack.login_as(USER).await;

    let replay = post_logout_token(&stack.bff_url, &token).await;

    assert_refused(&replay, "replayed jti");
    assert_eq!(user_status(&later, &stack.bff_url).await, 200);
}

#[tokio::test]
async fn requests_that_are_not_a_form_with_one_logout_token_are_refused() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;
    let sub = stack.sub_of(&alice).await;
    let token = sign(&stack, &logout_claims(&stack, Some(&sub), None));
    let url = stack.bff("/bff/backchannel-logout");
    let http = reqwest::Client::new();
    let as_json = http.post(&url).json(&json!({ "logout_token": token })).send().await.unwrap();
    let twice = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("logout_token={token}&logout_token={token}"))
        .send()
        .await
        .unwrap();
    let garbage = post_logout_token(&stack.bff_url, "not-a-jwt").await;

    for res in [as_json, twice] {
        assert_eq!(res.status(), 400);
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    assert_refused(&garbage, "not a JWT");
    assert_eq!(user_status(&alice, &stack.bff_url).await, 200);
}

#[tokio::test]
async fn ending_the_session_at_the_auth_server_ends_the_bff_session_through_back_channel_logout() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    assert_eq!(user_status(&alice, &stack.bff_url).await, 200);

    let confirm = alice.get(&format!("{}/logout?client_id={CLIENT_ID}", stack.auth_url)).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let action = confirm.form_action().expect("confirmation form");
    let signed_out = alice.post_form(&action, &confirm.inputs()).await;
    assert!(signed_out.status.is_success() || signed_out.status.is_redirection(), "{}", signed_out.body);

    let mut status = 200;
    for _ in 0..100 {
        status = user_status(&alice, &stack.bff_url).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401, "the BFF session ended within 5 s");
    assert_eq!(user_status(&bob, &stack.bff_url).await, 200);
}

#[tokio::test]
async fn a_store_outage_is_a_503_the_provider_may_retry_not_a_400() {
    let bff_redis = common::redis::RedisServer::start();
    let stack = Stack::start_ready(StackConfig::new().set("bff.redis_url", json!(bff_redis.url()))).await;
    let alice = stack.login_as(USER).await;
    let sub = stack.sub_of(&alice).await;
    let token = sign(&stack, &logout_claims(&stack, Some(&sub), None));
    bff_redis.stop();

    let answer = post_logout_token(&stack.bff_url, &token).await;

    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["error"], "store_unavailable");
}

#[tokio::test]
async fn each_ended_session_is_announced_on_the_store_bus() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;
    let sid = provider_sid(&alice, &stack).await;
    let cfg: cloakroom::config::BffConfig = cloakroom::config::ConfigSource::from_toml_str("")
        .set("bff", &stack.doc["bff"])
        .section("bff")
        .unwrap();
    let store = cloakroom::store::Store::connect(&cfg.store, "test-listener").await.unwrap();
    let mut events = store.events().subscribe();
    // The first `Lost` says the subscription is in place.
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
    assert_eq!(first, cloakroom::store::Event::Lost);

    let answer =
        post_logout_token(&stack.bff_url, &sign(&stack, &logout_claims(&stack, None, Some(&sid)))).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    // Near-cache invalidations and links travel on the same bus; skip them.
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await.unwrap() {
                cloakroom::store::Event::Message { channel, .. } if channel.starts_with("near-cache-") => {}
                other => return other,
            }
        }
    })
    .await
    .unwrap();
    match event {
        cloakroom::store::Event::Message { channel, payload } => {
            assert_eq!(channel, cloakroom::bff::session::SESSION_ENDED_CHANNEL);
            let payload = String::from_utf8(payload).unwrap();
            let cookie = alice.session_cookie().expect("the browser still holds its cookie");
            assert_eq!(payload.len(), 43, "one session id hash");
            assert!(!cookie.contains(&payload), "the hashed id, never the raw one");
        }
        other => panic!("expected a session-ended message, got {other:?}"),
    }
}
