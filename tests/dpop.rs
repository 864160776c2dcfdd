//! DPoP-bound tokens (`bff.oidc.dpop = "on"`, RFC 9449) end to end against the reference auth
//! server and resource server: the login binds the tokens to the session's key, every upstream
//! call carries a proof the resource server verifies, refreshes stay single-flight across
//! instances, and a server's demand for a nonce costs one retry.

mod common;

use common::dpop::{Answer, on, rs_get};
use common::failover::one_refresh_per_expiry_across_two_instances;
use common::{Stack, StackConfig, USER};
use serde_json::json;

/// The BFF's session tokens as the provider sees them: the access token's claims via the
/// resource server's `/whoami` (which accepted it only with a valid proof of the bound key).
async fn whoami(stack: &Stack, browser: &common::Browser) -> serde_json::Value {
    let page = stack.api_get(browser, "/api/whoami").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()
}

#[tokio::test]
async fn after_a_login_with_dpop_on_the_resource_server_accepts_the_bound_token_with_the_bffs_proof() {
    let stack = Stack::start_ready(on(StackConfig::new())).await;

    let browser = stack.login_as(USER).await;
    let me = whoami(&stack, &browser).await;

    let jkt = me["cnf_jkt"].as_str().expect("the token is bound to a key");
    assert_eq!(jkt.len(), 43, "an RFC 7638 SHA-256 thumbprint: {jkt}");
    let again = whoami(&stack, &browser).await;
    assert_eq!(again["cnf_jkt"], me["cnf_jkt"], "one key per session");
    let other = stack.login_as(USER).await;
    assert_ne!(whoami(&stack, &other).await["cnf_jkt"], me["cnf_jkt"], "each session has its own key");
}

#[tokio::test]
async fn with_dpop_off_the_tokens_stay_bearer_tokens() {
    let stack = Stack::start_ready(StackConfig::new()).await;

    let browser = stack.login_as(USER).await;

    assert_eq!(whoami(&stack, &browser).await["cnf_jkt"], json!(null));
}

#[tokio::test]
async fn a_refresh_storm_over_two_instances_with_dpop_on_makes_one_refresh_and_every_call_succeeds() {
    one_refresh_per_expiry_across_two_instances(on(StackConfig::new())).await;
}

#[tokio::test]
async fn a_resource_server_that_demands_a_nonce_gets_it_on_the_bffs_one_retry() {
    let stack =
        Stack::start_ready(on(StackConfig::new()).set("resource_server.dpop_nonce", json!(true))).await;
    let browser = stack.login_as(USER).await;

    let me = whoami(&stack, &browser).await;
    let post = stack.api_post_json(&browser, "/api/notes", json!({"text": "with a nonce"})).await;

    assert!(me["cnf_jkt"].is_string());
    assert_eq!(post.status, 201, "a replayable POST is retried with the nonce too: {}", post.body);
}

#[tokio::test]
async fn the_resource_servers_nonce_demand_names_use_dpop_nonce_and_gives_one() {
    let stack = Stack::start_ready(StackConfig::new().set("resource_server.dpop_nonce", json!(true))).await;
    let key = cloakroom::jwt::dpop::DpopKey::generate(cloakroom::jwt::dpop::DpopAlg::Es256);
    let tokens = common::dpop::bound_tokens(&stack, &key).await;
    let token = tokens.body["access_token"].as_str().expect("access token");

    let proof = common::dpop::rs_proof(&stack, &key, "/whoami", token);
    let first: Answer = rs_get(&stack, "/whoami", &format!("DPoP {token}"), Some(&proof)).await;
    let nonce = first.nonce.clone().expect("a DPoP-Nonce");
    let retry = key.proof("GET", &format!("{}/whoami", stack.rs_url), Some(token), Some(&nonce));
    let second = rs_get(&stack, "/whoami", &format!("DPoP {token}"), Some(&retry)).await;

    assert_eq!(first.status, 401);
    assert!(first.challenge.starts_with("DPoP") && first.challenge.contains("use_dpop_nonce"), "{first:?}");
    assert_eq!(second.status, 200, "{second:?}");
}

/// A stub provider whose discovery document lists no DPoP algorithm (the fault: no real part
/// here is configured without DPoP support while offering everything else).
fn stub_provider_without_dpop() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let doc = json!({
        "issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks"),
        "code_challenge_methods_supported": ["S256"],
    });
    let server = HttpServer::new(move || {
        let doc = doc.clone();
        App::new().route(
            "/.well-known/openid-configuration",
            web::get().to(move || {
                let doc = doc.clone();
                async move { HttpResponse::Ok().json(doc) }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    issuer
}

#[tokio::test]
async fn dpop_on_with_a_stub_provider_without_dpop_algorithms_is_never_ready_and_says_why_in_one_line() {
    let issuer = stub_provider_without_dpop();
    let url = cloakroom::config::PublicUrl::parse(&issuer).expect("url");
    let provider = |dpop| {
        cloakroom::bff::provider::Provider::new(reqwest::Client::new(), url.clone(), false)
            .requiring_dpop(dpop)
    };

    let on = provider(true).metadata().await;
    let off = provider(false).metadata().await;

    let line = on.expect_err("refused").to_string();
    assert!(line.contains("bff.oidc.dpop") && line.contains("dpop_signing_alg_values_supported"), "{line}");
    assert!(!line.contains('\n'));
    assert!(off.is_ok(), "without dpop the provider is fine");
}

#[tokio::test]
async fn a_tap_rewriting_the_token_type_to_bearer_at_a_dpop_login_leaves_no_session_and_a_503_page() {
    let attack = common::attack::AttackStack::start_with_tap(on).await;
    attack.tap().rewrite_token_type("Bearer");

    let page = common::oidc_flow::bff_login(&common::Browser::new(), &attack.stack, USER, "/app/").await;

    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(attack.session_count(), 0);
}

#[tokio::test]
async fn a_refresh_a_tap_rewrites_to_bearer_under_dpop_is_not_used_and_its_refresh_token_never_sent_again() {
    let attack = common::attack::AttackStack::start_with_tap(|cfg| {
        on(cfg).set("auth_server.access_token_ttl_secs", json!(3)).set("bff.refresh_skew_secs", json!(1))
    })
    .await;
    let browser = attack.login().await;
    let before = attack.tap().token_requests();
    attack.tap().rewrite_token_type("Bearer");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    let refused = attack.stack.api_get(&browser, "/api/whoami").await;
    let next = attack.stack.api_get(&browser, "/api/whoami").await;

    common::attack::assert_error(&refused, 503, "auth_server_unavailable");
    common::attack::assert_error(&next, 401, "session_expired");
    assert_eq!(attack.tap().token_requests() - before, 1, "the consumed refresh token was sent once");
}
