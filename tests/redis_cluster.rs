//! The store and the BFF on a real Redis Cluster: the keys of one session share a slot, the
//! whole flow (login, refresh single-flight across two instances with pub/sub wake-ups, logout)
//! works, and a master failover mid-run loses no session.

mod common;

use cloakroom::config::{RedisUrl, StoreConfig};
use cloakroom::store::Store;
use common::oidc_flow::bff_login;
use common::redis::unique_namespace;
use common::redis_cluster::{RedisCluster, shared_cluster};
use common::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

fn cluster_config(urls: &[String], namespace: &str) -> StoreConfig {
    StoreConfig {
        redis_cluster_urls: urls.iter().map(|u| RedisUrl::try_from(u.clone()).expect("url")).collect(),
        redis_namespace: namespace.to_string(),
        redis_timeout_ms: 1000,
        ..StoreConfig::default()
    }
}

/// A stack whose three programs keep their state on `cluster`.
fn on_cluster(cluster: &RedisCluster) -> StackConfig {
    let mut cfg = StackConfig::on_redis(None);
    for section in ["auth_server", "resource_server", "bff"] {
        cfg = cfg.set(&format!("{section}.redis_cluster_urls"), json!(cluster.urls()));
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

/// Keys of the cluster (on every running master) that start with `prefix`.
fn keys_with_prefix(cluster: &RedisCluster, prefix: &str) -> Vec<(u16, String)> {
    cluster
        .masters()
        .into_iter()
        .flat_map(|port| {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut conn = client.get_connection().unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn).unwrap();
            keys.into_iter().map(move |k| (port, k))
        })
        .collect()
}

#[tokio::test]
async fn the_records_of_one_session_live_in_one_slot_on_one_master() {
    let cluster = shared_cluster();
    let ns = unique_namespace("slots");
    let store = Store::connect(&cluster_config(&cluster.urls(), &ns), "test").await.unwrap();

    for kind in ["session", "tokens", "refresh-lock"] {
        store.set(&format!("{kind}:hashed-id"), b"v", Duration::from_secs(60)).await.unwrap();
    }

    let keys = keys_with_prefix(cluster, &ns);
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|(port, _)| *port == keys[0].0), "one master: {keys:?}");
    let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
    assert!(names.contains(&format!("{ns}:tokens:{{hashed-id}}").as_str()), "{names:?}");
}

#[tokio::test]
async fn the_whole_bff_flow_runs_on_a_cluster_with_one_refresh_per_expiry_across_two_instances() {
    let cluster = shared_cluster();
    let cfg = on_cluster(cluster)
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
async fn a_master_failover_mid_run_loses_no_session_and_requests_answer_200_or_503_meanwhile() {
    let cluster = RedisCluster::start(3, 1);
    let stack = Stack::start(on_cluster(&cluster)).await;
    wait_ready(&stack.bff_url).await;
    let browser = Browser::new();
    let login = bff_login(&browser, &stack, USER, "/app/").await;
    assert_eq!(login.status, 302, "{}", login.body);
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap().to_string();
    let (master, _) =
        keys_with_prefix(&cluster, &format!("{ns}:session:")).pop().expect("the session record");
    cluster.wait_replicated(master);

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
        let replica = cluster.replica_of(master);
        cluster.kill(master);
        tokio::task::block_in_place(|| {
            cluster.take_over(replica);
            cluster.wait_healthy();
        });
    };
    let (statuses, ()) = tokio::join!(requests, failover);

    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
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
    assert!(resumed, "the store resumed on the new master: {statuses:?}");
    let user = call(&browser, &stack.bff_url, "/bff/user").await;
    assert_eq!(user.status, 200, "the session survived the failover: {}", user.body);
}
