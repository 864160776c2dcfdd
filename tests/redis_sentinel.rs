//! The store and the BFF on a master found through Redis Sentinel (a master, one replica and
//! three real sentinels): the whole flow works, the event bus follows the master through a
//! failover (announcing the gap), and a master crash mid-run loses no session.

mod common;

use cloakroom::store::{Event, Store};
use common::StackConfig;
use common::apps::provider_grants;
use common::browser::assert_error_code;
use common::failover;
use common::redis::{unique_namespace, wait_subscribed};
use common::redis_sentinel::{MASTER_NAME, RedisSentinel, shared_sentinel};
use serde_json::json;
use std::time::Duration;

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

#[tokio::test]
async fn the_whole_bff_flow_runs_on_sentinel_with_one_refresh_per_expiry_across_two_instances() {
    failover::one_refresh_per_expiry_across_two_instances(on_sentinel(shared_sentinel())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sentinel_failover_the_event_bus_announces_lost_and_hears_the_new_master() {
    let sentinel = RedisSentinel::start();
    sentinel.wait_quorum();
    let ns = unique_namespace("ev");
    let publisher = Store::connect(&sentinel.store_config(&ns), "a").await.unwrap();
    let listener = Store::connect(&sentinel.store_config(&ns), "b").await.unwrap();
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
    let (stack, browser) = failover::start_logged_in(on_sentinel(&sentinel)).await;
    let master = sentinel.master();
    tokio::task::block_in_place(|| sentinel.wait_replicated());

    let master_fails = async {
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
    let statuses = failover::whoami_during(&stack, &browser, master_fails).await;

    assert!(statuses.contains(&503), "the crash was noticed: {statuses:?}");
    failover::assert_the_session_survived(&stack, &browser, &statuses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_wait_replicas_a_refresh_waits_for_the_replica_and_sends_nothing_to_the_provider_while_it_stalls()
 {
    // Its own deployment: the replica is frozen mid-test. Tokens live 3 s and are due 2 s
    // before they expire.
    let sentinel = RedisSentinel::start();
    sentinel.wait_quorum();
    let cfg = on_sentinel(&sentinel)
        .set("bff.redis_wait_replicas", json!(1))
        .set("bff.redis_timeout_ms", json!(1000))
        .set("bff.redis_wait_timeout_ms", json!(300))
        .set("auth_server.access_token_ttl_secs", json!(3))
        .set("bff.refresh_skew_secs", json!(2));
    let (stack, browser) = failover::start_logged_in(cfg).await;
    let first = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replica = sentinel.other(sentinel.master());

    sentinel.pause(replica);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let due = stack.api_get(&browser, "/api/whoami").await;
    tokio::time::sleep(Duration::from_millis(1900)).await;
    let expired = stack.api_get(&browser, "/api/whoami").await;
    let grants_meanwhile = provider_grants(&stack.auth_url, "refresh_token").await;
    sentinel.resume(replica);
    tokio::task::block_in_place(|| sentinel.wait_replicated());
    let resumed = stack.api_get(&browser, "/api/whoami").await;

    assert_eq!(due.status, 200, "a due token that is still valid still serves: {}", due.body);
    assert_eq!(due.json()["jti"], first.json()["jti"], "the same token: no refresh went through");
    assert_error_code(&expired, 503, "store_unavailable");
    let asked = grants_meanwhile.ok() + grants_meanwhile.refused();
    assert_eq!(asked, 0, "the refresh token never left for the provider: {grants_meanwhile:?}");
    assert_eq!(resumed.status, 200, "the token was put back and refreshed after all: {}", resumed.body);
    assert_ne!(resumed.json()["jti"], first.json()["jti"], "a new access token");
    let grants = provider_grants(&stack.auth_url, "refresh_token").await;
    assert_eq!((grants.ok(), grants.refused()), (1, 0), "{grants:?}");
}
