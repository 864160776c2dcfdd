//! Single-flight refresh across requests and instances: two BFF instances on one Redis share a
//! session, and however many requests arrive after the access token expired, the provider sees
//! exactly one refresh per expiry and never a reused refresh token. Provider outages keep the
//! session; a waiter that runs out of time answers 503 and never refreshes a second time.

mod common;

use common::apps::{metrics, provider_grants, start_second_bff};
use common::browser::{assert_error_code, call, call_spread};
use common::{Stack, StackConfig, USER};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Access tokens that live 2 s and are refreshed 1 s before they expire: tests wait for a
/// refresh to be due.
fn short_lived_tokens(cfg: StackConfig) -> StackConfig {
    cfg.set("auth_server.access_token_ttl_secs", json!(2)).set("bff.refresh_skew_secs", json!(1))
}

#[tokio::test]
async fn fifty_parallel_calls_on_two_instances_after_each_expiry_cause_exactly_one_refresh() {
    let cfg = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(3))
        .set("bff.refresh_skew_secs", json!(1));
    let stack = Stack::start_ready(cfg).await;
    let second = start_second_bff(&stack, |_| {}).await;
    let browser = stack.login_as(USER).await;

    for round in 1..=3u64 {
        // Past the access token's expiry: nobody may use the old one any more.
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let pages = call_spread(&browser, &[&stack.bff_url, &second], 52, "/api/whoami").await;
        for p in &pages {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        let jtis: std::collections::HashSet<String> =
            pages.iter().map(|p| p.json()["jti"].to_string()).collect();
        assert_eq!(jtis.len(), 1, "round {round}: every call used the one refreshed token");
        let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
        assert_eq!(refreshes.ok(), round, "round {round}: {refreshes:?}");
        assert_eq!(refreshes.refused(), 0, "no reused refresh token: {refreshes:?}");
    }
    let waited = metrics(&second).await;
    assert!(waited.contains("cloakroom_token_refresh_wait_seconds_count "), "{waited}");
}

/// A reverse proxy in front of the auth server (which is configured with the proxy's URL as
/// its issuer) that answers refresh-token grants with the queued failures, or delays them.
/// A hook run once by [`StubProvider`].
type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;

struct StubProvider {
    url: String,
    failures: Arc<Mutex<VecDeque<u16>>>,
    delay: Arc<Mutex<Duration>>,
    /// Runs once, after the real provider answered a refresh and before that answer is passed on.
    after_refresh: Hook,
}

async fn stub_provider(listener: std::net::TcpListener, target: String) -> StubProvider {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let failures: Arc<Mutex<VecDeque<u16>>> = Arc::default();
    let delay: Arc<Mutex<Duration>> = Arc::default();
    let after_refresh: Hook = Arc::default();
    let (f, d, a) = (failures.clone(), delay.clone(), after_refresh.clone());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let server = HttpServer::new(move || {
        let (f, d, a, http, target) = (f.clone(), d.clone(), a.clone(), http.clone(), target.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (f, d, a, http, target) = (f.clone(), d.clone(), a.clone(), http.clone(), target.clone());
            async move {
                let is_refresh = String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
                if is_refresh {
                    if let Some(status) = f.lock().unwrap().pop_front() {
                        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .insert_header(("Retry-After", "1"))
                            .json(json!({"error": "temporarily_unavailable"}));
                    }
                    let delay = *d.lock().unwrap();
                    tokio::time::sleep(delay).await;
                }
                let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
                let mut out = http.request(method, format!("{target}{}", req.uri()));
                for (name, value) in req.headers() {
                    if name != "host" && name != "content-length" {
                        out = out.header(name.as_str(), value.as_bytes());
                    }
                }
                let res = out.body(body.to_vec()).send().await.unwrap();
                let hook = if is_refresh { a.lock().unwrap().take() } else { None };
                if let Some(hook) = hook {
                    hook();
                }
                let mut answer = HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(res.status().as_u16()).unwrap(),
                );
                for (name, value) in res.headers() {
                    if !["content-length", "transfer-encoding", "connection"].contains(&name.as_str()) {
                        answer.append_header((name.as_str(), value.as_bytes()));
                    }
                }
                answer.body(res.bytes().await.unwrap())
            }
        }))
    })
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    StubProvider { url, failures, delay, after_refresh }
}

/// A stack whose auth server is reached only through a [`StubProvider`].
async fn stack_behind_stub(tweak: impl FnOnce(StackConfig) -> StackConfig) -> (Stack, StubProvider) {
    let cfg = StackConfig::new();
    let real = cfg.doc["auth_server"]["issuer"].as_str().unwrap().to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stub = stub_provider(listener, real).await;
    let cfg = cfg
        .set("auth_server.issuer", json!(stub.url))
        .set("resource_server.issuer", json!(stub.url))
        .set("bff.oidc.issuer", json!(stub.url));
    let stack = Stack::start_ready(tweak(cfg)).await;
    (stack, stub)
}

