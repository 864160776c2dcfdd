//! Attack suite, DPoP (RFC 9449 §11): a DPoP-bound access token stolen from an upstream's log
//! is worthless without the session's key. The resource server refuses it without a proof, as
//! Bearer, with a proof for another URL or method, with a replayed `jti`, signed by another
//! key, with `alg: none`, an old `iat` or the hash of another token; the token endpoint refuses
//! the same forgeries for a bound refresh token, and a stolen refresh token neither refreshes
//! nor revokes the family without the key. Forged proofs are signed with the attacker's own
//! keys (`common::dpop::forged_proof`); tokens come from the real auth server.
//!
//! | case | test |
//! |---|---|
//! | no proof, as Bearer (resource server and userinfo) | [`a_stolen_bound_token_without_a_proof_or_as_bearer_is_refused`] |
//! | another URL, another method | [`a_proof_for_another_url_or_method_is_refused`] |
//! | replayed `jti` | [`a_replayed_proof_is_refused_the_second_time`] |
//! | another key, `alg: none`, HS256 | [`a_proof_signed_by_another_key_or_unsigned_is_refused`] |
//! | old or future `iat`, wrong `ath` | [`an_old_or_future_proof_or_one_for_another_token_is_refused`] |
//! | token endpoint: no proof, other key, replay, `alg: none` | [`a_bound_refresh_token_needs_a_fresh_proof_of_its_own_key`] |

mod common;

use cloakroom::jwt::SigningKey;
use cloakroom::jwt::dpop::{DpopAlg, DpopKey};
use common::dpop::{
    Answer, bound_tokens, bound_tokens_with, forged_proof, rs_claims, rs_get, rs_proof, token_call,
    token_proof,
};
use common::forge::{b64, parts};
use common::{Stack, StackConfig};
use serde_json::json;

/// A stack, the victim's key and the access and refresh tokens bound to it.
async fn victim() -> (Stack, DpopKey, String, String) {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let key = DpopKey::generate(DpopAlg::Es256);
    let tokens = bound_tokens(&stack, &key).await;
    assert_eq!(tokens.status, 200, "{tokens:?}");
    assert_eq!(tokens.body["token_type"], "DPoP");
    let access = tokens.body["access_token"].as_str().expect("access token").to_string();
    let refresh = tokens.body["refresh_token"].as_str().expect("refresh token").to_string();
    (stack, key, access, refresh)
}

fn assert_refused(answer: &Answer, error: &str) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.body["error"], "invalid_token", "{answer:?}");
    assert!(answer.challenge.starts_with("DPoP ") && answer.challenge.contains(error), "{answer:?}");
}

