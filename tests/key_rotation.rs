//! Key rotation without logouts: the BFF's `session_key` list (first seals, all open; store keys
//! never depend on it; older cookie signatures are accepted and re-signed) and the auth server's
//! signing key (the next key published before use, the previous one kept until its tokens
//! expire; resource servers and the BFF follow through their JWKS caches).

mod common;

use base64::Engine;
use cloakroom::bff::session::SESSION_COOKIE;
use common::apps::{start_second_bff, start_with_restartable_auth, wait_ready};
use common::browser::call;
use common::oidc_flow::code_flow_tokens;
use common::{Browser, Stack, StackConfig, USER};
use serde_json::json;
use std::time::Duration;

/// Another BFF instance on the stack's store and namespace, with `session_key` = `keys`: a
/// restart of the BFF with a new key list.
async fn bff_with_session_keys(stack: &Stack, keys: &[&str]) -> String {
    start_second_bff(stack, |doc| doc["session_key"] = json!(keys)).await
}

fn key_bytes(b64: &str) -> [u8; 32] {
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap().try_into().unwrap()
}

/// The session's sealed token record: (context, sealed bytes).
fn token_record(stack: &Stack) -> (String, Vec<u8>) {
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap().to_string();
    common::redis::shared()
        .dump()
        .into_iter()
        .find_map(|(k, v)| {
            k.strip_prefix(&format!("{ns}:")).filter(|k| k.starts_with("tokens:")).map(|k| (k.to_string(), v))
        })
        .expect("the session's token record")
}

#[tokio::test]
async fn a_session_created_under_one_session_key_survives_a_restart_with_a_new_key_first_is_resealed_and_outlives_the_old_key()
 {
    let cfg = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(2))
        .set("bff.refresh_skew_secs", json!(1));
    let stack = Stack::start_ready(cfg).await;
    let old_key = stack.doc["bff"]["session_key"].as_str().unwrap().to_string();
    let new_key = base64::engine::general_purpose::STANDARD.encode(cloakroom::crypto::random_bytes::<32>());
    let browser = stack.login_as(USER).await;
    let old_cookie = browser.session_cookie().expect("session cookie");
    let (ctx, sealed) = token_record(&stack);
    assert!(cloakroom::crypto::Sealer::new(&[key_bytes(&old_key)]).open(ctx.as_bytes(), &sealed).is_ok());

    let rotated = bff_with_session_keys(&stack, &[&new_key, &old_key]).await;

    let user = call(&browser, &rotated, "/bff/user").await;
    assert_eq!(user.status, 200, "the session survived the rotation: {}", user.body);
    let new_cookie = browser.session_cookie().expect("session cookie");
    assert_ne!(new_cookie, old_cookie, "the cookie was re-signed with the new key");
    assert_eq!(user.header("cache-control").as_deref(), Some("no-store"));
    let me = call(&browser, &rotated, "/api/whoami").await;
    assert_eq!(me.status, 200, "its tokens decrypt: {}", me.body);

    // The next write of the token record (a refresh) seals it under the new key.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refreshed = call(&browser, &rotated, "/api/whoami").await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_ne!(refreshed.json()["jti"], me.json()["jti"], "refreshed");
    let (ctx_after, sealed) = token_record(&stack);
    assert_eq!(ctx_after, ctx, "the store key did not move");
    assert!(cloakroom::crypto::Sealer::new(&[key_bytes(&new_key)]).open(ctx.as_bytes(), &sealed).is_ok());
    assert!(cloakroom::crypto::Sealer::new(&[key_bytes(&old_key)]).open(ctx.as_bytes(), &sealed).is_err());
    // A re-signed cookie is not re-signed again.
    let again = call(&browser, &rotated, "/bff/user").await;
    assert!(again.set_cookies().iter().all(|c| !c.starts_with(SESSION_COOKIE)), "{:?}", again.set_cookies());

    // Every record of the session was used since the rotation, so the old key can go.
    let only_new = bff_with_session_keys(&stack, &[&new_key]).await;
    let last = call(&browser, &only_new, "/api/whoami").await;
    assert_eq!(last.status, 200, "the session outlived the old key: {}", last.body);
}

