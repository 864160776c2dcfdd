//! `cloakroom auth-server revoke --sub S | --sid X`: the real binary, configured like the auth
//! server (a file for the clients, `CLOAKROOM_AUTH_SERVER__…` for the rest), revokes a user's
//! grants in the test stack's Redis, ends their provider login, and has delivered the
//! back-channel logout to the BFF before it exits.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::attack::AttackStack;
use common::binary::{Run, run};
use common::oidc_flow::{ALL_SCOPES, authorize_url, code_flow_tokens, pkce_pair, refresh};
use common::{Browser, OTHER_USER, Stack, StackConfig, USER};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The auth-server section of `stack` minus its clients, as `CLOAKROOM_AUTH_SERVER__…`.
fn auth_env(stack: &Stack) -> Vec<(String, String)> {
    let a = &stack.doc["auth_server"];
    let s = |v: &Value| v.as_str().expect("string setting").to_string();
    vec![
        ("CLOAKROOM_AUTH_SERVER__ISSUER".into(), s(&a["issuer"])),
        ("CLOAKROOM_AUTH_SERVER__REDIS_URL".into(), s(&a["redis_url"])),
        ("CLOAKROOM_AUTH_SERVER__REDIS_NAMESPACE".into(), s(&a["redis_namespace"])),
        ("CLOAKROOM_AUTH_SERVER__SIGNING_KEY_FILE".into(), s(&a["signing_key_file"])),
    ]
}

/// Runs `cloakroom --config <clients file> auth-server ARGS` with `env`: the registered
/// clients come from a TOML file, as an operator's would.
async fn admin(stack: &Stack, args: &[&str], env: Vec<(String, String)>) -> Run {
    let mut toml = String::new();
    for client in stack.doc["auth_server"]["clients"].as_array().expect("clients") {
        toml.push_str("[[auth_server.clients]]\n");
        for (key, value) in client.as_object().expect("client") {
            // Strings and arrays of strings are written the same in JSON and TOML.
            toml.push_str(&format!("{key} = {value}\n"));
        }
    }
    let path = std::env::temp_dir()
        .join(format!("cloakroom-auth-admin-{}.toml", cloakroom::crypto::random_token(8)));
    std::fs::write(&path, toml).expect("write config");
    let mut all = vec!["--config", path.to_str().expect("path"), "auth-server"];
    all.extend_from_slice(args);
    let out = run(&all, env).await;
    let _ = std::fs::remove_file(&path);
    out
}

/// The one JSON line the command printed.
fn summary(out: &Run) -> Value {
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stdout);
    serde_json::from_str(lines[0]).expect("a JSON summary")
}

fn counts(grants: u64, sessions: u64, delivered: u64, failed: u64) -> Value {
    json!({
        "grants_revoked": grants,
        "login_sessions_ended": sessions,
        "notices_delivered": delivered,
        "notices_failed": failed,
    })
}

async fn bff_status(target: &AttackStack, browser: &Browser, path: &str) -> u16 {
    target.stack.api_get(browser, path).await.status.as_u16()
}

/// The claims of a JWT, unverified (the test reads what the provider issued).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

/// A browser logged in to the BFF as `user`, with the refresh and ID token the BFF received.
async fn login_with_tokens(target: &AttackStack, user: (&str, &str)) -> (Browser, String, Value) {
    let browser = target.login_as(user).await;
    let tap = target.tap();
    let refresh_token = tap.secrets_named("refresh_token").last().expect("a refresh token").clone();
    let id_token = claims(tap.secrets_named("id_token").last().expect("an ID token"));
    (browser, refresh_token, id_token)
}

/// Whether the browser's provider login (single sign-on) still answers an authorization
/// request with a code instead of the login form.
async fn provider_login_alive(stack: &Stack, browser: &Browser) -> bool {
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(stack, &challenge, "openid")).await;
    assert!(matches!(page.status.as_u16(), 200 | 302), "{}: {}", page.status, page.body);
    page.status == 302
}

