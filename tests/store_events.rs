//! The store's event bus: instances sharing a store hear each other, and hear about gaps.

mod common;

use cloakroom::config::{RedisUrl, StoreConfig};
use cloakroom::store::{Event, Store};
use common::redis::{RedisServer, shared, unique_namespace, wait_subscribed};
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

fn config(url: &str, ns: &str) -> StoreConfig {
    let url: RedisUrl = serde_json::from_value(serde_json::json!(url)).unwrap();
    StoreConfig { redis_url: Some(url), redis_namespace: ns.into(), ..StoreConfig::default() }
}

async fn next_message(rx: &mut Receiver<Event>) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // Probes from `wait_subscribed` may still be in flight; they are not the message.
            if let Ok(Event::Message { channel, payload }) = rx.recv().await
                && channel != "probe"
            {
                return (channel, payload);
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

#[tokio::test]
async fn a_message_published_by_one_instance_reaches_another_on_redis() {
    let ns = unique_namespace("ev");
    let a = Store::connect(&config(&shared().url(), &ns), "a").await.unwrap();
    let b = Store::connect(&config(&shared().url(), &ns), "b").await.unwrap();
    let mut rx = b.events().subscribe();
    wait_subscribed(&b, &mut rx).await;

    a.publish("session-ended", b"abc").await.unwrap();

    assert_eq!(next_message(&mut rx).await, ("session-ended".to_string(), b"abc".to_vec()));
}

#[tokio::test]
async fn instances_in_another_namespace_hear_nothing() {
    let a = Store::connect(&config(&shared().url(), &unique_namespace("ev")), "a").await.unwrap();
    let b = Store::connect(&config(&shared().url(), &unique_namespace("ev")), "b").await.unwrap();
    let mut rx = b.events().subscribe();
    wait_subscribed(&b, &mut rx).await;

    a.publish("secret-channel", b"x").await.unwrap();
    b.publish("own", b"y").await.unwrap();

    assert_eq!(next_message(&mut rx).await.0, "own", "the other namespace's message must not arrive");
}

#[tokio::test]
async fn a_broken_subscription_is_announced_as_lost_and_resumes_after_redis_restarts() {
    let server = RedisServer::start();
    let store = Store::connect(&config(&server.url(), "ev"), "t").await.unwrap();
    let mut rx = store.events().subscribe();
    wait_subscribed(&store, &mut rx).await;

    server.restart();

    let lost = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::Lost) = rx.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(lost.is_ok(), "subscribers must be told the subscription broke");
    wait_subscribed(&store, &mut rx).await;
    store.publish("after", b"1").await.unwrap();
    assert_eq!(next_message(&mut rx).await.0, "after");
}

#[tokio::test]
async fn the_memory_store_delivers_to_its_own_subscribers() {
    let store = Store::memory("m");
    let mut rx = store.events().subscribe();
    store.publish("c", b"p").await.unwrap();
    assert_eq!(next_message(&mut rx).await, ("c".to_string(), b"p".to_vec()));
}
