//! The BFF's client authentication (`bff.oidc.client_auth`) and pushed authorization requests
//! (`bff.oidc.par`, RFC 9126) end to end against the reference auth server and resource server.

mod common;

use cloakroom::jwt::SigningKey;
use common::oidc_flow::{OTHER_CLIENT, OTHER_SECRET, query_param, submit_login, with_other_client};
use common::redis::shared;
use common::{Browser, CLIENT_ID, Stack, StackConfig, USER};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// A fresh P-256 key written to a temporary PEM file.
fn key_file() -> (SigningKey, PathBuf) {
    let key = SigningKey::generate().expect("key");
    let path =
        std::env::temp_dir().join(format!("cloakroom-client-key-{}.pem", cloakroom::crypto::random_token(8)));
    std::fs::write(&path, key.to_pem()).expect("write key");
    (key, path)
}

/// The stack's configuration with the BFF authenticating by `private_key_jwt` with the keys in
/// `files` (the first signs) and the auth server knowing the client by `registration`
/// (`{"jwks": …}` or `{"jwks_uri": …}`); no client secret on either side.
fn with_private_key_jwt(mut cfg: StackConfig, files: &[&PathBuf], registration: Value) -> StackConfig {
    let files: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    let oidc = cfg.doc["bff"]["oidc"].as_object_mut().expect("oidc");
    oidc.remove("client_secret");
    oidc.insert("client_auth".into(), json!("private_key_jwt"));
    oidc.insert("client_key_file".into(), json!(files));
    let client = cfg.doc["auth_server"]["clients"][0].as_object_mut().expect("client");
    client.remove("client_secret");
    client.insert("token_endpoint_auth_method".into(), json!("private_key_jwt"));
    for (k, v) in registration.as_object().expect("registration") {
        client.insert(k.clone(), v.clone());
    }
    cfg
}

fn short_tokens(cfg: StackConfig) -> StackConfig {
    cfg.set("auth_server.access_token_ttl_secs", json!(3)).set("bff.refresh_skew_secs", json!(1))
}

/// The provider's live grants of the stack (refresh-token families).
fn provider_grants(stack: &Stack) -> usize {
    let ns = stack.doc["auth_server"]["redis_namespace"].as_str().expect("namespace").to_string();
    shared().dump().into_iter().filter(|(k, _)| k.starts_with(&format!("{ns}:as:grant:"))).count()
}

/// Login, an API call, a transparent refresh, a second call and a logout that revokes the grant.
async fn walk(stack: &Stack) {
    let browser = stack.login_as(USER).await;
    let first = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(first.status, 200, "{}", first.body);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = stack.api_get(&browser, "/api/whoami").await;
    assert_eq!(second.status, 200, "refresh must be transparent: {}", second.body);
    assert_ne!(first.json()["jti"], second.json()["jti"], "a new access token after refresh");
    assert_eq!(provider_grants(stack), 1);
    let logout = stack.logout(&browser).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(provider_grants(stack), 0, "the grant was revoked at logout");
}

#[tokio::test]
async fn with_client_secret_basic_login_api_refresh_and_logout_work() {
    let stack = Stack::start_ready(short_tokens(StackConfig::new())).await;
    walk(&stack).await;
}

#[tokio::test]
async fn with_client_secret_post_login_api_refresh_and_logout_work() {
    let cfg = short_tokens(StackConfig::new()).set("bff.oidc.client_auth", json!("client_secret_post"));
    let cfg = {
        let mut cfg = cfg;
        cfg.doc["auth_server"]["clients"][0]["token_endpoint_auth_method"] = json!("client_secret_post");
        cfg
    };
    let stack = Stack::start_ready(cfg).await;
    walk(&stack).await;
}

#[tokio::test]
async fn with_client_secret_post_the_secret_travels_in_the_form_body_of_every_provider_call() {
    let stack = common::attack::AttackStack::start_with_tap(|mut c| {
        c.doc["auth_server"]["clients"][0]["token_endpoint_auth_method"] = json!("client_secret_post");
        c.set("bff.oidc.client_auth", json!("client_secret_post"))
    })
    .await;
    let browser = stack.login().await;
    let logout = stack.api(&browser, reqwest::Method::POST, "/bff/logout", None).await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    // The code exchange and the revocation.
    assert_eq!(stack.tap().secrets_named("client_secret").len(), 2);
}