#[tokio::test]
async fn revoke_by_sub_logs_the_user_out_of_the_bff_and_the_provider_before_it_exits_and_spares_others() {
    let target = AttackStack::start_with_tap(|c| c).await;
    let stack = &target.stack;
    let (alice, alice_refresh, _) = login_with_tokens(&target, USER).await;
    let (bob, bob_refresh, _) = login_with_tokens(&target, OTHER_USER).await;
    let sub = target.stack.sub_of(&alice).await;
    assert_eq!(bff_status(&target, &alice, "/api/whoami").await, 200, "warms the near cache");
    assert_eq!(bff_status(&target, &bob, "/api/whoami").await, 200);

    let out = admin(stack, &["revoke", "--sub", &sub], auth_env(stack)).await;

    assert_eq!(summary(&out), counts(1, 1, 1, 0), "stderr: {}", out.stderr);
    // The notice was delivered before the process exited: the session record is gone now.
    assert_eq!(bff_status(&target, &alice, "/bff/user").await, 401);
    // The near cache hears `session-ended` over the store bus: a short, bounded wait.
    let deadline = Instant::now() + Duration::from_secs(2);
    while bff_status(&target, &alice, "/api/whoami").await != 401 {
        assert!(Instant::now() < deadline, "the BFF still proxies for a revoked user");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = refresh(stack, &alice_refresh).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert!(!provider_login_alive(stack, &alice).await, "the provider login of alice is over");

    assert_eq!(bff_status(&target, &bob, "/bff/user").await, 200);
    assert_eq!(bff_status(&target, &bob, "/api/whoami").await, 200);
    assert!(provider_login_alive(stack, &bob).await);
    assert_eq!(refresh(stack, &bob_refresh).await.0, 200, "bob's grant is alive");
}

#[tokio::test]
async fn revoke_by_sid_ends_only_that_provider_session_and_its_bff_session() {
    let target = AttackStack::start_with_tap(|c| c).await;
    let stack = &target.stack;
    let (laptop, laptop_refresh, laptop_id) = login_with_tokens(&target, USER).await;
    let (phone, phone_refresh, phone_id) = login_with_tokens(&target, USER).await;
    let sid = laptop_id["sid"].as_str().expect("the provider sends a sid").to_string();
    assert_ne!(phone_id["sid"].as_str(), Some(sid.as_str()), "two browsers, two provider sessions");

    let out = admin(stack, &["revoke", "--sid", &sid], auth_env(stack)).await;

    assert_eq!(summary(&out), counts(1, 1, 1, 0), "stderr: {}", out.stderr);
    assert_eq!(bff_status(&target, &laptop, "/bff/user").await, 401);
    assert_eq!(refresh(stack, &laptop_refresh).await.0, 400);
    assert!(!provider_login_alive(stack, &laptop).await);
    assert_eq!(bff_status(&target, &phone, "/bff/user").await, 200);
    assert!(provider_login_alive(stack, &phone).await);
    assert_eq!(refresh(stack, &phone_refresh).await.0, 200);
}

#[tokio::test]
async fn revoking_an_unknown_subject_revokes_nothing_and_exits_0() {
    let target = AttackStack::start_with_tap(|c| c).await;
    let (alice, _, _) = login_with_tokens(&target, USER).await;

    let out =
        admin(&target.stack, &["revoke", "--sub", "nobody-has-this-sub"], auth_env(&target.stack)).await;

    assert_eq!(summary(&out), counts(0, 0, 0, 0), "stderr: {}", out.stderr);
    assert_eq!(bff_status(&target, &alice, "/bff/user").await, 200);
}

#[tokio::test]
async fn an_unreachable_store_or_missing_setting_fails_with_one_line_and_no_secret() {
    let target = AttackStack::start_with_tap(|c| c).await;
    let stack = &target.stack;
    let (alice, _, _) = login_with_tokens(&target, USER).await;
    let sub = target.stack.sub_of(&alice).await;
    let secret = "store-password-never-printed";
    let mut unreachable = auth_env(stack);
    unreachable.retain(|(k, _)| k != "CLOAKROOM_AUTH_SERVER__REDIS_URL");
    let port = common::redis::free_port();
    unreachable
        .push(("CLOAKROOM_AUTH_SERVER__REDIS_URL".into(), format!("redis://:{secret}@127.0.0.1:{port}/0")));
    let mut keyless = auth_env(stack);
    keyless.retain(|(k, _)| k != "CLOAKROOM_AUTH_SERVER__SIGNING_KEY_FILE");

    let no_store = admin(stack, &["revoke", "--sub", &sub], unreachable).await;
    let no_key = admin(stack, &["revoke", "--sub", &sub], keyless).await;
    let no_target = admin(stack, &["revoke"], auth_env(stack)).await;

    assert_ne!(no_store.code, Some(0));
    assert_eq!(no_store.stdout, "");
    assert_eq!(no_store.stderr.trim().lines().count(), 1, "one line: {}", no_store.stderr);
    assert!(no_store.stderr.contains("store"), "{}", no_store.stderr);
    assert!(
        !no_store.stderr.contains(secret) && !no_store.stderr.contains("panicked"),
        "{}",
        no_store.stderr
    );
    assert_ne!(no_key.code, Some(0));
    assert!(no_key.stderr.contains("auth_server.signing_key_file"), "{}", no_key.stderr);
    assert_ne!(no_target.code, Some(0));
    assert!(no_target.stderr.contains("--sub"), "{}", no_target.stderr);
    assert_eq!(bff_status(&target, &alice, "/bff/user").await, 200, "nothing was revoked");
}

/// The auth server's store key `key` (namespace included) and what the shared Redis holds there.
fn stored(stack: &Stack, key: &str) -> (String, Option<Vec<u8>>) {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().expect("namespace");
    let full = format!("{ns}:{key}");
    let value = common::redis::shared().dump().into_iter().find(|(k, _)| *k == full).map(|(_, v)| v);
    (full, value)
}

/// The grant ids in the auth server's store.
fn grant_ids(stack: &Stack) -> Vec<String> {
    let prefix = format!("{}:as:grant:", stack.doc["auth_server"]["redis_namespace"].as_str().expect("ns"));
    let mut ids: Vec<String> = common::redis::shared()
        .dump()
        .into_iter()
        .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_subject_index_of_a_grant_expires_with_the_grant() {
    let cfg = StackConfig::new().set("auth_server.refresh_token_ttl_secs", json!(2));
    let stack = common::apps::start_auth_server(cfg).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let sub =
        claims(tokens["id_token"].as_str().expect("id_token"))["sub"].as_str().expect("sub").to_string();
    let gid = grant_ids(&stack).pop().expect("one grant");
    let (grant_key, _) = stored(&stack, &format!("as:grant:{gid}"));
    let (index_key, members) = stored(&stack, &format!("as:sub-grants:{sub}"));
    assert_eq!(members.as_deref(), Some(gid.as_bytes()), "the index holds the grant");
    let redis = common::redis::shared();
    let (grant_ttl, index_ttl) = (redis.ttl(&grant_key).expect("grant TTL"), redis.ttl(&index_key));
    assert!(index_ttl.is_some_and(|t| t <= grant_ttl + 1), "index {index_ttl:?} vs grant {grant_ttl}");

    let deadline = Instant::now() + Duration::from_secs(6);
    while stored(&stack, &format!("as:grant:{gid}")).1.is_some() {
        assert!(Instant::now() < deadline, "the grant never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Redis expires the index at the next whole second after its last member.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while stored(&stack, &format!("as:sub-grants:{sub}")).1.is_some() {
        assert!(Instant::now() < deadline, "the subject index outlived its grant");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_revoked_grant_leaves_the_subject_index_and_the_others_stay() {
    let stack = common::apps::start_auth_server(StackConfig::new()).await;
    let first = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let _second = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let sub = claims(first["id_token"].as_str().expect("id_token"))["sub"].as_str().expect("sub").to_string();
    let before = grant_ids(&stack);
    assert_eq!(before.len(), 2);

    let res = reqwest::Client::new()
        .post(format!("{}/revoke", stack.auth_url))
        .basic_auth(common::CLIENT_ID, Some(stack.client_secret()))
        .form(&[("token", first["refresh_token"].as_str().expect("rt"))])
        .send()
        .await
        .expect("revoke");

    assert_eq!(res.status(), 200);
    let after = grant_ids(&stack);
    assert_eq!(after.len(), 1);
    let (_, members) = stored(&stack, &format!("as:sub-grants:{sub}"));
    assert_eq!(members.as_deref(), Some(after[0].as_bytes()), "only the live grant is indexed");
}
