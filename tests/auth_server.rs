//! The reference OpenID Connect provider, through HTTP, on the harness's private Redis.

mod common;

use common::oidc_flow::{
    ALL_SCOPES, IssuedCode, OTHER_CLIENT, OTHER_SECRET, authorize_url, code_flow_tokens, obtain_code,
    pkce_pair, query_param, redeem, redirect_uri, refresh, submit_login, token_request, urlencode,
    with_other_client,
};
use common::{Browser, CLIENT_ID, Stack, StackConfig, USER};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn auth_server() -> Stack {
    common::apps::start_auth_server(StackConfig::new()).await
}

async fn jwks_key(stack: &Stack, kid: &str) -> DecodingKey {
    let jwks: Value = reqwest::get(format!("{}/jwks", stack.auth_url)).await.unwrap().json().await.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"))
        .clone();
    DecodingKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap()
}

/// Verifies `token` with the published JWKS and returns (typ, claims).
async fn verify(stack: &Stack, token: &str) -> (String, Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let key = jwks_key(stack, header.kid.as_deref().expect("kid")).await;
    let mut v = Validation::new(Algorithm::ES256);
    v.validate_aud = false;
    v.set_issuer(&[&stack.auth_url]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v).expect("valid signature").claims;
    (header.typ.unwrap_or_default(), claims)
}