#[tokio::test]
async fn with_private_key_jwt_and_inline_keys_login_api_refresh_and_logout_work_without_a_secret() {
    let (key, file) = key_file();
    let cfg = with_private_key_jwt(
        short_tokens(StackConfig::new()),
        &[&file],
        json!({"jwks": {"keys": [key.public_jwk()]}}),
    );
    let stack = Stack::start_ready(cfg).await;
    walk(&stack).await;
}

#[tokio::test]
async fn with_private_key_jwt_the_provider_fetches_the_keys_from_bff_jwks_during_a_rotation() {
    // Arrange: the next key signs, the previous one is still published.
    let ((next, next_file), (previous, previous_file)) = (key_file(), key_file());
    let cfg = short_tokens(StackConfig::new());
    let jwks_uri = format!("{}/bff/jwks", cfg.doc["bff"]["public_url"].as_str().expect("public_url"));
    let cfg = with_private_key_jwt(cfg, &[&next_file, &previous_file], json!({"jwks_uri": jwks_uri}));
    let stack = Stack::start_ready(cfg).await;
    // Act
    let jwks: Value = reqwest::get(stack.bff("/bff/jwks")).await.expect("jwks").json().await.expect("json");
    // Assert: both public keys, no private part, and the whole walk works through jwks_uri.
    let kids: Vec<&str> =
        jwks["keys"].as_array().expect("keys").iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, vec![next.kid(), previous.kid()]);
    assert!(jwks["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()), "no private key: {jwks}");
    walk(&stack).await;
}

#[tokio::test]
async fn private_key_jwt_without_a_key_file_or_a_secret_method_without_a_secret_stops_the_start_naming_the_key()
 {
    let (_, file) = key_file();
    let no_key = {
        let mut cfg = with_private_key_jwt(StackConfig::new(), &[&file], json!({"jwks": {"keys": []}}));
        cfg.doc["bff"]["oidc"].as_object_mut().unwrap().remove("client_key_file");
        cfg.bff_config()
    };
    let no_secret = {
        let mut cfg = StackConfig::new();
        cfg.doc["bff"]["oidc"].as_object_mut().unwrap().remove("client_secret");
        cfg.bff_config()
    };
    for (cfg, key) in [(no_key, "bff.oidc.client_key_file"), (no_secret, "bff.oidc.client_secret")] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err =
            cloakroom::bff::Application::build_with_listener(cfg, listener).await.err().expect("refused");
        let line = err.to_string();
        assert!(line.contains(key) && !line.contains('\n'), "{line}");
    }
}

#[tokio::test]
async fn a_pushed_login_redirects_the_browser_with_only_client_id_and_request_uri() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let browser = Browser::new();
    // Act
    let start = browser.get(&stack.bff("/bff/login?returnTo=%2Fapp%2F")).await;
    // Assert
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().expect("to the provider");
    let url = url::Url::parse(&location).expect("url");
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, vec!["client_id", "request_uri"], "{location}");
    for absent in ["code_challenge", "state", "redirect_uri", "nonce", "scope"] {
        assert!(query_param(&location, absent).is_none(), "{absent} in {location}");
    }
    assert!(query_param(&location, "request_uri").unwrap().starts_with("urn:ietf:params:oauth:request_uri:"));
    // The login completes from there.
    let page = browser.follow(start).await;
    let after = submit_login(&browser, &page, USER).await;
    let callback = browser.follow_until(after, &stack.bff("/bff/callback")).await;
    assert_eq!(browser.get(&callback).await.status, 302);
    stack.assert_session_alive(&browser).await;
}

/// Pushes a valid authorization request as the BFF's client; returns the `request_uri`.
async fn push(stack: &Stack) -> String {
    let (_, challenge) = common::oidc_flow::pkce_pair();
    let redirect = stack.bff("/bff/callback");
    let form = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let res = reqwest::Client::new()
        .post(format!("{}/par", stack.auth_url))
        .basic_auth(CLIENT_ID, Some(stack.client_secret()))
        .form(&form)
        .send()
        .await
        .expect("par reachable");
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["expires_in"], 60);
    body["request_uri"].as_str().expect("request_uri").to_string()
}

