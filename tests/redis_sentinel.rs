//! The store and the BFF on a master found through Redis Sentinel (a master, one replica and
//! three real sentinels): the whole flow works, the event bus follows the master through a
//! failover (announcing the gap), and a master crash mid-run loses no session.

mod common;

use cloakroom::config::{RedisUrl, StoreConfig};
use cloakroom::store::{Event, Store};
use common::oidc_flow::bff_login;
use common::redis::unique_namespace;
use common::redis_sentinel::{MASTER_NAME, RedisSentinel, shared_sentinel};
use common::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

fn sentinel_config(sentinel: &RedisSentinel, namespace: &str) -> StoreConfig {
    StoreConfig {
        redis_sentinel_urls: sentinel
            .urls()
            .into_iter()
            .map(|u| RedisUrl::try_from(u).expect("url"))
            .collect(),
        redis_sentinel_master: Some(MASTER_NAME.to_string()),
        redis_namespace: namespace.to_string(),
        redis_timeout_ms: 1000,
        ..StoreConfig::default()
    }
}

/// A stack whose three programs keep their state on the master `sentinel` names.
fn on_sentinel(sentinel: &RedisSentinel) -> StackConfig {
    let mut cfg = StackConfig::on_redis(None);
    for section in ["auth_server", "resource_server", "bff"] {
        cfg = cfg
            .set(&format!("{section}.redis_sentinel_urls"), json!(sentinel.urls()))
            .set(&format!("{section}.redis_sentinel_master"), json!(MASTER_NAME));
    }
    cfg
}