#[tokio::test]
async fn discovery_lists_the_required_endpoints_and_capabilities() {
    let stack = auth_server().await;
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", stack.auth_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], stack.auth_url);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("userinfo_endpoint", "/userinfo"),
        ("revocation_endpoint", "/revoke"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(doc[key], format!("{}{path}", stack.auth_url), "{key}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
    );
}

#[tokio::test]
async fn the_code_flow_issues_typed_tokens_signed_with_a_published_key() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let tokens = code_flow_tokens(&browser, &stack, USER, ALL_SCOPES).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], ALL_SCOPES);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);

    let (typ, at) = verify(&stack, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(typ, "at+jwt");
    assert_eq!(at["aud"], stack.rs_url);
    assert_eq!(at["client_id"], CLIENT_ID);
    assert_eq!(at["scope"], ALL_SCOPES);
    for claim in ["sub", "exp", "iat", "nbf", "jti", "sid"] {
        assert!(!at[claim].is_null(), "access token lacks {claim}");
    }
    let (typ, id) = verify(&stack, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(typ, "JWT");
    assert_eq!(id["aud"], CLIENT_ID);
    assert_eq!(id["azp"], CLIENT_ID);
    assert_eq!(id["nonce"], "n", "the harness sends nonce=n");
    assert_eq!(id["sub"], at["sub"]);
    assert_eq!(id["sid"], at["sid"]);
    assert_eq!(id["preferred_username"], USER.0);
    assert!(id["auth_time"].is_i64());

    let info = reqwest::Client::new()
        .get(format!("{}/userinfo", stack.auth_url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["sub"], at["sub"]);
    assert_eq!(info["preferred_username"], USER.0);
}

#[tokio::test]
async fn userinfo_refuses_an_id_token_presented_as_an_access_token() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, "openid profile").await;
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token");
    let res = reqwest::Client::new()
        .get(format!("{}/userinfo", stack.auth_url))
        .bearer_auth(tokens["id_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn the_login_cookie_is_a_host_cookie_and_gives_single_sign_on() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let after = submit_login(&browser, &page, USER).await;
    let cookie = after.set_cookies().into_iter().find(|c| c.starts_with("__Host-cloakroom-op=")).unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain"));
    let code = query_param(&after.location().unwrap(), "code").unwrap();
    assert_eq!(redeem(&stack, &code, &verifier).await.0, 200);

    let (verifier2, challenge2) = pkce_pair();
    let again = browser.get(&authorize_url(&stack, &challenge2, "openid")).await;
    assert_eq!(again.status, 302, "a signed-in browser gets a code without a form");
    let code2 = query_param(&again.location().unwrap(), "code").unwrap();
    assert_eq!(redeem(&stack, &code2, &verifier2).await.0, 200);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_sixth_fast_failure_is_throttled_even_with_the_right_password() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    for attempt in 1..=5 {
        let res = submit_login(&browser, &page, (USER.0, "wrong-password")).await;
        assert_eq!(res.status, 401, "attempt {attempt}");
        assert!(res.body.contains("Incorrect username or password"));
        assert!(browser.cookie("__Host-cloakroom-op").is_none());
    }
    let sixth = submit_login(&browser, &page, USER).await;
    assert_eq!(sixth.status, 429);
    assert!(sixth.header("retry-after").is_some());
    assert!(browser.cookie("__Host-cloakroom-op").is_none());
}

#[tokio::test]
async fn an_unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    let res = submit_login(&browser, &page, ("nobody", "whatever")).await;
    assert_eq!(res.status, 401);
    assert!(res.body.contains("Incorrect username or password"));
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_kills_the_refresh_token_it_issued() {
    let stack = auth_server().await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, ALL_SCOPES).await;
    let (status, first) = redeem(&stack, &code, &verifier).await;
    assert_eq!(status, 200);
    let (status, replay) = redeem(&stack, &code, &verifier).await;
    assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = refresh(&stack, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn authorization_requests_without_s256_pkce_are_refused() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let base = authorize_url(&stack, "x", "openid");
    let without = base.replace("&code_challenge=x&code_challenge_method=S256", "");
    let (_, challenge) = pkce_pair();
    let plain = base.replace(
        "code_challenge=x&code_challenge_method=S256",
        &format!("code_challenge={challenge}&code_challenge_method=plain"),
    );
    let no_method =
        base.replace("code_challenge=x&code_challenge_method=S256", &format!("code_challenge={challenge}"));
    for url in [without, plain, no_method] {
        let res = browser.get(&url).await;
        assert_eq!(res.status, 302, "{url}");
        let loc = res.location().unwrap();
        assert!(loc.starts_with(&redirect_uri(&stack)));
        assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_request"));
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st"));
        assert_eq!(query_param(&loc, "iss").as_deref(), Some(stack.auth_url.as_str()));
        assert!(query_param(&loc, "code").is_none());
    }
}

#[tokio::test]
async fn the_login_page_uses_the_demo_stylesheet_from_its_own_origin() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let login = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains(r#"<link rel="stylesheet" href="/app.css">"#), "{}", login.body);
    // The CSP allows only same-origin styles, so the sheet is served by the auth server itself.
    assert!(login.header("content-security-policy").unwrap().contains("style-src 'self'"));
    let css = browser.get(&format!("{}/app.css", stack.auth_url)).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type").unwrap(), "text/css; charset=utf-8");
    assert_eq!(css.body, include_str!("../static/app.css"));
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_client_gets_an_error_page_and_no_redirect() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let good = authorize_url(&stack, &challenge, "openid");
    let evil = good.replace(&urlencode(&redirect_uri(&stack)), &urlencode("https://evil.example/cb"));
    let unknown_client = good.replace(CLIENT_ID, "nobody");
    for url in [evil, unknown_client] {
        let res = browser.get(&url).await;
        assert_eq!(res.status, 400);
        assert!(res.header("location").is_none());
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
    }
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_uri_at_the_token_endpoint_is_refused() {
    let stack = auth_server().await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, "openid").await;
    let (other_verifier, _) = pkce_pair();
    let (status, body) = redeem(&stack, &code, &other_verifier).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = token_request(
        &stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{}/elsewhere", stack.bff_url)),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = token_request(
        &stack,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &redirect_uri(&stack))],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "missing verifier");
}

#[tokio::test]
async fn a_bad_client_secret_is_refused_with_invalid_client_and_no_store() {
    let stack = auth_server().await;
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_secret_post_authenticates_the_client() {
    let stack = auth_server().await;
    let IssuedCode { code, verifier, .. } = obtain_code(&Browser::new(), &stack, "openid").await;
    let secret = stack.client_secret();
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri(&stack)),
            ("code_verifier", &verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_whole_family() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = refresh(&stack, first).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert!(rotated["access_token"].is_string());
    let (_, id) = verify(&stack, rotated["id_token"].as_str().unwrap()).await;
    assert!(id.get("nonce").is_none(), "a refreshed ID token carries no nonce");

    let (status, body) = refresh(&stack, first).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = refresh(&stack, second).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the successor died too");
}

#[tokio::test]
async fn two_concurrent_refreshes_with_one_token_let_at_most_one_win() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (a, b) = tokio::join!(refresh(&stack, rt), refresh(&stack, rt));
    let wins = [a.0, b.0].iter().filter(|s| **s == 200).count();
    assert!(wins <= 1, "both refreshes won");
    assert!([a.0, b.0].contains(&400));
}