#[tokio::test]
async fn a_cookie_signed_with_a_key_no_longer_listed_is_no_session() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let browser = stack.login_as(USER).await;
    let unrelated = base64::engine::general_purpose::STANDARD.encode(cloakroom::crypto::random_bytes::<32>());

    let other = bff_with_session_keys(&stack, &[&unrelated]).await;

    let page = call(&browser, &other, "/bff/user").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.json()["error"], "unauthenticated");
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn whoami_at_rs(stack: &Stack, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/whoami", stack.rs_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn jwks_kids(stack: &Stack) -> Vec<String> {
    let jwks: serde_json::Value =
        reqwest::get(format!("{}/jwks", stack.auth_url)).await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_auth_server_signing_key_rotation_keeps_old_tokens_valid_new_tokens_accepted_and_bff_sessions_alive()
 {
    let cfg = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(4))
        .set("bff.refresh_skew_secs", json!(1))
        .set("resource_server.jwks_min_refetch_secs", json!(1));
    let old_kid = cfg.signing_key.kid().to_string();
    let next = cloakroom::jwt::SigningKey::generate().unwrap();
    let next_file =
        std::env::temp_dir().join(format!("cloakroom-next-key-{}.pem", cloakroom::crypto::random_token(8)));
    std::fs::write(&next_file, next.to_pem()).unwrap();
    let (stack, auth) = start_with_restartable_auth(cfg).await;
    wait_ready(&stack.bff_url).await;
    let old_file = stack.doc["auth_server"]["signing_key_file"].clone();

    // Before: one key; the resource server fetches the JWKS that has only it.
    let old_token = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid_of(&old_token), old_kid);
    assert_eq!(whoami_at_rs(&stack, &old_token).await, 200);

    // Step 1: the next key is published but not used; the BFF logs a user in meanwhile.
    let mut doc = stack.doc["auth_server"].clone();
    doc["published_key_files"] = json!([next_file.to_string_lossy()]);
    auth.restart_with(&doc).await;
    assert_eq!(jwks_kids(&stack).await, vec![old_kid.clone(), next.kid().to_string()]);
    let still_old = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes").await;
    assert_eq!(kid_of(still_old["access_token"].as_str().unwrap()), old_kid, "published, not used");
    let early = stack.login_as(USER).await;
    let early_me = stack.api_get(&early, "/api/whoami").await;
    assert_eq!(early_me.status, 200, "{}", early_me.body);

    // Step 2: the next key signs; the old one stays published until its tokens expire.
    tokio::time::sleep(Duration::from_millis(1100)).await; // the resource server's refetch limit
    doc["signing_key_file"] = json!(next_file.to_string_lossy());
    doc["published_key_files"] = json!([old_file]);
    auth.restart_with(&doc).await;
    assert_eq!(jwks_kids(&stack).await, vec![next.kid().to_string(), old_kid.clone()]);

    let new_token = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(kid_of(&new_token), next.kid());
    assert_eq!(whoami_at_rs(&stack, &new_token).await, 200, "the resource server refetched the JWKS");
    assert_eq!(whoami_at_rs(&stack, &old_token).await, 200, "a token signed before the switch still passes");
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", stack.auth_url))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200, "the auth server itself still accepts the old key's tokens");

    // The BFF: a session from before the switch keeps working, refreshes onto the new key, and
    // a login after the switch (an ID token under the new kid) succeeds.
    assert_eq!(stack.api_get(&early, "/api/whoami").await.status, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let refreshed = stack.api_get(&early, "/api/whoami").await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_ne!(refreshed.json()["jti"], early_me.json()["jti"]);
    let late = stack.login_as(USER).await; // an ID token under the new kid
    assert_eq!(stack.api_get(&late, "/api/whoami").await.status, 200);
    let _ = std::fs::remove_file(&next_file);
}
