//! The near cache of the hot path (issue 7): in steady state a proxied request makes no Redis
//! command, a miss costs one round trip, and whatever ends or changes a session on one
//! instance (logout, back-channel logout, a refresh) reaches every other instance within
//! 100 ms. When the event bus drops, the cache is flushed, so a session deleted meanwhile is
//! refused. Two real BFF instances share one real Redis; the Redis command counts come from
//! `INFO commandstats` of a Redis private to the test.

mod common;

use cloakroom::bff::session::SESSION_COOKIE;
use common::apps::{metrics, provider_grants, start_second_bff};
use common::redis::RedisServer;
use common::{CLIENT_ID, Stack, StackConfig, USER};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The bound issue 7 sets for an ended session to be refused everywhere.
const BOUND: Duration = Duration::from_millis(100);

/// A stack whose BFF alone uses `redis` (auth and resource server keep their state in
/// memory), so that every command counted there comes from the BFF.
async fn stack_on(redis: &RedisServer, tweak: impl FnOnce(StackConfig) -> StackConfig) -> Stack {
    let cfg = tweak(StackConfig::on_redis(None).set("bff.redis_url", json!(redis.url())));
    Stack::start_ready(cfg).await
}

/// What `GET /api/whoami` answered.
struct Answer {
    status: u16,
    body: serde_json::Value,
}

impl Answer {
    fn jti(&self) -> Option<&str> {
        self.body["jti"].as_str()
    }
}