#[tokio::test]
async fn another_clients_refresh_token_is_refused_and_not_revoked() {
    let stack = common::apps::start_auth_server(with_other_client(StackConfig::new())).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(OTHER_CLIENT, Some(OTHER_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let res = http
        .post(format!("{}/revoke", stack.auth_url))
        .basic_auth(OTHER_CLIENT, Some(OTHER_SECRET))
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "revocation answers 200 but does nothing");
    assert_eq!(refresh(&stack, rt).await.0, 200, "the owner can still refresh");
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_a_wider_scope_is_invalid_scope() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, "openid offline_access").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = token_request(
        &stack,
        &[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "openid notes")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) =
        token_request(&stack, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "openid")])
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid");
}

#[tokio::test]
async fn revoke_kills_the_refresh_token_and_answers_200_for_unknown_tokens() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let revoke = |token: String| {
        http.post(format!("{}/revoke", stack.auth_url))
            .basic_auth(CLIENT_ID, Some(stack.client_secret()))
            .form(&[("token", token)])
            .send()
    };
    assert_eq!(revoke(rt.to_string()).await.unwrap().status(), 200);
    let (status, body) = refresh(&stack, rt).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(revoke("never-issued".into()).await.unwrap().status(), 200);
}

#[tokio::test]
async fn revoke_without_client_authentication_is_refused_with_401() {
    let stack = auth_server().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/revoke", stack.auth_url))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
    assert_eq!(refresh(&stack, rt).await.0, 200, "nothing was revoked");
}

#[tokio::test]
async fn end_session_redirects_only_to_registered_uris_and_ends_the_login() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let tokens = code_flow_tokens(&browser, &stack, USER, ALL_SCOPES).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let logout = |target: &str| {
        format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
            stack.auth_url,
            urlencode(target)
        )
    };
    let refused = browser.get(&logout("https://evil.example/")).await;
    assert_eq!(refused.status, 400);
    assert!(refused.header("location").is_none());
    assert!(browser.cookie("__Host-cloakroom-op").is_some(), "a refused logout ends nothing");

    let registered = format!("{}/", stack.bff_url);
    let done = browser.get(&logout(&registered)).await;
    assert_eq!(done.status, 302);
    assert_eq!(done.location().unwrap(), format!("{registered}?state=bye"));
    assert!(browser.cookie("__Host-cloakroom-op").is_none(), "login cookie cleared");
    let (status, _) = refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "the session's grants are revoked");
    let (_, challenge) = pkce_pair();
    let again = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    assert_eq!(again.status, 200, "no more single sign-on: the login form again");
}

#[tokio::test]
async fn signup_creates_an_account_and_continues_the_authorization() {
    let stack = auth_server().await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    let login = browser.get(&authorize_url(&stack, &challenge, "openid profile")).await;
    let request = login.inputs().into_iter().find(|(n, _)| n == "request").unwrap().1;
    let form = browser.get(&format!("{}/signup?request={request}", stack.auth_url)).await;
    assert_eq!(form.status, 200);
    let mut fields: Vec<(String, String)> =
        form.inputs().into_iter().filter(|(n, _)| n == "request").collect();
    fields.push(("username".into(), "carol".into()));
    fields.push(("password".into(), "carol-password".into()));
    let done = browser.post_form(&form.form_action().unwrap(), &fields).await;
    assert_eq!(done.status, 302, "{}", done.body);
    let code = query_param(&done.location().unwrap(), "code").unwrap();
    let (status, tokens) = redeem(&stack, &code, &verifier).await;
    assert_eq!(status, 200);
    let (_, id) = verify(&stack, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["preferred_username"], "carol");
    let taken = browser.post_form(&form.form_action().unwrap(), &fields).await;
    assert_eq!(taken.status, 409);
}

