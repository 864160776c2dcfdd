//! The reference auth server's resource indicators (RFC 8707) and client-credentials grant
//! (RFC 6749 §4.4), through HTTP on the harness's private Redis, with two real resource servers
//! as two APIs of different audiences.

mod common;

use cloakroom::jwt::dpop::{DpopAlg, DpopKey};
use common::oidc_flow::{ALL_SCOPES, pkce_pair, query_param, redirect_uri};
use common::resources::{
    API_A, API_B, API_C, SERVICE, SERVICE_CLIENT, authorize_url_for, claims_of, client_credentials,
    code_flow_for, refresh_with, start_api, whoami, with_two_apis,
};
use common::{Browser, CLIENT_ID, Stack, StackConfig};
use serde_json::Value;

/// The auth server with [`with_two_apis`], and API A and API B.
async fn two_apis() -> (Stack, String, String) {
    let stack = common::apps::start_auth_server(with_two_apis(StackConfig::new())).await;
    let (a, b) = (start_api(&stack, API_A).await, start_api(&stack, API_B).await);
    (stack, a, b)
}

/// The user's tokens from a code flow that named no resource.
async fn user_tokens(stack: &Stack) -> Value {
    let (status, tokens) = code_flow_for(stack, ALL_SCOPES, &[], None).await;
    assert_eq!(status, 200, "token response: {tokens}");
    tokens
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test]
async fn a_refresh_for_each_resource_gives_a_token_only_that_api_accepts() {
    let (stack, api_a, api_b) = two_apis().await;
    let mut refresh_token = str_of(&user_tokens(&stack).await, "refresh_token").to_string();

    for (resource, own, other) in [(API_A, &api_a, &api_b), (API_B, &api_b, &api_a)] {
        let (status, res) = refresh_with(&stack, &refresh_token, &[("resource", resource)]).await;

        assert_eq!(status, 200, "{resource}: {res}");
        let at = str_of(&res, "access_token");
        assert_eq!(claims_of(at)["aud"], resource);
        assert_eq!(whoami(own, at).await, (200, None), "{resource}'s own API accepts it");
        let refused = whoami(other, at).await;
        assert_eq!(refused, (401, Some("invalid_token".into())), "the other API refuses a {resource} token");
        refresh_token = str_of(&res, "refresh_token").to_string();
    }
}

#[tokio::test]
async fn a_refresh_without_resource_keeps_the_default_audience_which_neither_api_accepts() {
    let (stack, api_a, api_b) = two_apis().await;
    let tokens = user_tokens(&stack).await;

    let (status, res) = refresh_with(&stack, str_of(&tokens, "refresh_token"), &[]).await;

    assert_eq!(status, 200, "{res}");
    let at = str_of(&res, "access_token");
    assert_eq!(claims_of(at)["aud"], stack.rs_url, "today's default audience");
    assert_eq!(whoami(&api_a, at).await.0, 401);
    assert_eq!(whoami(&api_b, at).await.0, 401);
}

#[tokio::test]
async fn a_refresh_for_a_resource_the_client_may_not_use_is_invalid_target_and_spends_nothing() {
    let (stack, api_a, _) = two_apis().await;
    let refresh_token = str_of(&user_tokens(&stack).await, "refresh_token").to_string();

    let (status, res) = refresh_with(&stack, &refresh_token, &[("resource", API_C)]).await;

    assert_eq!((status, str_of(&res, "error")), (400, "invalid_target"), "{res}");
    let (status, res) = refresh_with(&stack, &refresh_token, &[("resource", API_A)]).await;
    assert_eq!(status, 200, "the refresh token was not consumed: {res}");
    assert_eq!(whoami(&api_a, str_of(&res, "access_token")).await.0, 200);
}

#[tokio::test]
async fn several_resources_in_one_token_request_are_invalid_target() {
    let (stack, _, _) = two_apis().await;
    let refresh_token = str_of(&user_tokens(&stack).await, "refresh_token").to_string();

    let (status, res) =
        refresh_with(&stack, &refresh_token, &[("resource", API_A), ("resource", API_B)]).await;

    assert_eq!((status, str_of(&res, "error")), (400, "invalid_target"), "{res}");
    assert_eq!(refresh_with(&stack, &refresh_token, &[]).await.0, 200, "nothing was spent");
}

#[tokio::test]
async fn a_malformed_resource_is_invalid_target() {
    let (stack, _, _) = two_apis().await;
    let refresh_token = str_of(&user_tokens(&stack).await, "refresh_token").to_string();

    for bad in ["api-a.example", "https://api-a.example#frag", "urn:example:api"] {
        let (status, res) = refresh_with(&stack, &refresh_token, &[("resource", bad)]).await;

        assert_eq!((status, str_of(&res, "error")), (400, "invalid_target"), "{bad}: {res}");
    }
}