/// `GET {base}/api/whoami` with exactly this session cookie (independent of any jar, so a
/// logout elsewhere cannot make the browser forget it), on one shared keep-alive client so
/// that polling is fast.
async fn whoami(base: &str, cookie: &str) -> Answer {
    static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(reqwest::Client::new);
    let res = HTTP
        .get(format!("{base}/api/whoami"))
        .header("X-CSRF", "1")
        .header("Cookie", format!("{SESSION_COOKIE}={cookie}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, body }
}

/// `cloakroom_near_cache_lookups_total{outcome="hit"}` of the instance at `base`.
async fn cache_hits(base: &str) -> u64 {
    let text = metrics(base).await;
    text.lines()
        .find_map(|l| l.strip_prefix("cloakroom_near_cache_lookups_total{outcome=\"hit\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Calls the API at `base` until the instance answers from its near cache (its event bus is
/// subscribed and the session and tokens are cached); returns the `jti` it uses.
async fn warm(base: &str, cookie: &str) -> String {
    for _ in 0..100 {
        let before = cache_hits(base).await;
        let page = whoami(base, cookie).await;
        assert_eq!(page.status, 200, "{}", page.body);
        if cache_hits(base).await >= before + 2 {
            return page.jti().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{base} never answered from its near cache");
}

/// Polls `base` with `cookie` until `done(page)`; returns how long that took from `since`.
async fn until(
    base: &str,
    cookie: &str,
    since: Instant,
    done: impl Fn(&Answer) -> bool,
) -> (Duration, Answer) {
    loop {
        let page = whoami(base, cookie).await;
        if done(&page) {
            return (since.elapsed(), page);
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "never happened; last: {} {}",
            page.status,
            page.body
        );
    }
}

/// Per-command call counts of `INFO commandstats`, without the commands a test or a
/// (re)connection sends itself.
fn commandstats(redis: &RedisServer) -> BTreeMap<String, u64> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn).unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .filter(|(name, _)| {
            !matches!(name.as_str(), "info" | "psubscribe" | "hello" | "select")
                && !name.starts_with("client")
        })
        .collect()
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn pubsub_clients(redis: &RedisServer) -> usize {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg("pubsub").query(&mut conn).unwrap();
    list.lines().filter(|l| !l.trim().is_empty()).count()
}

/// Waits until `instances` event-bus subscriptions are in place.
async fn wait_subscribed(redis: &RedisServer, instances: usize) {
    let since = Instant::now();
    while pubsub_clients(redis) < instances {
        assert!(since.elapsed() < Duration::from_secs(5), "the event bus never (re)subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Subscribed at the server; give the instance a moment to take note.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Kills every pub/sub connection (the instances' event-bus subscriptions).
fn kill_pubsub(redis: &RedisServer) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut conn).unwrap();
}

/// The store keys of this namespace matching `pattern` (e.g. `*:session:*`).
fn keys(redis: &RedisServer, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_instance_is_refused_on_another_within_100ms() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;
    let b = start_second_bff(&stack, |_| {}).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().expect("session cookie");
    warm(&stack.bff_url, &cookie).await;
    warm(&b, &cookie).await;

    let logout = stack.logout(&browser).await;
    let done = Instant::now();

    assert_eq!(logout.status, 200, "{}", logout.body);
    let (elapsed, page) = until(&b, &cookie, done, |p| p.status != 200).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(elapsed < BOUND, "the other instance still served the session after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_on_one_instance_is_refused_on_another_within_100ms() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;
    let b = start_second_bff(&stack, |_| {}).await;
    let browser = stack.login_as(USER).await;
    let cookie = browser.session_cookie().expect("session cookie");
    let sub = stack.sub_of(&browser).await;
    warm(&stack.bff_url, &cookie).await;
    warm(&b, &cookie).await;
    let now = cloakroom::clock::now();
    let claims = json!({
        "iss": stack.auth_url, "aud": CLIENT_ID, "iat": now, "exp": now + 120, "sub": sub,
        "jti": cloakroom::crypto::random_token(16),
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let token = stack.signing_key.sign("logout+jwt", &claims).unwrap();

    let answer = reqwest::Client::new()
        .post(stack.bff("/bff/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    let done = Instant::now();

    assert_eq!(answer.status(), 200);
    let (elapsed, page) = until(&b, &cookie, done, |p| p.status != 200).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(elapsed < BOUND, "the other instance still served the session after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_on_one_instance_is_used_by_another_within_100ms_which_never_refreshes_itself() {
    let redis = RedisServer::start();
    // A refreshes 6 s before expiry, B only at expiry: B's cached token is still good for B,
    // so only the invalidation can make B switch to A's new one.
    let stack = stack_on(&redis, |c| {
        c.set("auth_server.access_token_ttl_secs", json!(10)).set("bff.refresh_skew_secs", json!(6))
    })
    .await;
    let b = start_second_bff(&stack, |doc| doc["refresh_skew_secs"] = json!(0)).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("session cookie");
    let first = warm(&b, &cookie).await;
    assert_eq!(warm(&stack.bff_url, &cookie).await, first);
    tokio::time::sleep(Duration::from_millis(5200)).await;

    let refreshed = whoami(&stack.bff_url, &cookie).await;
    let done = Instant::now();

    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let second = refreshed.jti().unwrap().to_string();
    assert_ne!(second, first, "A refreshed");
    let (elapsed, page) = until(&b, &cookie, done, |p| p.jti() != Some(&first)).await;
    assert_eq!(page.jti(), Some(second.as_str()), "{}", page.body);
    assert!(elapsed < BOUND, "the other instance used the old token for {elapsed:?}");
    let refreshes = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!(
        (refreshes.ok(), refreshes.refused()),
        (1, 0),
        "exactly one refresh, no token reused: {refreshes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_requests_in_steady_state_make_no_redis_command_and_a_miss_makes_one() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("session cookie");
    warm(&stack.bff_url, &cookie).await;

    let before = commandstats(&redis);
    for _ in 0..20 {
        assert_eq!(whoami(&stack.bff_url, &cookie).await.status, 200);
    }
    let steady = delta(&before, &commandstats(&redis));

    assert!(steady.is_empty(), "20 proxied requests in steady state sent {steady:?}");

    // A gap on the event bus flushes the cache; once subscribed again, the next request
    // reads the session and its tokens in one round trip.
    kill_pubsub(&redis);
    wait_subscribed(&redis, 1).await;
    // The command connection is reopened after a bus gap; open it before counting.
    assert!(stack_ping(&stack).await);
    let before = commandstats(&redis);
    assert_eq!(whoami(&stack.bff_url, &cookie).await.status, 200);
    let miss = delta(&before, &commandstats(&redis));

    assert_eq!(miss, BTreeMap::from([("mget".to_string(), 1)]), "one round trip for session and tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_proxied_request_of_a_session_on_another_instance_makes_one_round_trip() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;
    let b = start_second_bff(&stack, |_| {}).await;
    wait_subscribed(&redis, 2).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("session cookie");
    // The login announced which token record belongs to the new session.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let before = commandstats(&redis);
    assert_eq!(whoami(&b, &cookie).await.status, 200);
    let first = delta(&before, &commandstats(&redis));

    assert_eq!(first, BTreeMap::from([("mget".to_string(), 1)]), "session and tokens in one round trip");
}

/// `/readyz` of the stack's BFF answers (it pings the store).
async fn stack_ping(stack: &Stack) -> bool {
    reqwest::get(stack.bff("/readyz")).await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_event_bus_drops_the_cache_is_flushed_and_a_session_deleted_meanwhile_is_refused() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("session cookie");
    warm(&stack.bff_url, &cookie).await;
    // Deleted behind the cache's back (no invalidation is announced): the cache still serves it.
    let mut deleted = keys(&redis, "*:session:*");
    deleted.extend(keys(&redis, "*:tokens:*"));
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: i64 = redis::cmd("DEL").arg(&deleted).query(&mut conn).unwrap();
    assert_eq!(whoami(&stack.bff_url, &cookie).await.status, 200, "served from the near cache");

    kill_pubsub(&redis);
    let since = Instant::now();

    let (elapsed, page) = until(&stack.bff_url, &cookie, since, |p| p.status != 200).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(elapsed < Duration::from_secs(1), "flushed only after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_a_typical_jwt_pair_takes_less_than_2_kb_in_redis() {
    let redis = RedisServer::start();
    let stack = stack_on(&redis, |c| c).await;

    let cookie = stack.login_as(USER).await.session_cookie().expect("session cookie");

    assert!(cookie.len() <= 100, "cookie value of {} bytes", cookie.len());
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut total = 0;
    for pattern in ["*:session:*", "*:tokens:*"] {
        let found = keys(&redis, pattern);
        assert_eq!(found.len(), 1, "{pattern}: {found:?}");
        let len: usize = redis::cmd("STRLEN").arg(&found[0]).query(&mut conn).unwrap();
        total += len;
    }
    assert!(total <= 2048, "session and token record take {total} bytes");
}