#[tokio::test]
async fn sign_ups_from_one_address_past_the_limit_get_429_and_create_no_account() {
    let cfg = StackConfig::new()
        .set("auth_server.signup_max_per_ip", serde_json::json!(3))
        .set("auth_server.signup_window_secs", serde_json::json!(3600));
    let stack = common::apps::start_auth_server(cfg).await;
    let signup = |browser: Browser, name: String| {
        let url = format!("{}/signup", stack.auth_url);
        async move {
            let fields =
                [("username".to_string(), name), ("password".to_string(), "a-long-password".to_string())];
            browser.post_form(&url, &fields).await
        }
    };

    // Every attempt counts, a refused one (name taken) too: each costs a password hash.
    let taken = signup(Browser::new(), USER.0.to_string()).await;
    let first = signup(Browser::new(), "dave".to_string()).await;
    let second = signup(Browser::new(), "erin".to_string()).await;
    let fourth = signup(Browser::new(), "frank".to_string()).await;

    assert_eq!(taken.status, 409, "{}", taken.body);
    assert_eq!(
        (first.status.as_u16(), second.status.as_u16()),
        (200, 200),
        "{} / {}",
        first.body,
        second.body
    );
    assert_eq!(fourth.status, 429, "{}", fourth.body);
    let retry: u64 = fourth.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    assert!(fourth.header("set-cookie").is_none(), "nobody signed in");
    let (_, challenge) = pkce_pair();
    let browser = Browser::new();
    let page = browser.get(&authorize_url(&stack, &challenge, "openid")).await;
    let login = submit_login(&browser, &page, ("frank", "a-long-password")).await;
    assert_eq!(login.status, 401, "no account was created: {}", login.body);
}

/// A tiny back-channel logout endpoint that records what it receives.
async fn start_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let data = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/backchannel-logout",
            web::post().to(|body: web::Bytes, seen: web::Data<Arc<Mutex<Vec<String>>>>| async move {
                seen.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                HttpResponse::Ok().finish()
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://127.0.0.1:{}/backchannel-logout", server.addrs()[0].port());
    tokio::spawn(server.run());
    (url, seen)
}

async fn wait_for(seen: &Arc<Mutex<Vec<String>>>) -> String {
    for _ in 0..100 {
        if let Some(b) = seen.lock().unwrap().first().cloned() {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no back-channel logout arrived");
}

#[tokio::test]
async fn the_receiver_gets_a_backchannel_logout_token_on_refresh_token_reuse() {
    let (receiver, seen) = start_receiver().await;
    let mut cfg = StackConfig::new();
    cfg.doc["auth_server"]["clients"][0]["backchannel_logout_uri"] = json!(receiver);
    let stack = common::apps::start_auth_server(cfg).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&stack, first).await.0, 200);
    assert_eq!(refresh(&stack, first).await.0, 400);

    let body = wait_for(&seen).await;
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("logout_token form field");
    let (typ, claims) = verify(&stack, &token).await;
    assert_eq!(typ, "logout+jwt");
    let (_, id) = verify(&stack, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sid"], id["sid"]);
    assert_eq!(claims["sub"], id["sub"]);
    assert!(claims["iat"].is_i64() && claims["exp"].is_i64() && claims["jti"].is_string());
    assert_eq!(claims["events"], json!({"http://schemas.openid.net/event/backchannel-logout": {}}));
    assert!(claims.get("nonce").is_none());
}

#[tokio::test]
async fn the_health_readiness_and_metrics_endpoints_answer() {
    let stack = auth_server().await;
    code_flow_tokens(&Browser::new(), &stack, USER, "openid").await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(reqwest::get(format!("{}{path}", stack.auth_url)).await.unwrap().status(), 200);
    }
    let metrics = reqwest::get(format!("{}/metrics", stack.auth_url)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            "cloakroom_auth_token_requests_total{grant_type=\"authorization_code\",outcome=\"ok\"} 1"
        )
    );
}

#[tokio::test]
async fn no_code_token_cookie_or_password_is_stored_in_the_clear() {
    let redis = common::redis::RedisServer::start();
    let stack = common::apps::start_auth_server(StackConfig::on_redis(Some(redis.url()))).await;
    let browser = Browser::new();
    let IssuedCode { code, verifier, .. } = obtain_code(&browser, &stack, ALL_SCOPES).await;
    let (_, tokens) = redeem(&stack, &code, &verifier).await;
    let (_, rotated) = refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    let secrets = [
        code,
        tokens["refresh_token"].as_str().unwrap().to_string(),
        rotated["refresh_token"].as_str().unwrap().to_string(),
        browser.cookie("__Host-cloakroom-op").expect("login cookie"),
        USER.1.to_string(),
    ];
    let dump = redis.dump();
    assert!(!dump.is_empty());
    for (key, value) in dump {
        let value = String::from_utf8_lossy(&value);
        for s in &secrets {
            assert!(
                !key.contains(s.as_str()) && !value.contains(s.as_str()),
                "a secret is stored in the clear under {key}"
            );
        }
    }
}

