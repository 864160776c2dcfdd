//! The interop fixture is a real, strict OpenID provider: node-oidc-provider as configured in
//! `tests/interop/oidc-provider/server.mjs`. These tests pin the behaviour cloakroom's BFF must
//! survive there (PKCE required, rotating refresh tokens with reuse detection, JWT access
//! tokens for a resource, back-channel logout to a loopback client).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::Browser;
use common::oidc_flow::{pkce_pair, submit_login, urlencode};
use common::oidc_provider::{OidcProvider, PROVIDER_USER, PROVIDER_USER_SUB, ProviderOptions};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SCOPE: &str = "openid profile offline_access notes";
const BFF: &str = "http://127.0.0.1:9/";
const RESOURCE: &str = "http://127.0.0.1:8/";

fn provider() -> OidcProvider {
    OidcProvider::start(ProviderOptions::for_bff(BFF, RESOURCE))
}

fn jwt_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

async fn refresh(op: &OidcProvider, refresh_token: &str) -> (u16, Value) {
    op.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

#[tokio::test]
async fn discovery_lists_every_endpoint_the_bff_needs_and_only_s256_pkce() {
    let op = provider();

    let meta = op.metadata().await;

    assert_eq!(meta["issuer"], op.issuer());
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        let url = str_of(&meta, key);
        assert!(url.starts_with(op.issuer()), "{key} = {url}");
    }
    assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    // RFC 9207: the callback carries `iss` next to `code` and `state`.
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(meta["backchannel_logout_supported"], true);
    assert_eq!(meta["backchannel_logout_session_supported"], true);
    let scopes = meta["scopes_supported"].as_array().expect("scopes_supported");
    for scope in ["openid", "profile", "offline_access", "notes"] {
        assert!(scopes.contains(&Value::from(scope)), "{scope} not in {scopes:?}");
    }
}

#[tokio::test]
async fn a_form_login_with_pkce_yields_an_id_token_a_refresh_token_and_a_jwt_access_token_for_the_resource() {
    let op = provider();
    let browser = Browser::new();

    let tokens = op.code_flow_tokens(&browser, PROVIDER_USER, SCOPE).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{tokens}");
    let id_token = jwt_part(str_of(&tokens, "id_token"), 1);
    assert_eq!(id_token["iss"], op.issuer());
    assert_eq!(id_token["aud"], op.client_id());
    assert_eq!(id_token["sub"], PROVIDER_USER_SUB);
    assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id_token["preferred_username"], "alice");
    assert!(id_token["sid"].is_string(), "back-channel logout needs sid: {id_token}");

    // The access token is an RFC 9068 JWT that a resource server verifies by JWKS alone.
    let access_token = str_of(&tokens, "access_token");
    let header = jsonwebtoken::decode_header(access_token).expect("JWT header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwks: JwkSet = serde_json::from_value(
        reqwest::get(str_of(&op.metadata().await, "jwks_uri")).await.unwrap().json().await.unwrap(),
    )
    .expect("JWKS");
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[RESOURCE]);
    validation.set_issuer(&[op.issuer()]);
    let claims =
        jsonwebtoken::decode::<Value>(access_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("access token verifies against the JWKS")
            .claims;
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["sub"], PROVIDER_USER_SUB);
    assert_eq!(claims["scope"], "notes");
    assert_eq!(claims["client_id"], op.client_id());
    // Claims a resource server must not insist on: real providers leave them out.
    assert!(claims.get("nbf").is_none() && claims.get("sid").is_none(), "{claims}");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, op.options().access_token_ttl_secs as i64);

    let stats = op.stats().await;
    assert_eq!((stats.logins, stats.authorization_codes_redeemed, stats.refresh_tokens_issued), (1, 1, 1));
}

