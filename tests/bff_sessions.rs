//! The user's session list and control (`GET /bff/sessions`, `DELETE /bff/sessions/{id}`,
//! `POST /bff/logout?scope=all`), index hygiene, timeouts at the provider's word, refresh-token
//! reuse ending the BFF session through back-channel logout, and the client-binding policy —
//! all against the real auth server and a real Redis.

mod common;

use common::apps::start_second_bff;
use common::browser::{assert_error_code, call_with};
use common::oidc_flow::token_request;
use common::redis::shared;
use common::{Browser, CLIENT_ID, OTHER_USER, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

async fn stack_with(tweak: impl FnOnce(StackConfig) -> StackConfig) -> Stack {
    Stack::start_ready(tweak(StackConfig::new())).await
}

async fn user_status(browser: &Browser, base: &str) -> u16 {
    call_with(browser, Method::GET, &format!("{base}/bff/user")).await.status.as_u16()
}

async fn sessions(browser: &Browser, stack: &Stack) -> Vec<Value> {
    let page = stack.api_get(browser, "/bff/sessions").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()["sessions"].as_array().unwrap().clone()
}

fn current_id(list: &[Value]) -> String {
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == json!(true)).collect();
    assert_eq!(current.len(), 1, "exactly one current session: {list:?}");
    current[0]["id"].as_str().unwrap().to_string()
}

/// Keys of the BFF's store (without its namespace) that start with `prefix`.
fn bff_keys(stack: &Stack, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let ns = format!("{}:", stack.doc["bff"]["redis_namespace"].as_str().unwrap());
    shared()
        .dump()
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&ns).map(|k| (k.to_string(), v)))
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

/// The refresh tokens held by the BFF's sessions, read through the library with the
/// configured session key (the test stands where an attacker with the store and the key
/// would).
fn stored_refresh_tokens(stack: &Stack) -> Vec<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stack.doc["bff"]["session_key"].as_str().unwrap())
        .unwrap();
    let keys = cloakroom::bff::keys::Keys::derive(&[raw.try_into().unwrap()], None);
    bff_keys(stack, "tokens:")
        .into_iter()
        .filter_map(|(k, v)| {
            let (record, _) = cloakroom::bff::tokens::open_tokens(&keys, &k, &v)?;
            record.refresh_token.map(|t| t.expose().to_string())
        })
        .collect()
}

fn provider_grants(stack: &Stack) -> usize {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().unwrap().to_string();
    shared().dump().into_iter().filter(|(k, _)| k.starts_with(&format!("{ns}:as:grant:"))).count()
}

