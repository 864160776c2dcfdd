//! Which JWKs become keys (and with which algorithm), and how the cache fetches: lazily, at most
//! once per interval for unknown kids, coalescing concurrent misses, keeping keys on failure.

use super::*;
use crate::jwt::SigningKey;
use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

fn ec(crv: &str, kid: &str) -> Value {
    let len = if crv == "P-384" { 48 } else { 32 };
    let coord = b64(&vec![7u8; len]);
    json!({"kty": "EC", "crv": crv, "x": coord, "y": coord, "kid": kid})
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn rsa(bits: usize, kid: &str) -> Value {
    let mut n = vec![0xffu8; bits / 8];
    n[0] = 0xc3;
    json!({"kty": "RSA", "n": b64(&n), "e": "AQAB", "kid": kid})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn algs(doc: Value) -> Vec<(String, Algorithm)> {
    let mut out: Vec<_> = parse_jwks(&doc).unwrap().into_iter().map(|(kid, k)| (kid, k.alg)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn each_key_type_is_bound_to_its_one_algorithm() {
    let doc = json!({"keys": [
        ec("P-256", "a"),
        ec("P-384", "b"),
        {"kty": "OKP", "crv": "Ed25519", "x": b64(&[1u8; 32]), "kid": "c"},
        rsa(2048, "d"),
        with(rsa(2048, "e"), "alg", json!("PS256")),
        with(ec("P-256", "f"), "alg", json!("ES256")),
    ]});
    assert_eq!(
        algs(doc),
        vec![
            ("a".into(), Algorithm::ES256),
            ("b".into(), Algorithm::ES384),
            ("c".into(), Algorithm::EdDSA),
            ("d".into(), Algorithm::RS256),
            ("e".into(), Algorithm::PS256),
            ("f".into(), Algorithm::ES256),
        ]
    );
}

#[test]
fn unusable_keys_are_skipped_one_by_one_without_hiding_the_others() {
    let doc = json!({"keys": [
        ec("P-256", "good"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric"},
        with(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "symmetric-hs"}), "alg", json!("HS256")),
        with(ec("P-256", "encryption"), "use", json!("enc")),
        with(ec("P-256", "ops"), "key_ops", json!(["encrypt"])),
        with(ec("P-256", "mismatch"), "alg", json!("ES384")),
        with(ec("P-256", "hs-declared"), "alg", json!("HS256")),
        with(rsa(2048, "rsa-as-ec"), "alg", json!("ES256")),
        with(ec("P-256", "none"), "alg", json!("none")),
        rsa(1024, "weak"),
        ec("P-521", "p521"),
        {"kty": "EC", "crv": "P-256", "x": "!!", "kid": "broken"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA", "kid": "k1"},
        {"kty": "EC", "crv": "P-256", "x": b64(&[7u8; 32]), "y": b64(&[7u8; 32])},
        "not even an object",
        with(ec("P-256", "sig-ok"), "use", json!("sig")),
        with(ec("P-256", "verify-ok"), "key_ops", json!(["verify"])),
    ]});
    let kids: Vec<String> = algs(doc).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kids, vec!["good", "sig-ok", "verify-ok"]);
}

#[test]
fn a_document_without_a_keys_array_is_not_a_key_set() {
    assert!(parse_jwks(&json!({"keys": {}})).is_none());
    assert!(parse_jwks(&json!({"error": "x"})).is_none());
    assert!(parse_jwks(&json!([])).is_none());
    assert_eq!(parse_jwks(&json!({"keys": []})).map(|k| k.len()), Some(0));
}

/// A stand-in issuer: discovery plus a JWKS endpoint whose answer and fetch count the test
/// controls. `keys = None` makes the JWKS endpoint answer 500.
struct StandIn {
    url: String,
    keys: Arc<Mutex<Option<Value>>>,
    fetches: Arc<AtomicUsize>,
    discoveries: Arc<AtomicUsize>,
}

fn stand_in(delay: Duration) -> StandIn {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let keys: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(Some(json!([]))));
    let fetches: Arc<AtomicUsize> = Arc::default();
    let discoveries: Arc<AtomicUsize> = Arc::default();
    let (k, f, d, u) = (keys.clone(), fetches.clone(), discoveries.clone(), url.clone());
    let server = HttpServer::new(move || {
        let (k, f, d, u) = (k.clone(), f.clone(), d.clone(), u.clone());
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let (u, d) = (u.clone(), d.clone());
                    async move {
                        d.fetch_add(1, Ordering::SeqCst);
                        HttpResponse::Ok().json(json!({
                            "issuer": u, "authorization_endpoint": format!("{u}/a"),
                            "token_endpoint": format!("{u}/t"), "jwks_uri": format!("{u}/jwks"),
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
                        tokio::time::sleep(delay).await;
                        match k.lock().unwrap().clone() {
                            Some(keys) => HttpResponse::Ok().json(json!({ "keys": keys })),
                            None => HttpResponse::InternalServerError().finish(),
                        }
                    }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    StandIn { url, keys, fetches, discoveries }
}

impl StandIn {
    fn publish(&self, keys: &[&SigningKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.public_jwk().clone()).collect();
        *self.keys.lock().unwrap() = Some(json!(jwks));
    }

    fn cache(&self, min_refetch: Duration) -> JwksCache {
        JwksCache::for_issuer(reqwest::Client::new(), PublicUrl::parse(&self.url).unwrap(), min_refetch)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn nothing_is_fetched_until_a_key_is_needed_and_discovery_runs_once() {
    let issuer = stand_in(Duration::ZERO);
    let key = SigningKey::generate().unwrap();
    issuer.publish(&[&key]);
    let cache = issuer.cache(Duration::ZERO);
    assert_eq!(issuer.fetches(), 0);

    assert_eq!(cache.key(key.kid()).await.unwrap().alg, Algorithm::ES256);
    let _ = cache.key("unknown-1").await;
    let _ = cache.key("unknown-2").await;

    assert_eq!(issuer.discoveries.load(Ordering::SeqCst), 1);
    assert_eq!(issuer.fetches(), 3);
    assert_eq!(cache.issuer().await.unwrap(), issuer.url);
}

#[tokio::test]
async fn concurrent_unknown_kids_cause_one_fetch_per_interval() {
    let issuer = stand_in(Duration::from_millis(100));
    let key = SigningKey::generate().unwrap();
    issuer.publish(&[&key]);
    let cache = issuer.cache(Duration::from_secs(3600));
    cache.key(key.kid()).await.unwrap();
    assert_eq!(issuer.fetches(), 1);

    // A burst while the interval has not passed: no fetch at all.
    let burst = (0..30).map(|i| {
        let cache = cache.clone();
        async move { cache.key(&format!("stranger-{i}")).await }
    });
    let answers = futures_util::future::join_all(burst).await;

    assert!(answers.iter().all(|r| matches!(r, Err(JwtError::UnknownKey))));
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn concurrent_misses_after_the_interval_wait_for_one_shared_fetch() {
    let issuer = stand_in(Duration::from_millis(200));
    let old = SigningKey::generate().unwrap();
    issuer.publish(&[&old]);
    let cache = issuer.cache(Duration::from_millis(300));
    cache.key(old.kid()).await.unwrap();
    let new = SigningKey::generate().unwrap();
    issuer.publish(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(350)).await;

    let misses = (0..20).map(|_| {
        let (cache, kid) = (cache.clone(), new.kid().to_string());
        async move { cache.key(&kid).await }
    });
    let answers = futures_util::future::join_all(misses).await;

    assert!(answers.iter().all(|r| r.is_ok()), "every waiter sees the rotated-in key");
    assert_eq!(issuer.fetches(), 2, "one initial fetch and one shared refetch");
}

#[tokio::test]
async fn a_failed_or_garbled_refetch_keeps_the_keys_we_had() {
    let issuer = stand_in(Duration::ZERO);
    let key = SigningKey::generate().unwrap();
    issuer.publish(&[&key]);
    let cache = issuer.cache(Duration::ZERO);
    cache.key(key.kid()).await.unwrap();

    *issuer.keys.lock().unwrap() = None;
    assert!(matches!(cache.key("other").await, Err(JwtError::UnknownKey)));
    assert!(cache.key(key.kid()).await.is_ok(), "a 500 from the issuer keeps the old keys");
    assert!(cache.ensure_loaded().await.is_ok());
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn an_unreachable_issuer_is_retried_lazily_and_reported_unavailable_meanwhile() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cache = JwksCache::for_issuer(
        reqwest::Client::new(),
        PublicUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        Duration::from_secs(3600),
    );
    assert!(matches!(cache.key("k").await, Err(JwtError::KeysUnavailable)));
    assert!(matches!(cache.issuer().await, Err(JwtError::KeysUnavailable)));
    assert!(cache.ensure_loaded().await.is_err());
}

#[tokio::test]
async fn fetch_attempts_are_counted_by_outcome() {
    let issuer = stand_in(Duration::ZERO);
    let key = SigningKey::generate().unwrap();
    issuer.publish(&[&key]);
    let counter =
        prometheus::IntCounterVec::new(prometheus::Opts::new("jwks_fetch_total", "t"), &["outcome"]).unwrap();
    let cache = issuer.cache(Duration::ZERO).with_fetch_counter(counter.clone());
    cache.key(key.kid()).await.unwrap();
    *issuer.keys.lock().unwrap() = None;
    let _ = cache.key("x").await;
    assert_eq!(counter.with_label_values(&["ok"]).get(), 1);
    assert_eq!(counter.with_label_values(&["error"]).get(), 1);
}
