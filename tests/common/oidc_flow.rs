//! Drives the OpenID Connect flows the way a browser and a client would.

use super::{Browser, Page, Stack};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = cloakroom::crypto::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Fills the login form on `page` with `user` and submits it.
pub async fn submit_login(browser: &Browser, page: &Page, user: (&str, &str)) -> Page {
    assert_eq!(page.status, 200, "expected the login page, got {}: {}", page.status, page.body);
    let action = page.form_action().expect("login form has an action");
    let mut fields: Vec<(String, String)> =
        page.inputs().into_iter().filter(|(n, _)| n != "username" && n != "password").collect();
    fields.push(("username".into(), user.0.into()));
    fields.push(("password".into(), user.1.into()));
    browser.post_form(&action, &fields).await
}

/// Logs `user` in through the BFF: `/bff/login` → the provider's login form → the callback.
/// Returns the callback's answer (a redirect to `return_to` on success).
pub async fn bff_login(browser: &Browser, stack: &Stack, user: (&str, &str), return_to: &str) -> Page {
    let start = browser.get(&format!("{}/bff/login?returnTo={}", stack.bff_url, urlencode(return_to))).await;
    assert_eq!(start.status, 302, "login start: {}", start.body);
    let login_page = browser.follow(start).await;
    let after = submit_login(browser, &login_page, user).await;
    let callback = browser.follow_until(after, &format!("{}/bff/callback", stack.bff_url)).await;
    browser.get(&callback).await
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Authorization-code flow straight against the auth server, as the BFF's client would do it:
/// returns the token endpoint's JSON.
pub async fn code_flow_tokens(
    browser: &Browser,
    stack: &Stack,
    user: (&str, &str),
    scope: &str,
) -> serde_json::Value {
    let (verifier, challenge) = pkce_pair();
    let redirect_uri = format!("{}/bff/callback", stack.bff_url);
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st&nonce=n&code_challenge={}&code_challenge_method=S256",
        stack.auth_url,
        super::CLIENT_ID,
        urlencode(&redirect_uri),
        urlencode(scope),
        challenge
    );
    let page = browser.get(&url).await;
    let after = submit_login(browser, &page, user).await;
    let callback = browser.follow_until(after, &redirect_uri).await;
    let code = url::Url::parse(&callback)
        .expect("callback url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in callback");
    let res = token_request(
        stack,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(res.0, 200, "token response: {}", res.1);
    res.1
}

/// POSTs `form` to the token endpoint with the BFF client's credentials (client_secret_basic).
pub async fn token_request(stack: &Stack, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(super::CLIENT_ID, Some(stack.client_secret()))
        .form(form)
        .send()
        .await
        .expect("token endpoint reachable");
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}