async fn eventually_unauthenticated(browser: &Browser, base: &str) -> u16 {
    let mut status = 200;
    for _ in 0..100 {
        status = user_status(browser, base).await;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    status
}

#[tokio::test]
async fn the_session_list_shows_only_my_sessions_marks_the_current_one_and_never_the_cookie() {
    let stack = stack_with(|c| c).await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;

    let list = sessions(&laptop, &stack).await;

    assert_eq!(list.len(), 2, "alice's two sessions only: {list:?}");
    let me = current_id(&list);
    assert_ne!(me, current_id(&sessions(&phone, &stack).await), "each browser sees its own as current");
    let cookie = laptop.session_cookie().unwrap();
    let bobs = current_id(&sessions(&bob, &stack).await);
    for s in &list {
        let id = s["id"].as_str().unwrap();
        assert_eq!(id.len(), 22, "an opaque random id: {s}");
        assert!(!cookie.contains(id) && !id.contains(&cookie), "the id is not the cookie value");
        assert_ne!(id, bobs);
        assert_eq!(s["ip_range"], "127.0.0.0/24", "only the coarse range is kept: {s}");
        assert!(s["user_agent"].is_string() && s["created_at"].as_i64().unwrap() > 0, "{s}");
        assert!(s["last_seen"].as_i64().unwrap() >= s["created_at"].as_i64().unwrap(), "{s}");
    }
    let no_header = laptop.send(laptop.request(Method::GET, &stack.bff("/bff/sessions"))).await;
    assert_error_code(&no_header, 403, "csrf");
    assert_error_code(&stack.api_get(&Browser::new(), "/bff/sessions").await, 401, "unauthenticated");
}

#[tokio::test]
async fn ending_one_of_my_sessions_ends_it_on_every_instance_and_revokes_its_refresh_token() {
    let stack = stack_with(|c| c).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let phone_id = current_id(&sessions(&phone, &stack).await);
    assert_eq!(provider_grants(&stack), 3);

    let page = stack.api(&laptop, Method::DELETE, &format!("/bff/sessions/{phone_id}"), None).await;

    assert_eq!(page.status, 204, "{}", page.body);
    assert_eq!(user_status(&phone, &stack.bff_url).await, 401);
    assert_eq!(user_status(&phone, &second).await, 401);
    assert_eq!(user_status(&laptop, &second).await, 200, "the caller's own session is untouched");
    assert_eq!(user_status(&bob, &stack.bff_url).await, 200);
    assert_eq!(sessions(&laptop, &stack).await.len(), 1);
    assert_eq!(provider_grants(&stack), 2, "the ended session's grant was revoked at the provider");
}

#[tokio::test]
async fn another_users_session_id_or_an_unknown_one_is_404_and_touches_nothing() {
    let stack = stack_with(|c| c).await;
    let alice = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let bobs = current_id(&sessions(&bob, &stack).await);

    for id in [bobs.as_str(), "AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "%2a"] {
        let page = stack.api(&alice, Method::DELETE, &format!("/bff/sessions/{id}"), None).await;
        assert_error_code(&page, 404, "not_found");
    }
    let no_header =
        alice.send(alice.request(Method::DELETE, &format!("{}/bff/sessions/{bobs}", stack.bff_url))).await;
    assert_error_code(&no_header, 403, "csrf");

    assert_eq!(user_status(&bob, &stack.bff_url).await, 200, "bob's session survives");
    assert_eq!(user_status(&alice, &stack.bff_url).await, 200);
    assert_eq!(provider_grants(&stack), 2);
}

#[tokio::test]
async fn ending_my_current_session_by_id_logs_this_browser_out() {
    let stack = stack_with(|c| c).await;
    let alice = stack.login_as(USER).await;
    let me = current_id(&sessions(&alice, &stack).await);

    let page = stack.api(&alice, Method::DELETE, &format!("/bff/sessions/{me}"), None).await;

    assert_eq!(page.status, 204, "{}", page.body);
    assert_eq!(user_status(&alice, &stack.bff_url).await, 401);
    assert_eq!(provider_grants(&stack), 0);
}

#[tokio::test]
async fn logout_with_scope_all_ends_every_session_of_the_user_and_only_those() {
    let stack = stack_with(|c| c).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let laptop = stack.login_as(USER).await;
    let phone = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;

    let page = stack.api(&laptop, Method::POST, "/bff/logout?scope=all", None).await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.json()["logout_url"].is_string());
    for base in [&stack.bff_url, &second] {
        assert_eq!(user_status(&laptop, base).await, 401);
        assert_eq!(user_status(&phone, base).await, 401);
        assert_eq!(user_status(&bob, base).await, 200);
    }
    assert_eq!(provider_grants(&stack), 1, "both of alice's refresh tokens were revoked, bob's kept");
    let bad = stack.api(&bob, Method::POST, "/bff/logout?scope=everything", None).await;
    assert_error_code(&bad, 400, "invalid_request");
    assert_eq!(user_status(&bob, &stack.bff_url).await, 200, "an unknown scope ends nothing");
}

#[tokio::test]
async fn index_members_of_sessions_that_died_are_pruned_and_index_keys_expire_with_the_sessions() {
    let stack = stack_with(|c| {
        c.set("bff.session.idle_timeout_secs", json!(3)).set("bff.session.absolute_timeout_secs", json!(30))
    })
    .await;
    let active = stack.login_as(USER).await;
    let idle = stack.login_as(USER).await;
    assert_eq!(bff_keys(&stack, "session:").len(), 2);
    let index_len = || -> usize {
        let idx = bff_keys(&stack, "idx:sub:");
        assert_eq!(idx.len(), 1, "one subject index");
        let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap();
        let mut conn = redis::Client::open(shared().url()).unwrap().get_connection().unwrap();
        redis::cmd("ZCARD").arg(format!("{ns}:{}", idx[0].0)).query(&mut conn).unwrap()
    };
    assert_eq!(index_len(), 2);

    // The idle one times out while the other stays active (expiry is kept in whole seconds,
    // so every margin here is at least 0.8 s).
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(user_status(&active, &stack.bff_url).await, 200);
    }
    assert_eq!(bff_keys(&stack, "session:").len(), 1, "the idle session's key expired");
    let list = sessions(&active, &stack).await;

    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(index_len(), 1, "the dead member was pruned when listed");
    assert_eq!(user_status(&idle, &stack.bff_url).await, 401);
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap();
    let mut conn = redis::Client::open(shared().url()).unwrap().get_connection().unwrap();
    for (key, _) in bff_keys(&stack, "idx:") {
        let ttl: i64 = redis::cmd("TTL").arg(format!("{ns}:{key}")).query(&mut conn).unwrap();
        assert!(ttl > 0 && ttl <= 31, "index {key} expires with its longest session (ttl {ttl})");
    }
}

