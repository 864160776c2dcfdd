//! The store and the BFF on a real Redis Cluster: the keys of one session share a slot, the
//! whole flow (login, refresh single-flight across two instances with pub/sub wake-ups, logout)
//! works, and a master failover mid-run loses no session.

mod common;

use cloakroom::config::StoreConfig;
use cloakroom::store::Store;
use common::StackConfig;
use common::failover;
use common::redis::unique_namespace;
use common::redis_cluster::{RedisCluster, shared_cluster};
use serde_json::json;
use std::time::Duration;

/// A stack whose three programs keep their state on `cluster`.
fn on_cluster(cluster: &RedisCluster) -> StackConfig {
    let mut cfg = StackConfig::on_redis(None);
    for section in ["auth_server", "resource_server", "bff"] {
        cfg = cfg.set(&format!("{section}.redis_cluster_urls"), json!(cluster.urls()));
    }
    cfg
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
    let store = Store::connect(&cluster.store_config(&ns), "test").await.unwrap();

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
    failover::one_refresh_per_expiry_across_two_instances(on_cluster(shared_cluster())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_mid_run_loses_no_session_and_requests_answer_200_or_503_meanwhile() {
    let cluster = RedisCluster::start(3, 1);
    let (stack, browser) = failover::start_logged_in(on_cluster(&cluster)).await;
    let ns = stack.doc["bff"]["redis_namespace"].as_str().unwrap().to_string();
    let (master, _) =
        keys_with_prefix(&cluster, &format!("{ns}:session:")).pop().expect("the session record");
    cluster.wait_replicated(master);

    let master_fails = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let replica = cluster.replica_of(master);
        cluster.kill(master);
        tokio::task::block_in_place(|| {
            cluster.take_over(replica);
            cluster.wait_healthy();
        });
    };
    let statuses = failover::whoami_during(&stack, &browser, master_fails).await;

    failover::assert_the_session_survived(&stack, &browser, &statuses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_wait_replicas_a_replicated_swap_returns_once_the_keys_replica_acknowledged_it() {
    let cluster = RedisCluster::start(3, 1);
    let config = StoreConfig {
        redis_wait_replicas: 1,
        redis_wait_timeout_ms: 300,
        redis_timeout_ms: 2000,
        ..cluster.store_config(&unique_namespace("wait"))
    };
    let store = Store::connect(&config, "cluster").await.expect("cluster store");
    store.set("tokens:abc", b"v1", Duration::from_secs(60)).await.unwrap();

    let swapped =
        store.compare_and_swap_replicated("tokens:abc", b"v1", b"v2", Duration::from_secs(60)).await;

    assert!(matches!(swapped, Ok(true)), "{swapped:?}");
    let key = format!("{}:tokens:{{abc}}", config.redis_namespace);
    let replica = cluster.replica_of(cluster.master_of(&key));
    let client = redis::Client::open(format!("redis://127.0.0.1:{replica}/")).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = redis::cmd("READONLY").query(&mut conn).unwrap();
    let on_replica: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!(on_replica.as_deref(), Some(&b"v2"[..]), "the replica holds the swapped value");
}
