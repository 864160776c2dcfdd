//! `cloakroom sessions list|revoke`: the real binary against a test stack's Redis, configured
//! through the environment (and a file), ending sessions on every instance like a back-channel
//! logout.

mod common;

use common::apps::start_second_bff;
use common::binary::run;
use common::browser::call;
use common::{Browser, OTHER_USER, Stack, StackConfig, USER};
use serde_json::Value;
use std::time::Duration;

async fn started_stack() -> Stack {
    Stack::start_ready(StackConfig::new()).await
}

async fn second_instance(stack: &Stack) -> String {
    start_second_bff(stack, |_| {}).await
}

/// Status of a proxied API call: served from the instance's near cache once warm.
async fn api_status(browser: &Browser, base: &str) -> u16 {
    call(browser, base, "/api/whoami").await.status.as_u16()
}

async fn user(browser: &Browser, base: &str) -> (u16, Value) {
    let page = call(browser, base, "/bff/user").await;
    let body = if page.status == 200 { page.json() } else { Value::Null };
    (page.status.as_u16(), body)
}

/// The BFF section of `stack` as `CLOAKROOM_BFF__…` variables.
fn bff_env(stack: &Stack) -> Vec<(String, String)> {
    let bff = &stack.doc["bff"];
    let s = |v: &Value| v.as_str().unwrap().to_string();
    vec![
        ("CLOAKROOM_BFF__PUBLIC_URL".into(), s(&bff["public_url"])),
        ("CLOAKROOM_BFF__REDIS_URL".into(), s(&bff["redis_url"])),
        ("CLOAKROOM_BFF__REDIS_NAMESPACE".into(), s(&bff["redis_namespace"])),
        ("CLOAKROOM_BFF__SESSION_KEY".into(), s(&bff["session_key"])),
        ("CLOAKROOM_BFF__OIDC__ISSUER".into(), s(&bff["oidc"]["issuer"])),
        ("CLOAKROOM_BFF__OIDC__CLIENT_ID".into(), s(&bff["oidc"]["client_id"])),
        ("CLOAKROOM_BFF__OIDC__CLIENT_SECRET".into(), s(&bff["oidc"]["client_secret"])),
    ]
}

#[tokio::test]
async fn sessions_list_prints_each_live_session_of_the_subject_as_one_json_line() {
    let stack = started_stack().await;
    let laptop = stack.login_as(USER).await;
    let _phone = stack.login_as(USER).await;
    let _bob = stack.login_as(OTHER_USER).await;
    let sub = stack.sub_of(&laptop).await;

    let out = run(&["sessions", "list", "--sub", &sub], bff_env(&stack)).await;

    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "alice's two sessions: {}", out.stdout);
    let cookie = laptop.session_cookie().unwrap();
    for l in &lines {
        assert_eq!(l["id"].as_str().unwrap().len(), 22, "{l}");
        assert_eq!(l["ip_range"], "127.0.0.0/24");
    }
    assert!(!out.stdout.contains(&cookie), "no cookie value is printed");
    let nobody = run(&["sessions", "list", "--sub", "nobody"], bff_env(&stack)).await;
    assert_eq!((nobody.code, nobody.stdout.as_str()), (Some(0), ""), "{}", nobody.stderr);
}

