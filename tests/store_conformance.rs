//! One conformance suite for every store back-end: every test body runs on the in-memory
//! store, on Redis (the binary's private server, a fresh namespace per test), on a real
//! 3-master Redis Cluster and on a master found through three real Sentinels, so they cannot
//! drift apart. Outage and namespacing tests, which only make sense for Redis,
//! follow the suite.

mod common;

use cloakroom::config::{RedisUrl, StoreConfig};
use cloakroom::store::{Store, StoreError};
use common::redis::{RedisServer, shared, unique_namespace};
use std::time::{Duration, Instant};

/// A TTL short enough to wait out in a test.
const SHORT: Duration = Duration::from_millis(300);
/// Long enough to outlive any test.
const LONG: Duration = Duration::from_secs(60);

fn redis_config(url: &str, namespace: &str, timeout_ms: u64) -> StoreConfig {
    let url = RedisUrl::try_from(url.to_string()).expect("redis url");
    StoreConfig {
        redis_url: Some(url),
        redis_namespace: namespace.to_string(),
        redis_timeout_ms: timeout_ms,
        ..StoreConfig::default()
    }
}

async fn redis_store_on(url: &str, namespace: &str, timeout_ms: u64) -> Store {
    Store::connect(&redis_config(url, namespace, timeout_ms), "conformance").await.expect("redis store")
}

async fn redis_store() -> Store {
    redis_store_on(&shared().url(), &unique_namespace("conf"), 1000).await
}

async fn cluster_store() -> Store {
    let config = common::redis_cluster::shared_cluster().store_config(&unique_namespace("conf"));
    Store::connect(&config, "conformance").await.expect("cluster store")
}

async fn sentinel_store() -> Store {
    let config = common::redis_sentinel::shared_sentinel().store_config(&unique_namespace("conf"));
    Store::connect(&config, "conformance").await.expect("sentinel store")
}

fn memory_store() -> Store {
    Store::memory(&unique_namespace("conf"))
}

/// Waits out `ttl` plus a margin for timer and clock granularity.
async fn outlive(ttl: Duration) {
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
}

/// Whole seconds since the epoch, as the index API takes them.
fn now() -> i64 {
    cloakroom::clock::now()
}

