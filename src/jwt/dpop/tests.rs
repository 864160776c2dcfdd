use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const URL: &str = "https://api.example/notes";

fn check<'a>(token: Option<&'a str>, nonces: &'a [String]) -> ProofCheck<'a> {
    ProofCheck { htm: "GET", htu: URL, access_token: token, nonces, max_age_secs: 60 }
}

fn part(jws: &str, i: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jws.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

/// `proof` with its header or claims changed and signed again by `key` (a forger's own key).
fn resigned(key: &DpopKey, proof: &str, edit: impl Fn(&mut Value, &mut Value)) -> String {
    let (mut header, mut claims) = (part(proof, 0), part(proof, 1));
    edit(&mut header, &mut claims);
    let mut encoded = URL_SAFE_NO_PAD.encode(header.to_string());
    encoded.push('.');
    encoded.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let resigned = key.proof("GET", URL, None, None);
    let sig = resigned.rsplit('.').next().unwrap();
    // A signature over other bytes: only for the checks that come before the signature's.
    format!("{encoded}.{sig}")
}

#[test]
fn a_proof_of_either_algorithm_verifies_with_its_thumbprint_and_hash_of_the_token() {
    for alg in DpopAlg::ALL {
        let key = DpopKey::generate(alg);
        let proof = key.proof("GET", "https://api.example/notes?x=1#f", Some("tok"), Some("n1"));
        let header = part(&proof, 0);
        assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("dpop+jwt"), Some(alg.name())));
        assert!(header["jwk"].get("d").is_none());
        assert_eq!(part(&proof, 1)["htu"], json!(URL));
        let nonces = ["n1".to_string()];
        let ok = verify_proof(&proof, &check(Some("tok"), &nonces)).unwrap();
        assert_eq!(ok.jkt, key.jkt());
        assert_ne!(ok.jti, part(&key.proof("GET", URL, None, None), 1)["jti"].as_str().unwrap());
    }
}

#[test]
fn a_key_round_trips_through_its_small_stored_form_and_debug_hides_it() {
    for alg in DpopAlg::ALL {
        let key = DpopKey::generate(alg);
        let stored = serde_json::to_string(&key).unwrap();
        assert!(stored.len() <= 52, "{stored}");
        let again: DpopKey = serde_json::from_str(&stored).unwrap();
        assert!(again == key && again.jkt() == key.jkt());
        let raw = stored.trim_matches('"').split_once('.').unwrap().1.to_string();
        assert!(!format!("{key:?}").contains(&raw));
    }
    assert!(serde_json::from_str::<DpopKey>("\"HS256.AAAA\"").is_err());
}

#[test]
fn a_proof_for_another_method_url_token_or_nonce_is_refused() {
    let key = DpopKey::generate(DpopAlg::Es256);
    let proof = key.proof("POST", URL, Some("tok"), None);
    assert_eq!(verify_proof(&proof, &check(Some("tok"), &[])).unwrap_err(), DpopError::Method);
    let proof = key.proof("GET", "https://api.example/other", Some("tok"), None);
    assert_eq!(verify_proof(&proof, &check(Some("tok"), &[])).unwrap_err(), DpopError::Url);
    let proof = key.proof("GET", URL, Some("another"), None);
    assert_eq!(verify_proof(&proof, &check(Some("tok"), &[])).unwrap_err(), DpopError::AccessTokenHash);
    let proof = key.proof("GET", URL, None, None);
    assert_eq!(verify_proof(&proof, &check(Some("tok"), &[])).unwrap_err(), DpopError::AccessTokenHash);
    let proof = key.proof("GET", URL, Some("tok"), Some("stale"));
    let nonces = ["fresh".to_string()];
    assert_eq!(verify_proof(&proof, &check(Some("tok"), &nonces)).unwrap_err(), DpopError::UseNonce);
}

#[test]
fn forged_headers_are_refused_before_the_signature_is_trusted() {
    let key = DpopKey::generate(DpopAlg::EdDsa);
    let proof = key.proof("GET", URL, None, None);
    type Edit = fn(&mut Value, &mut Value);
    let cases: [(&str, Edit, DpopError); 6] = [
        ("alg none", |h, _| h["alg"] = json!("none"), DpopError::Algorithm),
        ("HS256", |h, _| h["alg"] = json!("HS256"), DpopError::Algorithm),
        ("typ JWT", |h, _| h["typ"] = json!("JWT"), DpopError::WrongType),
        ("no jwk", |h, _| h.as_object_mut().unwrap().remove("jwk").map(drop).unwrap_or(()), DpopError::Key),
        ("private jwk", |h, _| h["jwk"]["d"] = json!("AAAA"), DpopError::Key),
        ("other claims", |_, c| c["htm"] = json!("GET"), DpopError::Signature),
    ];
    for (name, edit, expected) in cases {
        let forged = resigned(&key, &proof, edit);
        assert_eq!(verify_proof(&forged, &check(None, &[])).unwrap_err(), expected, "{name}");
    }
}

#[test]
fn an_old_or_future_iat_is_refused() {
    let key = DpopKey::generate(DpopAlg::Es256);
    let proof = key.proof("GET", URL, None, None);
    let old = check(None, &[]);
    let strict = ProofCheck { max_age_secs: -10, ..old };
    assert_eq!(verify_proof(&proof, &strict).unwrap_err(), DpopError::Time);
}

#[test]
fn the_nonce_cache_keeps_the_latest_per_origin_and_stays_bounded() {
    let cache = NonceCache::default();
    cache.put("https://a", "1");
    cache.put("https://a", "2");
    assert_eq!(cache.get("https://a").as_deref(), Some("2"));
    for i in 0..nonce::MAX_ORIGINS + 10 {
        cache.put(&format!("https://o{i}"), "n");
    }
    assert_eq!(cache.get("https://a"), None);
    assert_eq!(cache.get(&format!("https://o{}", nonce::MAX_ORIGINS + 9)).as_deref(), Some("n"));
    assert_eq!(nonce::origin_of("https://A.example:443/x?y"), "https://a.example");
}