async fn wait_ready(url: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{url}/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

async fn call(browser: &Browser, base: &str, path: &str) -> Page {
    browser.send(browser.request(Method::GET, &format!("{base}{path}")).header("X-CSRF", "1")).await
}

/// Publishes probes from `store` until one comes back on `rx`: the subscription is live.
async fn wait_subscribed(store: &Store, rx: &mut Receiver<Event>) {
    for _ in 0..200 {
        store.publish("probe", b"").await.ok();
        if let Ok(Ok(Event::Message { channel, .. })) =
            tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
            && channel == "probe"
        {
            return;
        }
    }
    panic!("subscription never became active");
}

#[tokio::test]
async fn the_whole_bff_flow_runs_on_sentinel_with_one_refresh_per_expiry_across_two_instances() {
    let sentinel = shared_sentinel();
    let cfg = on_sentinel(sentinel)
        .set("auth_server.access_token_ttl_secs", json!(2))
        .set("bff.refresh_skew_secs", json!(1));
    let bff_doc = cfg.doc["bff"].clone();
    let stack = Stack::start(cfg).await;
    wait_ready(&stack.bff_url).await;
    let second = {
        let cfg: cloakroom::config::BffConfig =
            cloakroom::config::ConfigSource::from_toml_str("").set("bff", &bff_doc).section("bff").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let app = cloakroom::bff::Application::build_with_listener(cfg, listener).await.unwrap();
        tokio::spawn(app.run_until_stopped());
        wait_ready(&url).await;
        url
    };
    let browser = Browser::new();

    let login = bff_login(&browser, &stack, USER, "/app/").await;
    assert_eq!(login.status, 302, "{}", login.body);
    let first = call(&browser, &stack.bff_url, "/api/whoami").await;
    assert_eq!(first.status, 200, "{}", first.body);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let calls = (0..20).map(|i| {
        let base = if i % 2 == 0 { stack.bff_url.clone() } else { second.clone() };
        let browser = &browser;
        async move { call(browser, &base, "/api/whoami").await }
    });
    let pages = futures_util::future::join_all(calls).await;

    for p in &pages {
        assert_eq!(p.status, 200, "{}: {}", p.url, p.body);
    }
    let jtis: std::collections::HashSet<String> = pages.iter().map(|p| p.json()["jti"].to_string()).collect();
    assert_eq!(jtis.len(), 1, "one refresh, shared by both instances");
    assert!(!jtis.contains(&first.json()["jti"].to_string()));
    let logout = browser
        .send(
            browser
                .request(Method::POST, &format!("{}/bff/logout", stack.bff_url))
                .header("X-CSRF", "1")
                .header("Origin", stack.bff_url.clone()),
        )
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(call(&browser, &second, "/bff/user").await.status, 401, "ended on every instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sentinel_failover_the_event_bus_announces_lost_and_hears_the_new_master() {
    let sentinel = RedisSentinel::start();
    sentinel.wait_quorum();
    let ns = unique_namespace("ev");
    let publisher = Store::connect(&sentinel_config(&sentinel, &ns), "a").await.unwrap();
    let listener = Store::connect(&sentinel_config(&sentinel, &ns), "b").await.unwrap();
    let mut rx = listener.events().subscribe();
    wait_subscribed(&listener, &mut rx).await;
    let old = sentinel.master();

    tokio::task::block_in_place(|| {
        sentinel.failover();
        sentinel.wait_master_is(sentinel.other(old));
        // Until Sentinel demotes the old master, clients still connected to it stay there; the
        // demotion closes their connections.
        sentinel.wait_replica(old);
    });

    let lost = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(Event::Lost) => return true,
                Ok(Event::Message { .. }) => continue,
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(lost, Ok(true), "the broken subscription is announced");
    let mut heard = None;
    for _ in 0..100 {
        publisher.publish("session-ended", b"after").await.ok();
        if let Ok(Ok(Event::Message { channel, payload })) =
            tokio::time::timeout(Duration::from_millis(100), rx.recv()).await
            && channel == "session-ended"
        {
            heard = Some(payload);
            break;
        }
    }
    assert_eq!(heard.as_deref(), Some(&b"after"[..]), "resubscribed on the new master");
    let on_new: Option<Vec<u8>> = {
        publisher
            .set("written-after", b"x", Duration::from_secs(60))
            .await
            .expect("writes reach the new master");
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", sentinel.other(old))).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("GET").arg(format!("{ns}:written-after")).query_async(&mut conn).await.unwrap()
    };
    assert_eq!(on_new.as_deref(), Some(&b"x"[..]), "the pool now writes to the promoted node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_crash_mid_run_loses_no_session_and_requests_answer_200_or_503_meanwhile() {
    let sentinel = RedisSentinel::start();
    sentinel.wait_quorum();
    let stack = Stack::start(on_sentinel(&sentinel)).await;
    wait_ready(&stack.bff_url).await;
    let browser = Browser::new();
    let login = bff_login(&browser, &stack, USER, "/app/").await;
    assert_eq!(login.status, 302, "{}", login.body);
    let master = sentinel.master();
    tokio::task::block_in_place(|| sentinel.wait_replicated());

    let requests = async {
        let mut statuses = Vec::new();
        for _ in 0..30 {
            let page = call(&browser, &stack.bff_url, "/api/whoami").await;
            if page.status != 200 {
                assert_eq!(page.json()["error"], "store_unavailable", "{}", page.body);
            }
            statuses.push(page.status.as_u16());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        statuses
    };
    let failover = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sentinel.kill(master);
        // Polled, not waited for on this thread: the requests go on meanwhile.
        let promoted = sentinel.other(master);
        for _ in 0..300 {
            if sentinel.is_master(promoted) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the sentinels never promoted the replica");
    };
    let (statuses, ()) = tokio::join!(requests, failover);

    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "the crash was noticed: {statuses:?}");
    let mut resumed = false;
    for _ in 0..50 {
        let page = call(&browser, &stack.bff_url, "/api/whoami").await;
        if page.status == 200 {
            resumed = true;
            break;
        }
        assert_eq!(page.json()["error"], "store_unavailable", "{}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(resumed, "the store resumed on the promoted replica: {statuses:?}");
    let user = call(&browser, &stack.bff_url, "/bff/user").await;
    assert_eq!(user.status, 200, "the session survived the failover: {}", user.body);
}