#[tokio::test]
async fn a_down_scoped_refresh_narrows_the_scope_and_a_wider_scope_is_invalid_scope() {
    let (stack, api_a, _) = two_apis().await;
    let (status, tokens) = code_flow_for(&stack, "openid offline_access notes", &[], None).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = str_of(&tokens, "refresh_token").to_string();

    let (status, wider) = refresh_with(&stack, &refresh_token, &[("scope", "notes profile")]).await;
    assert_eq!((status, str_of(&wider, "error")), (400, "invalid_scope"), "{wider}");
    let (status, res) =
        refresh_with(&stack, &refresh_token, &[("scope", "notes"), ("resource", API_A)]).await;

    assert_eq!(status, 200, "the refused wider request spent nothing: {res}");
    assert_eq!(res["scope"], "notes");
    let at = str_of(&res, "access_token");
    assert_eq!(claims_of(at)["scope"], "notes");
    assert!(res.get("id_token").is_none(), "no openid, no ID token");
    assert_eq!(whoami(&api_a, at).await.0, 200);
    let (status, full) = refresh_with(&stack, str_of(&res, "refresh_token"), &[]).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["scope"], "openid offline_access notes", "the grant itself keeps its scope");
}

#[tokio::test]
async fn an_authorization_request_for_a_resource_the_client_may_not_use_is_refused_with_invalid_target() {
    let (stack, _, _) = two_apis().await;
    let (_, challenge) = pkce_pair();

    let page = Browser::new().get(&authorize_url_for(&stack, &challenge, ALL_SCOPES, &[API_A, API_C])).await;

    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location().expect("redirect");
    assert!(location.starts_with(&redirect_uri(&stack)), "{location}");
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_target"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn resources_named_at_authorization_bound_the_grant_and_the_code_exchange_picks_one() {
    let (stack, api_a, _) = two_apis().await;

    let (status, tokens) = code_flow_for(&stack, ALL_SCOPES, &[API_A], Some(API_A)).await;

    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims_of(str_of(&tokens, "access_token"))["aud"], API_A);
    assert_eq!(whoami(&api_a, str_of(&tokens, "access_token")).await.0, 200);
    let refresh_token = str_of(&tokens, "refresh_token");
    let (status, res) = refresh_with(&stack, refresh_token, &[("resource", API_B)]).await;
    assert_eq!((status, str_of(&res, "error")), (400, "invalid_target"), "B was not named: {res}");
    let (status, res) = refresh_with(&stack, refresh_token, &[("resource", API_A)]).await;
    assert_eq!(status, 200, "{res}");
}

#[tokio::test]
async fn a_refresh_token_replayed_after_a_resource_refresh_is_reuse_and_revokes_the_grant() {
    let (stack, _, _) = two_apis().await;
    let first = str_of(&user_tokens(&stack).await, "refresh_token").to_string();
    let (status, res) = refresh_with(&stack, &first, &[("resource", API_A)]).await;
    assert_eq!(status, 200, "{res}");
    let second = str_of(&res, "refresh_token").to_string();
    assert_ne!(first, second, "a resource refresh rotates the refresh token");

    let (status, replay) = refresh_with(&stack, &first, &[("resource", API_B)]).await;

    assert_eq!((status, str_of(&replay, "error")), (400, "invalid_grant"), "{replay}");
    let (status, after) = refresh_with(&stack, &second, &[]).await;
    assert_eq!((status, str_of(&after, "error")), (400, "invalid_grant"), "the grant is revoked: {after}");
}

