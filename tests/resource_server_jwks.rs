//! JWKS caching in the resource server, against an issuer stand-in whose key set the test
//! controls and whose JWKS fetches it counts (a real provider cannot be made to rotate keys on
//! cue or report how often it was asked).

mod common;

use actix_web::{App, HttpResponse, HttpServer, web};
use cloakroom::jwt::SigningKey;
use common::StackConfig;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct StandIn {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

fn issuer_stand_in() -> StandIn {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
    let fetches: Arc<AtomicUsize> = Arc::default();
    let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
    let server = HttpServer::new(move || {
        let (k, f, u) = (k.clone(), f.clone(), u.clone());
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let u = u.clone();
                    async move {
                        HttpResponse::Ok().json(json!({
                            "issuer": u, "authorization_endpoint": format!("{u}/authorize"),
                            "token_endpoint": format!("{u}/token"), "jwks_uri": format!("{u}/jwks"),
                        }))
                    }
                }),
            )
            .route(
                "/jwks",
                web::get().to(move || {
                    let (k, f) = (k.clone(), f.clone());
                    async move {
                        f.fetch_add(1, Ordering::SeqCst);
                        HttpResponse::Ok().json(json!({ "keys": *k.lock().unwrap() }))
                    }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    StandIn { url, keys, fetches }
}

async fn resource_server(issuer: &str, refetch_secs: u64) -> String {
    let cfg = StackConfig::new()
        .set("resource_server.issuer", json!(issuer))
        .set("resource_server.jwks_min_refetch_secs", json!(refetch_secs));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let rs = cfg.rs_config();
    let audience = rs.audience.clone();
    let app = cloakroom::resource_server::Application::build_with_listener(rs, listener).await.unwrap();
    tokio::spawn(app.run_until_stopped());
    format!("{url}|{audience}")
}

fn token(key: &SigningKey, issuer: &str, audience: &str) -> String {
    let now = cloakroom::clock::now();
    key.sign(
        "at+jwt",
        &json!({"iss": issuer, "sub": "u", "aud": audience, "exp": now + 60, "iat": now, "jti": "j", "scope": "notes"}),
    )
    .unwrap()
}

async fn whoami(rs: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{rs}/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn unknown_kids_cause_at_most_one_jwks_refetch_per_interval_stand_in() {
    let issuer = issuer_stand_in();
    let known = SigningKey::generate().unwrap();
    issuer.keys.lock().unwrap().push(known.public_jwk().clone());
    let rs = resource_server(&issuer.url, 3600).await;
    let (rs, aud) = rs.split_once('|').unwrap();
    assert_eq!(whoami(rs, &token(&known, &issuer.url, aud)).await, 200);
    let after_first = issuer.fetches.load(Ordering::SeqCst);

    // A flood of tokens under kids the issuer never published, some in parallel.
    let strangers: Vec<String> =
        (0..20).map(|_| token(&SigningKey::generate().unwrap(), &issuer.url, aud)).collect();
    let answers = futures_util::future::join_all(strangers.iter().map(|t| whoami(rs, t))).await;

    assert!(answers.iter().all(|s| *s == 401), "{answers:?}");
    assert_eq!(after_first, 1, "one fetch to start with");
    assert!(
        issuer.fetches.load(Ordering::SeqCst) - after_first <= 1,
        "unknown kids may cause at most one refetch per interval, saw {}",
        issuer.fetches.load(Ordering::SeqCst) - after_first
    );
}

#[tokio::test]
async fn a_key_published_after_start_is_picked_up_by_one_refetch_stand_in() {
    let issuer = issuer_stand_in();
    let old = SigningKey::generate().unwrap();
    issuer.keys.lock().unwrap().push(old.public_jwk().clone());
    let rs = resource_server(&issuer.url, 0).await;
    let (rs, aud) = rs.split_once('|').unwrap();
    assert_eq!(whoami(rs, &token(&old, &issuer.url, aud)).await, 200);

    let new = SigningKey::generate().unwrap();
    issuer.keys.lock().unwrap().push(new.public_jwk().clone());
    let before = issuer.fetches.load(Ordering::SeqCst);

    assert_eq!(whoami(rs, &token(&new, &issuer.url, aud)).await, 200, "the rotated-in key is accepted");
    assert_eq!(whoami(rs, &token(&old, &issuer.url, aud)).await, 200, "the old key still works");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst) - before, 1, "exactly one refetch");
}

#[tokio::test]
async fn the_resource_server_is_not_ready_until_the_issuer_keys_load_and_refuses_tokens_meanwhile() {
    let dead_issuer = format!("http://127.0.0.1:{}", common::redis::free_port());
    let rs = resource_server(&dead_issuer, 1).await;
    let (rs, aud) = rs.split_once('|').unwrap();
    let ready = reqwest::get(format!("{rs}/readyz")).await.unwrap().status();
    assert_eq!(ready, 503);
    let key = SigningKey::generate().unwrap();
    let status = whoami(rs, &token(&key, &dead_issuer, aud)).await;
    assert_eq!(status, 503, "no keys yet is a temporary failure, not an invalid token");
    assert_eq!(reqwest::get(format!("{rs}/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn an_issuer_that_comes_up_late_is_found_and_the_server_becomes_ready_stand_in() {
    // Reserve a port for the issuer, start the resource server first, then the issuer.
    let port = common::redis::free_port();
    let issuer_url = format!("http://127.0.0.1:{port}");
    let rs = resource_server(&issuer_url, 0).await;
    let (rs, aud) = rs.split_once('|').unwrap();
    assert_eq!(reqwest::get(format!("{rs}/readyz")).await.unwrap().status(), 503);

    let key = SigningKey::generate().unwrap();
    let k = key.public_jwk().clone();
    let u = issuer_url.clone();
    let server = HttpServer::new(move || {
        let (k, u) = (k.clone(), u.clone());
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let u = u.clone();
                    async move { HttpResponse::Ok().json(json!({"issuer": u, "authorization_endpoint": "x", "token_endpoint": "x", "jwks_uri": format!("{u}/jwks")})) }
                }),
            )
            .route("/jwks", web::get().to(move || {
                let k = k.clone();
                async move { HttpResponse::Ok().json(json!({"keys": [k]})) }
            }))
    })
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    tokio::spawn(server);

    assert_eq!(reqwest::get(format!("{rs}/readyz")).await.unwrap().status(), 200);
    assert_eq!(whoami(rs, &token(&key, &issuer_url, aud)).await, 200);
}