#[tokio::test]
async fn a_stolen_bound_token_without_a_proof_or_as_bearer_is_refused() {
    let (stack, key, token, _) = victim().await;
    let genuine = rs_proof(&stack, &key, "/whoami", &token);

    let no_proof = rs_get(&stack, "/whoami", &format!("DPoP {token}"), None).await;
    let as_bearer = rs_get(&stack, "/whoami", &format!("Bearer {token}"), None).await;
    let as_bearer_with_proof = rs_get(&stack, "/whoami", &format!("Bearer {token}"), Some(&genuine)).await;
    let at_userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", stack.auth_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("userinfo reachable");

    assert_refused(&no_proof, "invalid_dpop_proof");
    assert_refused(&as_bearer, r#"error="invalid_token""#);
    assert_refused(&as_bearer_with_proof, r#"error="invalid_token""#);
    assert_eq!(at_userinfo.status(), 401, "the auth server's userinfo takes no bound token as Bearer");
    let fine = rs_get(&stack, "/whoami", &format!("DPoP {token}"), Some(&genuine)).await;
    assert_eq!(fine.status, 200, "the owner's call still works: {fine:?}");
}

#[tokio::test]
async fn a_proof_for_another_url_or_method_is_refused() {
    let (stack, key, token, _) = victim().await;
    let auth = format!("DPoP {token}");
    let other_path = rs_proof(&stack, &key, "/notes", &token);
    let other_host = key.proof("GET", "https://api.elsewhere.example/whoami", Some(&token), None);
    let other_method = key.proof("DELETE", &format!("{}/whoami", stack.rs_url), Some(&token), None);

    for proof in [other_path, other_host, other_method] {
        assert_refused(&rs_get(&stack, "/whoami", &auth, Some(&proof)).await, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused_the_second_time() {
    let (stack, key, token, _) = victim().await;
    let auth = format!("DPoP {token}");
    let proof = rs_proof(&stack, &key, "/whoami", &token);

    let first = rs_get(&stack, "/whoami", &auth, Some(&proof)).await;
    let replay = rs_get(&stack, "/whoami", &auth, Some(&proof)).await;

    assert_eq!(first.status, 200, "{first:?}");
    assert_refused(&replay, "invalid_dpop_proof");
}

#[tokio::test]
async fn a_proof_signed_by_another_key_or_unsigned_is_refused() {
    let (stack, _, token, _) = victim().await;
    let auth = format!("DPoP {token}");
    let attacker = SigningKey::generate().expect("key");
    let claims = rs_claims(&stack, "/whoami", &token);
    let other_key = forged_proof(&attacker, json!({}), claims.clone());
    let (header, _) = parts(&other_key);
    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", b64(&none), b64(&claims));
    let mut hs = header;
    hs["alg"] = json!("HS256");
    let hs256 = format!("{}.{}.AAAA", b64(&hs), b64(&claims));

    for proof in [other_key, unsigned, hs256] {
        assert_refused(&rs_get(&stack, "/whoami", &auth, Some(&proof)).await, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn an_old_or_future_proof_or_one_for_another_token_is_refused() {
    let (stack, key, token, _) = victim().await;
    // Tokens bound to a P-256 key the test signs any claims with, so that only the claim under
    // test is wrong; a proof with every claim right passes (the control).
    let own = SigningKey::generate().expect("key");
    let endpoint = json!({"jti": "t1", "htm": "POST", "htu": format!("{}/token", stack.auth_url),
        "iat": cloakroom::clock::now()});
    let bound = bound_tokens_with(&stack, forged_proof(&own, json!({}), endpoint)).await;
    let own_token = bound.body["access_token"].as_str().expect("access token").to_string();
    let own_auth = format!("DPoP {own_token}");
    let wrong_ath = key.proof("GET", &format!("{}/whoami", stack.rs_url), Some("another token"), None);
    let mut old = rs_claims(&stack, "/whoami", &own_token);
    old["iat"] = json!(cloakroom::clock::now() - 600);
    let mut future = rs_claims(&stack, "/whoami", &own_token);
    future["iat"] = json!(cloakroom::clock::now() + 600);
    let control = forged_proof(&own, json!({}), rs_claims(&stack, "/whoami", &own_token));

    assert_refused(
        &rs_get(&stack, "/whoami", &format!("DPoP {token}"), Some(&wrong_ath)).await,
        "invalid_dpop_proof",
    );
    for claims in [old, future] {
        let proof = forged_proof(&own, json!({}), claims);
        assert_refused(&rs_get(&stack, "/whoami", &own_auth, Some(&proof)).await, "invalid_dpop_proof");
    }
    assert_eq!(
        rs_get(&stack, "/whoami", &own_auth, Some(&control)).await.status,
        200,
        "a genuine proof passes"
    );
}

#[tokio::test]
async fn a_bound_refresh_token_needs_a_fresh_proof_of_its_own_key() {
    let (stack, key, _, refresh) = victim().await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let thief = DpopKey::generate(DpopAlg::EdDsa);
    let attacker = SigningKey::generate().expect("key");
    let mut none = parts(&token_proof(&stack, &key)).0;
    none["alg"] = json!("none");
    let none_claims = json!({"jti": "x1", "htm": "POST", "htu": format!("{}/token", stack.auth_url),
        "iat": cloakroom::clock::now()});
    let unsigned = format!("{}.{}.", b64(&none), b64(&none_claims));
    let mut stale = none_claims.clone();
    stale["iat"] = json!(cloakroom::clock::now() - 600);
    let old = forged_proof(&attacker, json!({}), stale);

    let without = token_call(&stack, &form, None).await;
    let other_key = token_call(&stack, &form, Some(token_proof(&stack, &thief))).await;
    let alg_none = token_call(&stack, &form, Some(unsigned)).await;
    let too_old = token_call(&stack, &form, Some(old)).await;
    let genuine = token_proof(&stack, &key);
    let owner = token_call(&stack, &form, Some(genuine.clone())).await;
    let next = owner.body["refresh_token"].as_str().unwrap_or_default().to_string();
    let replayed = token_call(
        &stack,
        &[("grant_type", "refresh_token"), ("refresh_token", next.as_str())],
        Some(genuine),
    )
    .await;

    assert_eq!((without.status, without.body["error"].as_str()), (400, Some("invalid_dpop_proof")));
    assert_eq!((other_key.status, other_key.body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!((alg_none.status, alg_none.body["error"].as_str()), (400, Some("invalid_dpop_proof")));
    assert_eq!((too_old.status, too_old.body["error"].as_str()), (400, Some("invalid_dpop_proof")));
    assert_eq!(owner.status, 200, "the refused attempts neither consumed nor revoked: {owner:?}");
    assert_eq!(owner.body["token_type"], "DPoP");
    assert_eq!((replayed.status, replayed.body["error"].as_str()), (400, Some("invalid_dpop_proof")));
    let after = token_call(
        &stack,
        &[("grant_type", "refresh_token"), ("refresh_token", next.as_str())],
        Some(token_proof(&stack, &key)),
    )
    .await;
    assert_eq!(after.status, 200, "a replayed proof consumed nothing: {after:?}");
}