#[tokio::test]
async fn a_malformed_client_resource_stops_start_up_naming_the_key() {
    let mut cfg = with_two_apis(StackConfig::new());
    cfg.doc["auth_server"]["clients"][0]["resources"] = serde_json::json!([API_A, "api-b"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");

    let err =
        cloakroom::auth_server::Application::build_with_listener(cfg.auth_config(), listener).await.err();

    let message = err.expect("start-up refused").to_string();
    assert!(message.contains("auth_server.clients.0.resources.1"), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[tokio::test]
async fn a_client_credentials_token_is_about_the_client_and_only_its_resource_accepts_it() {
    let (stack, api_a, api_b) = two_apis().await;

    let (status, res) =
        client_credentials(&stack, SERVICE, &[("resource", API_A), ("scope", "notes")], None).await;

    assert_eq!(status, 200, "{res}");
    assert_eq!(res["token_type"], "Bearer");
    assert_eq!(res["scope"], "notes");
    assert!(res.get("refresh_token").is_none(), "no refresh token: {res}");
    assert!(res.get("id_token").is_none(), "no ID token: {res}");
    let at = str_of(&res, "access_token");
    let claims = claims_of(at);
    assert_eq!(
        (&claims["sub"], &claims["client_id"], &claims["aud"]),
        (&SERVICE_CLIENT.into(), &SERVICE_CLIENT.into(), &API_A.into())
    );
    for absent in ["sid", "auth_time", "acr", "amr"] {
        assert!(claims.get(absent).is_none(), "no user, no {absent}: {claims}");
    }
    assert_eq!(whoami(&api_a, at).await, (200, None));
    assert_eq!(whoami(&api_b, at).await, (401, Some("invalid_token".into())));
}

#[tokio::test]
async fn a_client_credentials_request_without_resource_or_scope_gets_the_default_audience_and_no_scope() {
    let (stack, _, _) = two_apis().await;

    let (status, res) = client_credentials(&stack, SERVICE, &[], None).await;

    assert_eq!(status, 200, "{res}");
    assert!(res.get("scope").is_none(), "nothing asked, nothing granted: {res}");
    let claims = claims_of(str_of(&res, "access_token"));
    assert_eq!(claims["aud"], stack.rs_url);
    assert_eq!(claims["scope"], "");
}

#[tokio::test]
async fn client_credentials_refuse_user_scopes_and_resources_the_client_may_not_use() {
    let (stack, _, _) = two_apis().await;

    for (extra, error) in [
        (("scope", "openid"), "invalid_scope"),
        (("scope", "notes offline_access"), "invalid_scope"),
        (("scope", "admin"), "invalid_scope"),
        (("resource", API_B), "invalid_target"),
    ] {
        let (status, res) = client_credentials(&stack, SERVICE, &[extra], None).await;

        assert_eq!((status, res["error"].as_str()), (400, Some(error)), "{extra:?}: {res}");
    }
}

#[tokio::test]
async fn client_credentials_are_refused_to_a_client_without_the_grant_type() {
    let (stack, _, _) = two_apis().await;
    let secret = stack.client_secret();

    let (status, res) = client_credentials(&stack, (CLIENT_ID, &secret), &[("resource", API_A)], None).await;

    assert_eq!((status, str_of(&res, "error")), (400, "unauthorized_client"), "{res}");
}

#[tokio::test]
async fn client_credentials_with_a_bad_secret_are_invalid_client() {
    let (stack, _, _) = two_apis().await;

    let (status, res) = client_credentials(&stack, (SERVICE_CLIENT, "not-the-secret"), &[], None).await;

    assert_eq!((status, str_of(&res, "error")), (401, "invalid_client"), "{res}");
}

#[tokio::test]
async fn a_client_registered_only_for_client_credentials_cannot_refresh() {
    let (stack, _, _) = two_apis().await;

    let (status, res) = refresh_with_client(&stack, SERVICE, "some-refresh-token").await;

    assert_eq!((status, str_of(&res, "error")), (400, "unauthorized_client"), "{res}");
}

#[tokio::test]
async fn a_client_registered_only_for_client_credentials_cannot_start_the_code_flow() {
    let mut cfg = with_two_apis(StackConfig::new());
    let redirect = format!("{}/bff/callback", cfg.doc["bff"]["public_url"].as_str().expect("public_url"));
    cfg.doc["auth_server"]["clients"][1]["redirect_uris"] = serde_json::json!([redirect]);
    let stack = common::apps::start_auth_server(cfg).await;
    let (_, challenge) = pkce_pair();
    let url = authorize_url_for(&stack, &challenge, ALL_SCOPES, &[]).replace(CLIENT_ID, SERVICE_CLIENT);

    let page = Browser::new().get(&url).await;

    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location().expect("redirect");
    assert_eq!(query_param(&location, "error").as_deref(), Some("unauthorized_client"), "{location}");
}

#[tokio::test]
async fn a_client_credentials_request_with_a_dpop_proof_gets_a_bound_token() {
    let (stack, api_a, _) = two_apis().await;
    let key = DpopKey::generate(DpopAlg::Es256);
    let proof = key.proof("POST", &format!("{}/token", stack.auth_url), None, None);

    let (status, res) = client_credentials(&stack, SERVICE, &[("resource", API_A)], Some(proof)).await;

    assert_eq!(status, 200, "{res}");
    assert_eq!(res["token_type"], "DPoP");
    let at = str_of(&res, "access_token");
    assert_eq!(claims_of(at)["cnf"]["jkt"], key.jkt());
    assert_eq!(whoami(&api_a, at).await.0, 401, "a bound token is no Bearer token");
    let url = format!("{api_a}/whoami");
    let call = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", key.proof("GET", &url, Some(at), None))
        .send()
        .await
        .expect("resource server reachable");
    assert_eq!(call.status(), 200);
}

/// A refresh-token request as `client` (client_secret_basic).
async fn refresh_with_client(stack: &Stack, (id, secret): (&str, &str), token: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .expect("token endpoint reachable");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_unknown_grant_type_stops_start_up_naming_the_key() {
    let mut cfg = with_two_apis(StackConfig::new());
    cfg.doc["auth_server"]["clients"][1]["grant_types"] =
        serde_json::json!(["client_credentials", "password"]);

    let err = cloakroom::config::ConfigSource::from_toml_str("")
        .set("auth_server", &cfg.doc["auth_server"])
        .section::<cloakroom::config::AuthServerConfig>("auth_server")
        .err();

    let message = err.expect("refused").to_string();
    assert!(message.contains("auth_server.clients.1.grant_types"), "{message}");
    assert!(message.contains("password"), "{message}");
}