/// Sleeps until the wall clock has passed `unix` (so a member expiring then is expired).
async fn sleep_past(unix: i64) {
    let target = std::time::UNIX_EPOCH + Duration::from_secs(unix as u64) + Duration::from_millis(50);
    if let Ok(left) = target.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

/// Declares each test body once and runs it as `<name>::on_memory`, `<name>::on_redis`,
/// `<name>::on_cluster` and `<name>::on_sentinel`.
macro_rules! conformance {
    ($( $(#[$doc:meta])* async fn $name:ident($store:ident: Store) $body:block )*) => {
        $(
            $(#[$doc])*
            mod $name {
                use super::*;

                async fn body($store: Store) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_memory() {
                    body(memory_store()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_redis() {
                    body(redis_store().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_cluster() {
                    body(cluster_store().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn on_sentinel() {
                    body(sentinel_store().await).await;
                }
            }
        )*
    };
}

conformance! {
    async fn a_stored_value_is_read_back_byte_for_byte(store: Store) {
        let value = [0u8, 1, 2, 255, b'\n', 0];
        store.set("k", &value, LONG).await.unwrap();

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&value[..]));
        assert_eq!(store.get("other").await.unwrap(), None, "an unknown key is absent");
    }

    async fn an_empty_value_is_still_a_value(store: Store) {
        store.set("k", b"", LONG).await.unwrap();

        assert_eq!(store.get("k").await.unwrap(), Some(Vec::new()));
        assert!(!store.set_nx("k", b"x", LONG).await.unwrap(), "an empty value occupies its key");
    }

    async fn a_value_disappears_after_its_ttl(store: Store) {
        store.set("k", b"v", SHORT).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]), "present before its ttl");

        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.ttl("k").await.unwrap(), None);
    }

    async fn set_replaces_the_value_and_its_ttl(store: Store) {
        store.set("k", b"old", SHORT).await.unwrap();

        store.set("k", b"new", LONG).await.unwrap();
        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
    }

    async fn set_nx_stores_only_when_the_key_is_absent(store: Store) {
        assert!(store.set_nx("k", b"first", LONG).await.unwrap());

        assert!(!store.set_nx("k", b"second", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"first"[..]));
    }

    async fn set_nx_succeeds_again_once_the_value_has_expired(store: Store) {
        assert!(store.set_nx("k", b"first", SHORT).await.unwrap());
        outlive(SHORT).await;

        assert!(store.set_nx("k", b"second", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"second"[..]));
    }

    async fn set_nx_gives_its_ttl_to_the_value(store: Store) {
        assert!(store.set_nx("k", b"v", SHORT).await.unwrap());

        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn only_one_of_many_concurrent_set_nx_wins(store: Store) {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.set_nx("lock", format!("{i}").as_bytes(), LONG).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }

        assert_eq!(winners, 1);
    }

    async fn get_del_returns_the_value_exactly_once(store: Store) {
        store.set("code", b"v", LONG).await.unwrap();

        assert_eq!(store.get_del("code").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(store.get_del("code").await.unwrap(), None, "a second use finds nothing");
        assert_eq!(store.get("code").await.unwrap(), None);
    }

    async fn get_del_of_an_absent_or_expired_key_finds_nothing(store: Store) {
        assert_eq!(store.get_del("never").await.unwrap(), None);
        store.set("k", b"v", SHORT).await.unwrap();
        outlive(SHORT).await;

        assert_eq!(store.get_del("k").await.unwrap(), None);
    }

    async fn of_two_concurrent_get_dels_exactly_one_gets_the_value(store: Store) {
        for round in 0..10 {
            let key = format!("code-{round}");
            store.set(&key, b"v", LONG).await.unwrap();
            let (a, b) = (store.clone(), store.clone());
            let (ka, kb) = (key.clone(), key.clone());

            let (ra, rb) = tokio::join!(
                tokio::spawn(async move { a.get_del(&ka).await.unwrap() }),
                tokio::spawn(async move { b.get_del(&kb).await.unwrap() }),
            );

            let got: Vec<_> = [ra.unwrap(), rb.unwrap()].into_iter().flatten().collect();
            assert_eq!(got, vec![b"v".to_vec()], "round {round}: exactly one winner");
        }
    }

    async fn del_reports_whether_the_key_existed(store: Store) {
        store.set("k", b"v", LONG).await.unwrap();

        assert!(store.del("k").await.unwrap());
        assert!(!store.del("k").await.unwrap(), "already deleted");
        assert!(!store.del("never").await.unwrap(), "never existed");
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn del_of_an_expired_key_reports_false(store: Store) {
        store.set("k", b"v", SHORT).await.unwrap();
        outlive(SHORT).await;

        assert!(!store.del("k").await.unwrap());
    }

    async fn compare_and_swap_replaces_a_matching_value(store: Store) {
        store.set("k", b"v1", LONG).await.unwrap();

        assert!(store.compare_and_swap("k", b"v1", b"v2", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
        assert!(
            !store.compare_and_swap("k", b"v1", b"v3", LONG).await.unwrap(),
            "the old value no longer matches"
        );
    }

    async fn a_replicated_compare_and_swap_without_replicas_to_wait_for_is_a_compare_and_swap(store: Store) {
        store.set("k", b"v1", LONG).await.unwrap();

        assert!(store.compare_and_swap_replicated("k", b"v1", b"v2", LONG).await.unwrap());
        assert!(!store.compare_and_swap_replicated("k", b"v1", b"v3", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    }

    async fn compare_and_swap_with_a_wrong_expected_value_changes_nothing(store: Store) {
        store.set("k", b"current", LONG).await.unwrap();

        assert!(!store.compare_and_swap("k", b"stale", b"new", SHORT).await.unwrap());

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"current"[..]));
        let ttl = store.ttl("k").await.unwrap().expect("still present");
        assert!(ttl > Duration::from_secs(50), "its ttl is untouched too: {ttl:?}");
    }

    async fn compare_and_swap_on_an_absent_key_fails_and_creates_nothing(store: Store) {
        assert!(!store.compare_and_swap("k", b"", b"new", LONG).await.unwrap());
        assert!(!store.compare_and_swap("k", b"x", b"new", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn compare_and_swap_on_an_expired_key_fails(store: Store) {
        store.set("k", b"v1", SHORT).await.unwrap();
        outlive(SHORT).await;

        assert!(!store.compare_and_swap("k", b"v1", b"v2", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn compare_and_swap_sets_the_new_ttl(store: Store) {
        store.set("k", b"v1", LONG).await.unwrap();

        assert!(store.compare_and_swap("k", b"v1", b"v2", SHORT).await.unwrap());
        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn of_twenty_concurrent_compare_and_swaps_from_one_value_exactly_one_wins(store: Store) {
        store.set("k", b"v0", LONG).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let new = format!("v-{i}");
                    let won = store.compare_and_swap("k", b"v0", new.as_bytes(), LONG).await.unwrap();
                    won.then_some(new)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }

        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        assert_eq!(store.get("k").await.unwrap(), Some(winners[0].clone().into_bytes()));
    }

    async fn compare_and_delete_deletes_only_a_matching_value(store: Store) {
        store.set("lock", b"mine", LONG).await.unwrap();

        assert!(!store.compare_and_delete("lock", b"theirs").await.unwrap());
        assert_eq!(store.get("lock").await.unwrap().as_deref(), Some(&b"mine"[..]), "kept");

        assert!(store.compare_and_delete("lock", b"mine").await.unwrap());
        assert_eq!(store.get("lock").await.unwrap(), None);
        assert!(!store.compare_and_delete("lock", b"mine").await.unwrap(), "already gone");
    }

    async fn compare_and_delete_of_an_absent_key_is_false(store: Store) {
        assert!(!store.compare_and_delete("never", b"").await.unwrap());
        assert!(!store.compare_and_delete("never", b"x").await.unwrap());
    }

    async fn ttl_reports_the_remaining_lifetime(store: Store) {
        assert_eq!(store.ttl("never").await.unwrap(), None);
        store.set("k", b"v", Duration::from_secs(10)).await.unwrap();

        let ttl = store.ttl("k").await.unwrap().expect("present");

        assert!(ttl <= Duration::from_secs(10), "{ttl:?}");
        assert!(ttl > Duration::from_secs(9), "{ttl:?}");
    }

    async fn expire_extends_a_live_key(store: Store) {
        store.set("k", b"v", SHORT).await.unwrap();

        assert!(store.expire("k", Duration::from_secs(10)).await.unwrap());
        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let ttl = store.ttl("k").await.unwrap().expect("present");
        assert!(ttl > Duration::from_secs(9) && ttl <= Duration::from_secs(10), "{ttl:?}");
    }

    async fn expire_can_shorten_a_key(store: Store) {
        store.set("k", b"v", LONG).await.unwrap();

        assert!(store.expire("k", SHORT).await.unwrap());
        outlive(SHORT).await;

        assert_eq!(store.get("k").await.unwrap(), None);
    }

    async fn expire_of_an_absent_or_expired_key_is_false_and_creates_nothing(store: Store) {
        assert!(!store.expire("never", LONG).await.unwrap());
        store.set("k", b"v", SHORT).await.unwrap();
        outlive(SHORT).await;

        assert!(!store.expire("k", LONG).await.unwrap());

        assert_eq!(store.get("k").await.unwrap(), None);
        assert_eq!(store.ttl("k").await.unwrap(), None);
    }

    async fn incr_counts_up_from_one(store: Store) {
        let window = Duration::from_secs(10);

        let counts = [
            store.incr("c", window).await.unwrap(),
            store.incr("c", window).await.unwrap(),
            store.incr("c", window).await.unwrap(),
        ];

        assert_eq!(counts, [1, 2, 3]);
        assert_eq!(store.incr("other", window).await.unwrap(), 1, "counters are per key");
    }

    async fn incr_starts_again_after_its_window(store: Store) {
        let window = Duration::from_millis(400);
        assert_eq!(store.incr("c", window).await.unwrap(), 1);
        assert_eq!(store.incr("c", window).await.unwrap(), 2);

        outlive(window).await;

        assert_eq!(store.incr("c", window).await.unwrap(), 1);
    }

    async fn incr_keeps_the_window_of_the_first_increment(store: Store) {
        let window = Duration::from_millis(1000);
        assert_eq!(store.incr("c", window).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(500)).await;

        assert_eq!(store.incr("c", window).await.unwrap(), 2, "still inside the window");
        tokio::time::sleep(Duration::from_millis(650)).await;

        assert_eq!(store.incr("c", window).await.unwrap(), 1, "a later increment did not extend the window");
    }

    async fn concurrent_increments_are_all_counted(store: Store) {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.incr("c", LONG).await.unwrap() })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();

        assert_eq!(seen, (1..=50).collect::<Vec<i64>>());
    }

    async fn an_index_lists_its_members_sorted(store: Store) {
        let until = now() + 60;
        store.index_add("idx", "b", until).await.unwrap();
        store.index_add("idx", "a", until).await.unwrap();
        store.index_add("idx", "b", until).await.unwrap();

        assert_eq!(store.index_members("idx").await.unwrap(), ["a", "b"], "a member is listed once");
        assert!(store.index_members("never").await.unwrap().is_empty());
    }

    async fn a_removed_member_is_no_longer_listed(store: Store) {
        let until = now() + 60;
        store.index_add("idx", "a", until).await.unwrap();
        store.index_add("idx", "b", until).await.unwrap();

        store.index_remove("idx", "a").await.unwrap();
        store.index_remove("idx", "never-added").await.unwrap();
        store.index_remove("no-such-index", "a").await.unwrap();

        assert_eq!(store.index_members("idx").await.unwrap(), ["b"]);
    }

    async fn removing_the_last_member_removes_the_index(store: Store) {
        store.index_add("idx", "a", now() + 60).await.unwrap();

        store.index_remove("idx", "a").await.unwrap();

        assert!(store.index_members("idx").await.unwrap().is_empty());
        assert_eq!(store.ttl("idx").await.unwrap(), None);
    }

    async fn an_already_expired_member_is_never_listed(store: Store) {
        store.index_add("idx", "old", now() - 1).await.unwrap();
        store.index_add("idx", "live", now() + 60).await.unwrap();

        assert_eq!(store.index_members("idx").await.unwrap(), ["live"]);
    }

    async fn an_expired_member_is_pruned_while_the_others_stay(store: Store) {
        let soon = now() + 1;
        store.index_add("idx", "short", soon).await.unwrap();
        store.index_add("idx", "long", now() + 60).await.unwrap();
        assert_eq!(store.index_members("idx").await.unwrap(), ["long", "short"]);

        sleep_past(soon).await;

        assert_eq!(store.index_members("idx").await.unwrap(), ["long"]);
    }

    async fn re_adding_a_member_updates_its_expiry(store: Store) {
        let soon = now() + 1;
        store.index_add("idx", "m", soon).await.unwrap();

        store.index_add("idx", "m", now() + 60).await.unwrap();
        sleep_past(soon).await;

        assert_eq!(store.index_members("idx").await.unwrap(), ["m"]);
    }

    async fn an_index_lives_as_long_as_its_longest_member(store: Store) {
        let long = now() + 30;
        store.index_add("idx", "long", long).await.unwrap();

        store.index_add("idx", "short", now() + 2).await.unwrap();

        let ttl = store.ttl("idx").await.unwrap().expect("index present");
        let left = Duration::from_secs((long - now()) as u64);
        assert!(ttl + Duration::from_secs(1) >= left, "a shorter member did not shorten it: {ttl:?}");
        assert!(ttl <= left + Duration::from_secs(2), "but it lives no longer than needed: {ttl:?}");
    }

    async fn an_index_expires_once_its_longest_member_has(store: Store) {
        let soon = now() + 1;
        store.index_add("idx", "a", soon).await.unwrap();
        store.index_add("idx", "b", soon).await.unwrap();

        // Expiry is kept to whole seconds: allow one more second before the key must be gone.
        sleep_past(soon + 1).await;

        assert_eq!(store.ttl("idx").await.unwrap(), None, "the index key itself is gone");
        assert!(store.index_members("idx").await.unwrap().is_empty());
    }

    async fn an_index_never_outlives_its_remaining_members(store: Store) {
        let short = now() + 2;
        store.index_add("idx", "short", short).await.unwrap();
        store.index_add("idx", "long", now() + 3600).await.unwrap();

        store.index_remove("idx", "long").await.unwrap();

        let ttl = store.ttl("idx").await.unwrap().expect("index present");
        let left = Duration::from_secs((short - now()) as u64);
        assert!(
            ttl <= left + Duration::from_secs(2),
            "after its longest member left, the index lives only as long as the rest: {ttl:?}"
        );
        assert_eq!(store.index_members("idx").await.unwrap(), ["short"]);
    }

    async fn ping_answers(store: Store) {
        store.ping().await.unwrap();
    }
}

// ----- Redis only: namespaces, key layout, outages -----

#[tokio::test]
async fn two_namespaces_on_one_redis_do_not_see_each_others_keys() {
    let url = shared().url();
    let a = redis_store_on(&url, &unique_namespace("a"), 1000).await;
    let b = redis_store_on(&url, &unique_namespace("b"), 1000).await;
    a.set("k", b"from-a", LONG).await.unwrap();
    a.incr("c", LONG).await.unwrap();
    a.index_add("idx", "m", now() + 60).await.unwrap();

    assert_eq!(b.get("k").await.unwrap(), None);
    assert!(b.set_nx("k", b"from-b", LONG).await.unwrap(), "b's key is its own");
    assert_eq!(b.incr("c", LONG).await.unwrap(), 1);
    assert!(b.index_members("idx").await.unwrap().is_empty());
    assert!(b.del("k").await.unwrap());
    assert!(!b.compare_and_delete("k", b"from-a").await.unwrap());

    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"from-a"[..]), "a's value survived b");
    assert_eq!(a.incr("c", LONG).await.unwrap(), 2);
    assert_eq!(a.index_members("idx").await.unwrap(), ["m"]);
}

#[tokio::test]
async fn every_key_is_written_under_the_namespace_prefix() {
    let ns = unique_namespace("layout");
    let store = redis_store_on(&shared().url(), &ns, 1000).await;
    store.set("plain", b"v", LONG).await.unwrap();
    store.incr("counter", LONG).await.unwrap();
    store.index_add("index", "m", now() + 60).await.unwrap();

    let mut keys: Vec<String> =
        shared().dump().into_iter().map(|(k, _)| k).filter(|k| k.starts_with(&ns)).collect();
    keys.sort();

    assert_eq!(keys, [format!("{ns}:counter"), format!("{ns}:index"), format!("{ns}:plain")]);
}

/// Runs every operation of the store once, each result without its value.
async fn every_operation(store: &Store) -> Vec<(&'static str, Result<(), StoreError>)> {
    vec![
        ("ping", store.ping().await),
        ("get", store.get("k").await.map(drop)),
        ("set", store.set("k", b"v", LONG).await),
        ("set_nx", store.set_nx("n", b"v", LONG).await.map(drop)),
        ("get_del", store.get_del("k").await.map(drop)),
        ("del", store.del("k").await.map(drop)),
        ("compare_and_swap", store.compare_and_swap("k", b"a", b"b", LONG).await.map(drop)),
        ("compare_and_delete", store.compare_and_delete("k", b"a").await.map(drop)),
        ("expire", store.expire("k", LONG).await.map(drop)),
        ("ttl", store.ttl("k").await.map(drop)),
        ("incr", store.incr("c", LONG).await.map(drop)),
        ("index_add", store.index_add("i", "m", now() + 60).await),
        ("index_remove", store.index_remove("i", "m").await),
        ("index_members", store.index_members("i").await.map(drop)),
        ("publish", store.publish("ch", b"x").await),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_every_operation_fails_promptly_and_works_again_after_a_restart() {
    let server = RedisServer::start();
    let timeout_ms = 200;
    let store = redis_store_on(&server.url(), &unique_namespace("down"), timeout_ms).await;
    for (op, r) in every_operation(&store).await {
        assert!(r.is_ok(), "{op} before the outage: {r:?}");
    }
    store.set("kept", b"v", LONG).await.unwrap();

    server.stop();

    for (op, r) in every_operation(&store).await {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_) | StoreError::Timeout)),
            "{op} with redis down: {r:?}"
        );
    }
    let started = Instant::now();
    let r = store.get("kept").await;
    assert!(r.is_err(), "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(timeout_ms * 3), "failed in {:?}", started.elapsed());

    server.restart();

    for (op, r) in every_operation(&store).await {
        assert!(r.is_ok(), "{op} after the restart: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_makes_operations_time_out_instead_of_hanging() {
    let server = RedisServer::start();
    let timeout_ms = 200;
    let store = redis_store_on(&server.url(), &unique_namespace("stall"), timeout_ms).await;
    store.set("k", b"v", LONG).await.unwrap();

    // CLIENT PAUSE stops the server from answering any client for a while: a hung Redis.
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("ALL").query_async(&mut admin).await.unwrap();

    let started = Instant::now();
    let read = store.get("k").await;
    let write = store.set("k", b"w", LONG).await;
    let elapsed = started.elapsed();

    assert!(matches!(read, Err(StoreError::Timeout)), "{read:?}");
    assert!(matches!(write, Err(StoreError::Timeout)), "{write:?}");
    // Well under the 3 s pause: the operations gave up, they did not wait for the server.
    assert!(elapsed < Duration::from_millis(1500), "two timeouts took {elapsed:?}");
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query_async(&mut admin).await.unwrap();
    assert!(store.ping().await.is_ok() || store.ping().await.is_ok(), "answers again once unpaused");
}

#[tokio::test]
async fn a_store_can_be_created_before_its_redis_is_up_and_works_once_it_is() {
    let port = common::redis::free_port();
    let url = format!("redis://127.0.0.1:{port}/0");

    let store = Store::connect(&redis_config(&url, &unique_namespace("late"), 200), "conformance")
        .await
        .expect("connecting is lazy: start-up does not need redis");
    let started = Instant::now();
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_) | StoreError::Timeout)));
    assert!(started.elapsed() < Duration::from_millis(400), "failed in {:?}", started.elapsed());

    let _server = RedisServer::start_on(port);

    store.ping().await.expect("the pool connects once redis is there");
}

/// `config` waiting for one replica on every replicated write.
fn waiting_for_one_replica(config: StoreConfig) -> StoreConfig {
    StoreConfig { redis_wait_replicas: 1, redis_wait_timeout_ms: 300, redis_timeout_ms: 2000, ..config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replicated_compare_and_swap_returns_once_the_sentinels_replica_acknowledged_it() {
    let sentinel = common::redis_sentinel::shared_sentinel();
    // Settled: the sentinels have met the replica (and reconfigured it if they wanted to) and
    // it acknowledges the master's stream.
    tokio::task::block_in_place(|| {
        sentinel.wait_quorum();
        sentinel.wait_replicated();
    });
    let config = sentinel.store_config(&unique_namespace("wait"));
    let store = Store::connect(&waiting_for_one_replica(config), "conformance").await.expect("store");
    store.set("k", b"v1", LONG).await.unwrap();

    let swapped = store.compare_and_swap_replicated("k", b"v1", b"v2", LONG).await;

    assert!(matches!(swapped, Ok(true)), "{swapped:?}");
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replicated_compare_and_swap_without_any_replica_is_refused_as_not_replicated_on_redis_and_cluster()
{
    let single = redis_config(&shared().url(), &unique_namespace("wait"), 2000);
    // The shared cluster has three masters and no replica.
    let cluster = common::redis_cluster::shared_cluster().store_config(&unique_namespace("wait"));
    for config in [single, cluster] {
        let store = Store::connect(&waiting_for_one_replica(config), "conformance").await.expect("store");
        store.set("k", b"v1", LONG).await.unwrap();

        let swapped = store.compare_and_swap_replicated("k", b"v1", b"v2", LONG).await;

        assert!(matches!(swapped, Err(StoreError::NotReplicated { acked: 0, wanted: 1 })), "{swapped:?}");
        // The swap itself was made, on the master alone: the caller undoes it if it must.
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    }
}