#[tokio::test]
async fn sessions_revoke_by_sub_ends_them_on_every_instance_and_spares_other_users() {
    let stack = started_stack().await;
    let second = second_instance(&stack).await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let sub = stack.sub_of(&laptop).await;
    for base in [&stack.bff_url, &second] {
        assert_eq!(api_status(&laptop, base).await, 200, "warms {base}'s near cache");
    }

    let out = run(&["sessions", "revoke", "--sub", &sub], bff_env(&stack)).await;

    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ended 2 session(s)");
    // The CLI keeps no cache, yet announces what it deleted: the running instances' near
    // caches must drop the session (this proxied call would otherwise be served from them).
    for base in [&stack.bff_url, &second] {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while api_status(&laptop, base).await != 401 {
            assert!(std::time::Instant::now() < deadline, "{base} still serves a revoked session");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for base in [&stack.bff_url, &second] {
        assert_eq!(user(&laptop, base).await.0, 401);
        assert_eq!(user(&phone, base).await.0, 401);
        assert_eq!(user(&bob, base).await.0, 200);
    }
}

#[tokio::test]
async fn sessions_revoke_by_sid_reads_a_config_file_and_ends_only_that_provider_session() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    // The provider session id, as the BFF holds it, read through the library.
    let sid = provider_sid_of_only_session(&stack, &alice, &bob).await;
    let env = bff_env(&stack);
    let toml: String = env
        .iter()
        .filter(|(k, _)| !k.contains("__OIDC__"))
        .map(|(k, v)| format!("{} = \"{v}\"\n", k.trim_start_matches("CLOAKROOM_BFF__").to_lowercase()))
        .collect();
    let oidc: String = env
        .iter()
        .filter(|(k, _)| k.contains("__OIDC__"))
        .map(|(k, v)| format!("{} = \"{v}\"\n", k.trim_start_matches("CLOAKROOM_BFF__OIDC__").to_lowercase()))
        .collect();
    let path =
        std::env::temp_dir().join(format!("cloakroom-sessions-{}.toml", cloakroom::crypto::random_token(8)));
    std::fs::write(&path, format!("[bff]\n{toml}\n[bff.oidc]\n{oidc}")).unwrap();

    let out = run(&["--config", path.to_str().unwrap(), "sessions", "revoke", "--sid", &sid], vec![]).await;
    let _ = std::fs::remove_file(&path);

    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "ended 1 session(s)");
    assert_eq!(user(&alice, &stack.bff_url).await.0, 401);
    assert_eq!(user(&bob, &stack.bff_url).await.0, 200);
}

/// Alice's provider `sid`: the one session record whose subject is not bob's.
async fn provider_sid_of_only_session(stack: &Stack, alice: &Browser, bob: &Browser) -> String {
    use base64::Engine;
    let alice_sub = stack.sub_of(alice).await;
    assert_ne!(user(bob, &stack.bff_url).await.1["sub"].as_str().unwrap(), alice_sub);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stack.doc["bff"]["session_key"].as_str().unwrap())
        .unwrap();
    let keys = cloakroom::bff::keys::Keys::derive(&[raw.try_into().unwrap()], None);
    let cfg: cloakroom::config::BffConfig = cloakroom::config::ConfigSource::from_toml_str("")
        .set("bff", &stack.doc["bff"])
        .section("bff")
        .unwrap();
    let store = cloakroom::store::Store::connect(&cfg.store, "test").await.unwrap();
    let sessions = cloakroom::bff::session::BffSessionStore::new(store.clone(), keys);
    let live = cloakroom::bff::session::sessions_of(&sessions, &alice_sub).await.unwrap();
    assert_eq!(live.len(), 1);
    live[0].record.sid.clone().expect("the auth server sends a sid")
}

#[tokio::test]
async fn sessions_revoke_without_a_target_or_with_an_unreachable_store_fails_with_one_line() {
    let stack = started_stack().await;
    let alice = stack.login_as(USER).await;

    let no_target = run(&["sessions", "revoke"], bff_env(&stack)).await;
    let mut env = bff_env(&stack);
    let port = common::redis::free_port();
    env.retain(|(k, _)| k != "CLOAKROOM_BFF__REDIS_URL");
    env.push(("CLOAKROOM_BFF__REDIS_URL".into(), format!("redis://127.0.0.1:{port}/0")));
    let no_store = run(&["sessions", "revoke", "--sub", "x"], env).await;
    let mut no_key = bff_env(&stack);
    no_key.retain(|(k, _)| k != "CLOAKROOM_BFF__SESSION_KEY");
    let missing_key = run(&["sessions", "list", "--sub", "x"], no_key).await;

    assert_ne!(no_target.code, Some(0));
    assert!(no_target.stderr.contains("--sub") || no_target.stderr.contains("--sid"), "{}", no_target.stderr);
    assert_ne!(no_store.code, Some(0));
    assert_eq!(no_store.stderr.trim().lines().count(), 1, "one line: {}", no_store.stderr);
    assert!(!no_store.stderr.contains("panicked"));
    assert_ne!(missing_key.code, Some(0));
    assert!(missing_key.stderr.contains("bff.session_key"), "{}", missing_key.stderr);
    assert_eq!(user(&alice, &stack.bff_url).await.0, 200, "nothing was ended");
}