/// The code flow by hand, without `prompt=consent`; returns the token response.
async fn tokens_without_prompt_consent(op: &OidcProvider) -> Value {
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    let redirect_uri = op.options().redirect_uris[0].clone();
    let url = op.authorization_url(SCOPE, &challenge, "st", "n").replace("&prompt=consent", "");
    let login_page = browser.follow(browser.get(&url).await).await;
    let after = submit_login(&browser, &login_page, PROVIDER_USER).await;
    let callback = browser.follow_until(after, &redirect_uri).await;
    let code =
        url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (status, tokens) = op.redeem(&code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn offline_access_without_prompt_consent_yields_no_refresh_token_unless_relaxed() {
    let strict = provider();
    let relaxed = OidcProvider::start(ProviderOptions {
        refresh_tokens_without_offline_access: true,
        ..ProviderOptions::for_bff(BFF, RESOURCE)
    });

    let from_strict = tokens_without_prompt_consent(&strict).await;
    let from_relaxed = tokens_without_prompt_consent(&relaxed).await;

    assert!(from_strict.get("refresh_token").is_none(), "OIDC Core 11 drops offline_access: {from_strict}");
    assert!(from_strict["access_token"].is_string());
    assert!(from_relaxed["refresh_token"].is_string(), "{from_relaxed}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_on_the_login_form() {
    let op = provider();
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let start = browser.get(&op.authorization_url(SCOPE, &challenge, "st", "n")).await;
    let login_page = browser.follow(start).await;

    let answer = submit_login(&browser, &login_page, ("alice", "not-her-password")).await;

    assert_eq!(answer.status, 401);
    assert!(answer.location().is_none(), "a failed login must not redirect to the client");
    assert!(answer.inputs().iter().any(|(n, _)| n == "password"), "the form is shown again");
    assert_eq!(op.stats().await.failed_logins, 1);
}

#[tokio::test]
async fn every_refresh_rotates_the_refresh_token() {
    let op = provider();
    let tokens = op.code_flow_tokens(&Browser::new(), PROVIDER_USER, SCOPE).await;
    let first = str_of(&tokens, "refresh_token");

    let (status, refreshed) = refresh(&op, first).await;

    assert_eq!(status, 200, "{refreshed}");
    let second = str_of(&refreshed, "refresh_token");
    assert_ne!(first, second, "the refresh token must rotate");
    assert_ne!(str_of(&refreshed, "access_token"), str_of(&tokens, "access_token"));
    let (status, again) = refresh(&op, second).await;
    assert_eq!(status, 200, "the successor works: {again}");
    let stats = op.stats().await;
    assert_eq!((stats.refreshes, stats.refresh_tokens_consumed, stats.refresh_token_reuse), (2, 2, 0));
}

#[tokio::test]
async fn a_reused_refresh_token_is_refused_and_kills_its_rotated_successor() {
    let op = provider();
    let tokens = op.code_flow_tokens(&Browser::new(), PROVIDER_USER, SCOPE).await;
    let old = str_of(&tokens, "refresh_token").to_string();
    let (status, refreshed) = refresh(&op, &old).await;
    assert_eq!(status, 200, "{refreshed}");
    let successor = str_of(&refreshed, "refresh_token").to_string();

    let (reuse_status, reuse) = refresh(&op, &old).await;
    let (successor_status, after) = refresh(&op, &successor).await;

    assert_eq!((reuse_status, str_of(&reuse, "error")), (400, "invalid_grant"));
    assert_eq!(
        (successor_status, str_of(&after, "error")),
        (400, "invalid_grant"),
        "the whole grant is revoked"
    );
    let stats = op.stats().await;
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.refresh_token_reuse, 1);
    assert_eq!(stats.refresh_invalid_grant, 2);
    assert_eq!(stats.grants_revoked, 1);
    assert_eq!(op.events_named("grant.revoked").len(), 1);
}

#[tokio::test]
async fn an_authorization_request_without_a_pkce_challenge_or_with_plain_pkce_is_refused() {
    let op = provider();
    let redirect_uri = &op.options().redirect_uris[0];
    let without = format!(
        "{}/auth?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st&nonce=n",
        op.issuer(),
        op.client_id(),
        urlencode(redirect_uri),
        urlencode(SCOPE)
    );
    let plain = format!(
        "{without}&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc&code_challenge_method=plain"
    );

    for url in [without, plain] {
        let browser = Browser::new();
        let answer = browser.get(&url).await;

        let to = answer.location().unwrap_or_else(|| panic!("expected an error redirect: {}", answer.body));
        assert!(to.starts_with(redirect_uri.as_str()), "{to}");
        let query: Vec<(String, String)> = url::Url::parse(&to).unwrap().query_pairs().into_owned().collect();
        assert!(query.contains(&("error".into(), "invalid_request".into())), "{to}");
        assert!(!query.iter().any(|(k, _)| k == "code"), "{to}");
    }
}

#[tokio::test]
async fn a_code_redeemed_with_the_wrong_verifier_is_refused() {
    let op = provider();
    let (_, challenge) = pkce_pair();
    let (other_verifier, _) = pkce_pair();
    let code = op.authorize(&Browser::new(), PROVIDER_USER, SCOPE, &challenge).await;

    let (status, body) = op.redeem(&code, &other_verifier).await;

    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    assert_eq!(op.stats().await.authorization_codes_redeemed, 0);
}

#[tokio::test]
async fn a_revoked_refresh_token_can_no_longer_refresh() {
    let op = provider();
    let tokens = op.code_flow_tokens(&Browser::new(), PROVIDER_USER, SCOPE).await;
    let refresh_token = str_of(&tokens, "refresh_token");

    let (status, _) = op.revoke(&[("token", refresh_token), ("token_type_hint", "refresh_token")]).await;

    assert_eq!(status, 200);
    let (status, body) = refresh(&op, refresh_token).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let stats = op.stats().await;
    assert_eq!((stats.revocations, stats.refresh_token_reuse), (1, 0));
}

/// A stand-in for the BFF's back-channel logout endpoint on 127.0.0.1, recording what it got.
async fn backchannel_receiver() -> (String, Arc<Mutex<Vec<String>>>, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = web::Data::new(Arc::clone(&received));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        App::new().app_data(sink.clone()).route(
            "/bff/backchannel-logout",
            web::post().to(|body: String, sink: web::Data<Arc<Mutex<Vec<String>>>>| async move {
                sink.lock().unwrap().push(body);
                HttpResponse::Ok().finish()
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (base, received, handle)
}

#[tokio::test]
async fn rp_initiated_logout_sends_a_back_channel_logout_token_to_a_loopback_client() {
    let (bff, received, server) = backchannel_receiver().await;
    let op = OidcProvider::start(ProviderOptions::for_bff(&bff, RESOURCE));
    let browser = Browser::new();
    let tokens = op.code_flow_tokens(&browser, PROVIDER_USER, SCOPE).await;
    let id_token = str_of(&tokens, "id_token");
    let sid = jwt_part(id_token, 1)["sid"].clone();
    let end_session = str_of(&op.metadata().await, "end_session_endpoint").to_string();
    let post_logout = op.options().post_logout_redirect_uris[0].clone();

    let confirm = browser
        .get(&format!(
            "{end_session}?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            urlencode(&post_logout)
        ))
        .await;
    assert_eq!(confirm.status, 200, "logout confirmation page: {}", confirm.body);
    let done = browser.post_form(&confirm.form_action().expect("logout form"), &confirm.inputs()).await;

    let to = browser.follow_until(done, &post_logout).await;
    assert!(to.contains("state=bye"), "{to}");
    op.wait_for_events("backchannel.success", 1, Duration::from_secs(5)).await;
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(bodies[0].as_bytes()).into_owned().collect();
    let logout_token = &form.iter().find(|(k, _)| k == "logout_token").expect("logout_token").1;
    assert_eq!(jwt_part(logout_token, 0)["typ"], "logout+jwt");
    let claims = jwt_part(logout_token, 1);
    assert_eq!(claims["iss"], op.issuer());
    assert_eq!(claims["aud"], op.client_id());
    assert_eq!(claims["sub"], PROVIDER_USER_SUB);
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{claims}");
    assert!(claims["jti"].is_string());
    let stats = op.stats().await;
    assert_eq!((stats.end_sessions, stats.backchannel_success, stats.backchannel_error), (1, 1, 0));
    server.stop(true).await;
}

#[tokio::test]
async fn cloakroom_resource_server_accepts_the_providers_access_token_and_refuses_its_id_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rs_url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let op = OidcProvider::start(ProviderOptions::for_bff(BFF, &rs_url));
    let cfg = common::StackConfig::new()
        .set("resource_server.issuer", serde_json::json!(op.issuer()))
        .set("resource_server.audience", serde_json::json!(rs_url));
    let app = cloakroom::resource_server::Application::build_with_listener(cfg.rs_config(), listener)
        .await
        .unwrap();
    tokio::spawn(app.run_until_stopped());
    let tokens = op.code_flow_tokens(&Browser::new(), PROVIDER_USER, SCOPE).await;

    let whoami = |t: String| {
        let url = format!("{rs_url}/whoami");
        async move { reqwest::Client::new().get(url).bearer_auth(t).send().await.unwrap() }
    };
    let ok = whoami(str_of(&tokens, "access_token").to_string()).await;
    assert_eq!(ok.status(), 200, "an RS256 at+jwt without nbf from a third-party provider verifies");
    let me: Value = ok.json().await.unwrap();
    assert_eq!(me["sub"], PROVIDER_USER_SUB);
    assert_eq!(me["iss"], op.issuer());

    let id = whoami(str_of(&tokens, "id_token").to_string()).await;
    assert_eq!(id.status(), 401, "an ID token is never an access token");
}