#[tokio::test]
async fn a_stub_provider_answering_503_and_429_to_a_refresh_keeps_the_session_and_a_later_refresh_succeeds() {
    let (stack, stub) = stack_behind_stub(short_lived_tokens).await;
    let browser = stack.login_as(USER).await;
    assert_eq!(stack.api_get(&browser, "/api/whoami").await.status, 200);
    // On a busy machine the login can take longer than the token's refresh skew, so that call
    // may already have refreshed: count from here.
    let before = provider_grants(&stack.auth_url, "refresh_token").await.ok();

    stub.failures.lock().unwrap().extend([503, 429]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..2 {
        let page = stack.api_get(&browser, "/api/whoami").await;
        assert_error_code(&page, 503, "auth_server_unavailable");
        assert!(page.header("retry-after").is_some());
        assert_eq!(stack.user(&browser).await.status, 200, "session kept");
    }
    assert!(stub.failures.lock().unwrap().is_empty(), "both failures were answered");

    let page = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(page.status, 200, "the provider is back: {}", page.body);
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!(refreshes.ok() - before, 1, "{refreshes:?}");
    assert_eq!(refreshes.refused(), 0, "{refreshes:?}");
    let metrics = metrics(&stack.bff_url).await;
    assert!(metrics.contains("cloakroom_token_refresh_total{outcome=\"unavailable\"} 2"), "{metrics}");
}

#[tokio::test]
async fn a_waiter_on_another_instance_that_runs_out_of_time_gets_503_and_never_refreshes_itself() {
    let (stack, stub) = stack_behind_stub(short_lived_tokens).await;
    let impatient = start_second_bff(&stack, |doc| doc["refresh_wait_ms"] = json!(300)).await;
    let browser = stack.login_as(USER).await;

    *stub.delay.lock().unwrap() = Duration::from_millis(1500);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let slow = stack.api_get(&browser, "/api/whoami");
    let waiter = async {
        // Let the first instance take the lock.
        tokio::time::sleep(Duration::from_millis(200)).await;
        call(&browser, &impatient, "/api/whoami").await
    };
    let (slow, waiter) = tokio::join!(slow, waiter);
    assert_eq!(slow.status, 200, "{}", slow.body);
    assert_error_code(&waiter, 503, "auth_server_unavailable");

    *stub.delay.lock().unwrap() = Duration::ZERO;
    let after = call(&browser, &impatient, "/api/whoami").await;
    assert_eq!(after.status, 200, "the waiter's session is intact: {}", after.body);
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!(refreshes.ok(), 1, "{refreshes:?}");
    assert_eq!(refreshes.refused(), 0, "{refreshes:?}");
    let metrics = metrics(&impatient).await;
    assert!(metrics.contains("cloakroom_token_refresh_total{outcome=\"wait_timeout\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_lock_left_by_a_crashed_instance_delays_the_refresh_only_until_it_expires() {
    let stack = Stack::start_ready(short_lived_tokens(StackConfig::new())).await;
    let browser = stack.login_as(USER).await;
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap().to_string();
    let tokens_prefix = format!("{ns}:tokens:");
    let hashed = common::redis::shared()
        .dump()
        .into_iter()
        .find_map(|(k, _)| k.strip_prefix(&tokens_prefix).map(str::to_string))
        .expect("the session's token record");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    // An instance took the lock and died: no release, no notice.
    let client = redis::Client::open(common::redis::shared().url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{ns}:refresh-lock:{hashed}"))
        .arg("crashed-owner")
        .arg("PX")
        .arg(1000)
        .query(&mut conn)
        .unwrap();
    let started = std::time::Instant::now();
    let page = stack.api_get(&browser, "/api/whoami").await;

    assert_eq!(page.status, 200, "{}", page.body);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(800), "waited for the lock to expire: {waited:?}");
    assert!(waited < Duration::from_millis(3000), "woke at the lock's expiry: {waited:?}");
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!((refreshes.ok(), refreshes.refused()), (1, 0), "{refreshes:?}");
}

#[tokio::test]
async fn a_lock_taken_by_a_store_call_that_timed_out_is_released_once_the_store_wakes_up() {
    let redis = common::redis::RedisServer::start();
    let stack =
        Stack::start_ready(short_lived_tokens(StackConfig::new()).set("bff.redis_url", json!(redis.url())))
            .await;
    let browser = stack.login_as(USER).await;
    // Session and tokens in the near cache: taking the refresh lock is the first store call.
    assert_eq!(stack.api_get(&browser, "/api/whoami").await.status, 200);
    // A slow login may already have been refreshed by that call: count from here.
    let before = provider_grants(&stack.auth_url, "refresh_token").await.ok();
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // Redis stalls: the lock's SET NX times out here and runs when Redis wakes up, leaving a
    // lock (15 s by default) that no request holds.
    redis.pause();
    let stalled = stack.api_get(&browser, "/api/whoami").await;
    redis.resume();
    assert_error_code(&stalled, 503, "store_unavailable");
    let started = std::time::Instant::now();
    let page = stack.api_get(&browser, "/api/whoami").await;

    assert_eq!(page.status, 200, "{}", page.body);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "not held up until the orphaned lock expires: {waited:?}");
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!((refreshes.ok() - before, refreshes.refused()), (1, 0), "{refreshes:?}");
}

#[tokio::test]
async fn a_refresh_token_taken_by_a_write_that_timed_out_but_ran_later_is_put_back_stalling_proxy() {
    let redis = common::redis::RedisServer::start();
    let proxy = common::stall_proxy::StallProxy::start(redis.port()).await;
    let stack =
        Stack::start_ready(short_lived_tokens(StackConfig::new()).set("bff.redis_url", json!(proxy.url())))
            .await;
    let browser = stack.login_as(USER).await;
    // A first refresh: Redis then knows the swap script (as it would in production; the
    // first-ever call of a script fails with NOSCRIPT, which would spoil the late run).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(stack.api_get(&browser, "/api/whoami").await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // The refresh's write-ahead (the first script call: lock, read, then the swap that takes
    // the refresh token out) times out here (the harness's store timeout is 1 s) and reaches
    // Redis 600 ms after that.
    proxy.stall_next_script(Duration::from_millis(1600));
    let stalled = stack.api_get(&browser, "/api/whoami").await;
    assert_error_code(&stalled, 503, "store_unavailable");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;

    assert_eq!(page.status, 200, "the session survives: {}", page.body);
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!((refreshes.ok(), refreshes.refused()), (2, 0), "{refreshes:?}");
}

#[tokio::test]
async fn rotated_tokens_that_cannot_be_stored_end_the_session_rather_than_keep_the_consumed_refresh_token() {
    let (stack, stub) = stack_behind_stub(short_lived_tokens).await;
    let browser = stack.login_as(USER).await;
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap().to_string();
    let tokens_key = common::redis::shared()
        .dump()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with(&format!("{ns}:tokens:")))
        .expect("the session's token record");

    *stub.delay.lock().unwrap() = Duration::from_millis(1000);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refreshing = stack.api_get(&browser, "/api/whoami");
    let meddle = async {
        // While the provider rotates the refresh token, the stored record changes under us.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let client = redis::Client::open(common::redis::shared().url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let _: () = redis::cmd("SET").arg(&tokens_key).arg("replaced").query(&mut conn).unwrap();
    };
    let (page, ()) = tokio::join!(refreshing, meddle);

    assert_error_code(&page, 401, "session_expired");
    assert!(
        common::redis::shared().dump().iter().all(|(k, _)| k != &tokens_key),
        "no token record is left behind"
    );
    assert_error_code(&stack.user(&browser).await, 401, "unauthenticated");
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!((refreshes.ok(), refreshes.refused()), (1, 0), "{refreshes:?}");
}

#[tokio::test]
async fn a_stub_provider_that_crashes_redis_before_answering_a_refresh_gets_503_then_a_clean_session_end_never_a_reused_token()
 {
    let redis = Arc::new(common::redis::RedisServer::start_persistent());
    let (stack, stub) = stack_behind_stub(|c| {
        short_lived_tokens(c)
            .set("bff.refresh_lock_ttl_ms", json!(2000))
            .set("bff.redis_url", json!(redis.url()))
    })
    .await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().expect("session cookie");

    // The provider rotates the refresh token; the BFF's Redis dies before the answer arrives.
    let crashing = redis.clone();
    *stub.after_refresh.lock().unwrap() = Some(Box::new(move || crashing.stop()));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;

    assert_error_code(&page, 503, "store_unavailable");
    assert!(page.header("retry-after").is_some());
    assert_eq!(browser.session_cookie(), Some(cookie), "a store error is no logout");
    assert!(stub.after_refresh.lock().unwrap().is_none(), "the provider answered the refresh");

    // Redis comes back with everything it had written (append-only file); the lock expires.
    redis.restart();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = stack.api_get(&browser, "/api/whoami").await;
    assert_error_code(&page, 401, "session_expired");
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!(refreshes.ok(), 1, "{refreshes:?}");
    assert_eq!(refreshes.refused(), 0, "the consumed refresh token was never sent again: {refreshes:?}");
}
