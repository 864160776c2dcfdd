//! Logging in through the real flows of the harness (`tests/common/oidc_flow.rs`).

use crate::deployment::Deployment;
pub use crate::harness::USER;
use crate::harness::{Browser, oidc_flow};
use anyhow::{Context, Result, ensure};
use cloakroom::bff::session::SESSION_COOKIE;

/// Logs `user` in through BFF instance `instance` (login page, form, callback) and returns the
/// session cookie's value.
pub async fn session_cookie(dep: &Deployment, instance: usize, user: (&str, &str)) -> Result<String> {
    let browser = Browser::new();
    let callback = oidc_flow::bff_login(&browser, &dep.login_target(instance), user, "/").await;
    ensure!(callback.status == 302, "login callback answered {}: {}", callback.status, callback.body);
    browser.cookie(SESSION_COOKIE).context("no session cookie after the login")
}

/// An access token for `user` straight from the auth server (code flow with PKCE), for the
/// direct and plain-proxy paths.
pub async fn access_token(dep: &Deployment, user: (&str, &str)) -> Result<String> {
    let tokens =
        oidc_flow::code_flow_tokens(&Browser::new(), &dep.login_target(0), user, "openid notes").await;
    tokens["access_token"].as_str().map(str::to_string).context("no access_token in the token response")
}