#[tokio::test]
async fn a_refresh_token_revoked_at_the_provider_ends_the_session_at_its_next_refresh() {
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(2)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let alice = stack.login_as(USER).await;
    let refresh = stored_refresh_tokens(&stack);
    assert_eq!(refresh.len(), 1);
    let revoked = reqwest::Client::new()
        .post(format!("{}/revoke", stack.auth_url))
        .basic_auth(CLIENT_ID, Some(stack.client_secret()))
        .form(&[("token", refresh[0].as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(user_status(&alice, &stack.bff_url).await, 200, "alive until its next refresh");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&alice, "/api/whoami").await;

    assert_error_code(&page, 401, "session_expired");
    assert_error_code(&stack.user(&alice).await, 401, "unauthenticated");
}

#[tokio::test]
async fn a_reused_refresh_token_at_the_auth_server_ends_the_bff_session_on_both_instances() {
    let stack = stack_with(|c| {
        c.set("auth_server.access_token_ttl_secs", json!(2)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let second = start_second_bff(&stack, |_| {}).await;
    let alice = stack.login_as(USER).await;
    let bob = stack.login_as(OTHER_USER).await;
    let before: Vec<String> = stored_refresh_tokens(&stack);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Alice's session refreshes: her first refresh token is now a rotated one.
    assert_eq!(stack.api_get(&alice, "/api/whoami").await.status, 200);
    let after = stored_refresh_tokens(&stack);
    let consumed: Vec<&String> = before.iter().filter(|t| !after.contains(t)).collect();
    assert_eq!(consumed.len(), 1, "exactly alice's token rotated");

    let (status, body) =
        token_request(&stack, &[("grant_type", "refresh_token"), ("refresh_token", consumed[0])]).await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(eventually_unauthenticated(&alice, &stack.bff_url).await, 401, "ended within 5 s");
    assert_eq!(user_status(&alice, &second).await, 401);
    assert_eq!(user_status(&bob, &second).await, 200, "bob's login is untouched");
}

/// Log lines of the `security_event` target, captured for the binding tests.
static SECURITY_LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static SUBSCRIBER: OnceLock<()> = OnceLock::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SECURITY_LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_security_events() {
    SUBSCRIBER.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("security_event=warn"))
            .with_writer(|| Capture)
            .try_init();
    });
}

fn security_events_about(public_id: &str) -> Vec<String> {
    let log = String::from_utf8(SECURITY_LOG.lock().unwrap().clone()).unwrap();
    log.lines().filter(|l| l.contains(public_id)).map(str::to_string).collect()
}

/// Logs in (no User-Agent), then calls `/bff/user` as Firefox: the user-agent family changed.
async fn used_from_another_browser(binding: &str) -> (u16, Vec<String>, Browser, Stack) {
    capture_security_events();
    let stack = stack_with(|c| c.set("bff.session.client_binding", json!(binding))).await;
    let alice = stack.login_as(USER).await;
    let id = current_id(&sessions(&alice, &stack).await);
    let req = alice
        .request(Method::GET, &stack.bff("/bff/user"))
        .header("X-CSRF", "1")
        .header("User-Agent", "Mozilla/5.0 (X11; rv:121.0) Gecko/20100101 Firefox/121.0");
    let status = alice.send(req).await.status.as_u16();
    (status, security_events_about(&id), alice, stack)
}

#[tokio::test]
async fn with_client_binding_off_a_new_user_agent_family_is_neither_flagged_nor_ended() {
    let (status, events, _, _) = used_from_another_browser("off").await;

    assert_eq!(status, 200);
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn with_client_binding_flag_a_new_user_agent_family_is_logged_and_the_session_goes_on() {
    let (status, events, alice, stack) = used_from_another_browser("flag").await;

    assert_eq!(status, 200);
    assert!(!events.is_empty(), "a security event was logged");
    assert!(
        events[0].contains("session_client_changed") && events[0].contains("\"ua_changed\":true"),
        "{}",
        events[0]
    );
    let cookie = alice.session_cookie().unwrap();
    assert!(!events[0].contains(&cookie), "no secret in the event");
    assert_eq!(user_status(&alice, &stack.bff_url).await, 200, "the original client goes on too");
}

#[tokio::test]
async fn with_client_binding_end_a_new_user_agent_family_ends_the_session() {
    let (status, events, alice, stack) = used_from_another_browser("end").await;

    assert_eq!(status, 401);
    assert!(events.iter().any(|e| e.contains("\"action\":\"end\"")), "{events:?}");
    assert_eq!(user_status(&alice, &stack.bff_url).await, 401, "ended for every client");
    assert!(bff_keys(&stack, "session:").is_empty(), "the session is gone from the store");
}