fn authorize_with(stack: &Stack, client_id: &str, request_uri: &str, extra: &str) -> String {
    let uri = common::oidc_flow::urlencode(request_uri);
    format!("{}/authorize?client_id={client_id}&request_uri={uri}{extra}", stack.auth_url)
}

#[tokio::test]
async fn a_request_uri_serves_once_and_only_its_own_client_and_never_mixed_with_other_parameters() {
    let stack = Stack::start_ready(with_other_client(StackConfig::new())).await;
    let browser = Browser::new();
    let request_uri = push(&stack).await;
    // Another client, and the owner mixing in parameters, are refused; the request survives both.
    let other = browser.get(&authorize_with(&stack, OTHER_CLIENT, &request_uri, "")).await;
    assert_eq!(other.status, 400, "another client's request_uri: {}", other.body);
    let mixed = browser.get(&authorize_with(&stack, CLIENT_ID, &request_uri, "&scope=openid%20notes")).await;
    assert_eq!(mixed.status, 400, "mixed parameters: {}", mixed.body);
    // The owner's first use shows the login form; the second is refused.
    let first = browser.get(&authorize_with(&stack, CLIENT_ID, &request_uri, "")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = browser.get(&authorize_with(&stack, CLIENT_ID, &request_uri, "")).await;
    assert_eq!(second.status, 400, "a used request_uri: {}", second.body);
    let _ = OTHER_SECRET;
}

#[tokio::test]
async fn discovery_lists_the_pushed_request_endpoint_and_the_client_authentication_methods() {
    let stack = Stack::start_ready(StackConfig::new()).await;
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", stack.auth_url))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["pushed_authorization_request_endpoint"], json!(format!("{}/par", stack.auth_url)));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
    assert!(
        doc["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256"))
    );
}

/// A provider whose discovery document offers no pushed authorization requests.
fn provider_without_par() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let issuer = url.clone();
    let server = HttpServer::new(move || {
        let issuer = issuer.clone();
        App::new().route(
            "/.well-known/openid-configuration",
            web::get().to(move || {
                let i = issuer.clone();
                async move {
                    HttpResponse::Ok().json(json!({
                        "issuer": i, "authorization_endpoint": format!("{i}/authorize"),
                        "token_endpoint": format!("{i}/token"), "jwks_uri": format!("{i}/jwks"),
                        "code_challenge_methods_supported": ["S256"],
                    }))
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test]
async fn par_required_against_a_provider_without_par_is_never_ready_and_says_why_in_one_line() {
    let issuer = provider_without_par();
    let http = reqwest::Client::new();
    let url = cloakroom::config::PublicUrl::parse(&issuer).unwrap();
    // Act
    let required = cloakroom::bff::provider::Provider::new(http.clone(), url.clone(), true).metadata().await;
    let auto = cloakroom::bff::provider::Provider::new(http, url, false).metadata().await;
    // Assert
    let line = required.expect_err("refused").to_string();
    assert!(
        line.contains("bff.oidc.par") && line.contains("pushed_authorization_request_endpoint"),
        "{line}"
    );
    assert!(auto.is_ok(), "auto goes without PAR");
    let mut cfg =
        StackConfig::new().set("bff.oidc.par", json!("required")).set("bff.oidc.issuer", json!(issuer));
    cfg.doc["bff"]["routes"] = json!([]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bff = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app =
        cloakroom::bff::Application::build_with_listener(cfg.bff_config(), listener).await.expect("starts");
    tokio::spawn(app.run_until_stopped());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = reqwest::get(format!("{bff}/readyz")).await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{bff}/bff/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 503);
}

#[tokio::test]
async fn a_push_the_provider_refuses_is_503_auth_server_unavailable_without_the_providers_words() {
    // Arrange: the provider knows another redirect URI, so it refuses the pushed request.
    let mut cfg = StackConfig::new();
    cfg.doc["auth_server"]["clients"][0]["redirect_uris"] = json!(["https://elsewhere.example/cb"]);
    let stack = Stack::start_ready(cfg).await;
    // Act
    let page = Browser::new().get(&stack.bff("/bff/login?returnTo=%2F")).await;
    // Assert
    common::browser::assert_error_code(&page, 503, "auth_server_unavailable");
    assert!(!page.body.contains("redirect_uri"), "{}", page.body);
    assert!(page.header("location").is_none());
}