#[tokio::test]
async fn a_store_outage_is_a_503_not_a_refusal() {
    let redis = common::redis::RedisServer::start();
    let stack = common::apps::start_auth_server(StackConfig::on_redis(Some(redis.url()))).await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, ALL_SCOPES).await;
    redis.stop();
    let ready = reqwest::get(format!("{}/readyz", stack.auth_url)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(CLIENT_ID, Some(stack.client_secret()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "store_unavailable");
    redis.restart();
    assert_eq!(
        refresh(&stack, tokens["refresh_token"].as_str().unwrap()).await.0,
        400,
        "redis restarted empty"
    );
}

// --- Issue 16: canonical usernames, bounded authorization requests --------------------------

/// Posts a sign-up of `name` from the provider's own page, outside any authorization request.
async fn sign_up(stack: &Stack, name: &str, password: &str) -> common::Page {
    let fields = [("username".to_string(), name.to_string()), ("password".to_string(), password.to_string())];
    Browser::new().post_form(&format!("{}/signup", stack.auth_url), &fields).await
}

/// A fresh login page of an authorization request in `browser`.
async fn login_page(stack: &Stack, browser: &Browser) -> common::Page {
    let (_, challenge) = pkce_pair();
    browser.get(&authorize_url(stack, &challenge, "openid")).await
}

#[tokio::test]
async fn a_name_differing_only_in_case_or_width_is_the_existing_account_at_signup_and_login() {
    let stack = auth_server().await;
    for spelling in ["ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"] {
        let page = sign_up(&stack, spelling, "mallory-password-1").await;
        assert_eq!(page.status, 409, "{spelling} must be taken: {}", page.body);
    }
    // A look-alike from another script is no name at all.
    let page = sign_up(&stack, "\u{430}lice", "mallory-password-1").await;
    assert_eq!(page.status, 400, "{}", page.body);

    // Any spelling signs in to the one account, under its one canonical name.
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    let page = browser.get(&authorize_url(&stack, &challenge, "openid profile")).await;
    let after = submit_login(&browser, &page, ("ALICE", USER.1)).await;
    assert_eq!(after.status, 302, "{}", after.body);
    let code = query_param(&after.location().unwrap(), "code").unwrap();
    let (_, tokens) = redeem(&stack, &code, &verifier).await;
    let (_, id) = verify(&stack, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(id["preferred_username"], USER.0);
}

#[tokio::test]
async fn wrong_guesses_under_every_spelling_of_a_name_share_one_lockout_that_no_other_login_clears() {
    let stack = auth_server().await;
    // The attacker tries to register a case variant to own a login that clears the counter.
    let variant = sign_up(&stack, "ALICE", "mallory-password-1").await;
    assert_eq!(variant.status, 409, "{}", variant.body);
    let browser = Browser::new();
    for (i, spelling) in ["alice", "Alice", "ALICE", "aLiCe"].into_iter().enumerate() {
        let page = login_page(&stack, &browser).await;
        let res = submit_login(&browser, &page, (spelling, "wrong-password")).await;
        assert_eq!(res.status, 401, "guess {i}");
    }
    // The attacker's own password under a variant is one more failure, not a success.
    let page = login_page(&stack, &browser).await;
    let res = submit_login(&browser, &page, ("ALICE", "mallory-password-1")).await;
    assert_eq!(res.status, 401, "{}", res.body);
    let page = login_page(&stack, &browser).await;
    let locked = submit_login(&browser, &page, USER).await;
    assert_eq!(locked.status, 429, "the sixth attempt is throttled: {}", locked.body);
}

#[tokio::test]
async fn authorization_requests_from_one_address_past_the_limit_get_429_and_store_nothing_more() {
    let redis = common::redis::RedisServer::start();
    let cfg = StackConfig::on_redis(Some(redis.url()))
        .set("auth_server.authorize_max_per_ip", json!(5))
        .set("auth_server.authorize_window_secs", json!(600));
    let stack = common::apps::start_auth_server(cfg).await;
    let pending = || redis.dump().iter().filter(|(k, _)| k.contains("as:req:")).count();
    for i in 0..5 {
        let page = login_page(&stack, &Browser::new()).await;
        assert_eq!(page.status, 200, "request {i}: {}", page.body);
    }
    for i in 0..3 {
        let page = login_page(&stack, &Browser::new()).await;
        assert_eq!(page.status, 429, "request {}: {}", 5 + i, page.body);
        let retry: u64 = page.header("retry-after").expect("Retry-After").parse().expect("seconds");
        assert!((1..=600).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(pending(), 5, "no pending request stored past the limit");
}

#[tokio::test]
async fn an_overlong_state_or_nonce_is_refused_with_invalid_request_and_stores_nothing() {
    let redis = common::redis::RedisServer::start();
    let stack = common::apps::start_auth_server(StackConfig::on_redis(Some(redis.url()))).await;
    let (_, challenge) = pkce_pair();
    let base = authorize_url(&stack, &challenge, "openid");
    for (what, url) in [
        ("state", base.replace("state=st", &format!("state={}", "s".repeat(2049)))),
        ("nonce", base.replace("nonce=n", &format!("nonce={}", "n".repeat(513)))),
    ] {
        let page = Browser::new().get(&url).await;
        assert_eq!(page.status, 302, "{what}: {}", page.body);
        let location = page.location().unwrap();
        assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"), "{what}");
        assert!(location.starts_with(&redirect_uri(&stack)), "{location}");
    }
    assert!(!redis.dump().iter().any(|(k, _)| k.contains("as:req:")), "no pending request stored");
}

#[tokio::test]
async fn with_metrics_listen_each_program_serves_metrics_there_and_not_on_its_main_listener() {
    let sections = ["auth_server", "resource_server", "bff"];
    let ports: Vec<u16> = sections.iter().map(|_| common::redis::free_port()).collect();
    let mut cfg = StackConfig::new();
    for (section, port) in sections.iter().zip(&ports) {
        cfg = cfg.set(&format!("{section}.metrics_listen"), json!(format!("127.0.0.1:{port}")));
    }
    let stack = Stack::start(cfg).await;
    common::apps::wait_ready(&stack.bff_url).await;
    let http = reqwest::Client::new();
    for (main, port) in [(&stack.auth_url, ports[0]), (&stack.rs_url, ports[1]), (&stack.bff_url, ports[2])] {
        let public = http.get(format!("{main}/metrics")).send().await.unwrap();
        assert_eq!(public.status(), 404, "{main}/metrics must not answer");
        let private = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
        assert_eq!(private.status(), 200, "metrics on port {port}");
        let kind = private.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(kind.starts_with("text/plain; version=0.0.4"), "Prometheus text on port {port}: {kind}");
    }
}

#[tokio::test]
async fn a_seed_stored_under_a_capitalised_name_keeps_its_subject_under_the_canonical_name() {
    let redis = common::redis::RedisServer::start();
    let cfg = StackConfig::on_redis(Some(redis.url()))
        .set("auth_server.users", json!([{ "username": "Carol", "password": "carol-password" }]));
    let ns = cfg.doc["auth_server"]["redis_namespace"].as_str().unwrap().to_string();
    // The record as an earlier version wrote it: keyed by the name as configured.
    let legacy = json!({ "sub": "legacy-sub-1", "username": "Carol", "password_hash": "x", "created_at": 0 });
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: () = ::redis::cmd("SET")
        .arg(format!("{ns}:as:user:Carol"))
        .arg(legacy.to_string())
        .query(&mut conn)
        .unwrap();
    let stack = common::apps::start_auth_server(cfg).await;
    let tokens =
        code_flow_tokens(&Browser::new(), &stack, ("CAROL", "carol-password"), "openid profile").await;
    let (_, id) = verify(&stack, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (id["sub"].as_str(), id["preferred_username"].as_str()),
        (Some("legacy-sub-1"), Some("carol"))
    );
    assert!(!redis.dump().iter().any(|(k, _)| k.ends_with(":as:user:Carol")), "the old key is gone");
}
