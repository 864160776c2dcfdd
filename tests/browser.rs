//! End to end in a real browser: Debian's headless Chromium (tests/common/chrome.rs) against the
//! three real programs on `localhost` (a secure context, so Chromium keeps the `Secure`
//! `__Host-` cookie over plain HTTP) and a private Redis. Each step is saved as a screenshot
//! under `target/browser-screenshots/`.
//!
//! Run alone with `cargo test --test browser`.

mod common;

use cloakroom::bff::session::SESSION_COOKIE;
use common::apps::provider_grants;
use common::chrome::{Chrome, serve_pages};
use common::{Stack, StackConfig, USER};
use serde_json::{Value, json};
use std::time::Duration;

async fn localhost_stack(cfg: StackConfig) -> Stack {
    Stack::start_ready(cfg.on_localhost()).await
}

/// Fills the auth server's login page (already open) and submits it.
async fn sign_in_at_auth_server(chrome: &mut Chrome, stack: &Stack) {
    chrome.wait_for_url(&stack.auth_url).await;
    chrome.type_into("input[name=username]", USER.0).await;
    chrome.type_into("input[name=password]", USER.1).await;
    chrome.step("auth-server-login-filled").await;
    chrome.click("form button[type=submit]").await;
}

/// Opens the SPA signed out, clicks "Log in", signs in at the auth server and waits until the
/// SPA shows the user.
async fn spa_login(chrome: &mut Chrome, stack: &Stack) {
    chrome.goto(&stack.bff("/app/")).await;
    chrome.wait_until("the signed-out view", "!document.getElementById('signed-out').hidden").await;
    chrome.step("spa-signed-out").await;
    chrome.click("#login").await;
    sign_in_at_auth_server(chrome, stack).await;
    chrome.wait_for_url(&stack.bff("/app/")).await;
    chrome
        .wait_until(
            "the signed-in view",
            "!document.getElementById('signed-in').hidden && document.getElementById('name').textContent",
        )
        .await;
    chrome.step("spa-signed-in").await;
}

/// `fetch(path)` from the current (BFF) page with the SPA's `X-CSRF` header: status and body.
async fn bff_fetch(chrome: &Chrome, path: &str) -> (u64, Value) {
    let script = format!(
        "const r = await fetch({path:?}, {{ headers: {{ 'X-CSRF': '1' }}, credentials: 'same-origin' }});\
         const t = await r.text(); let b = null; try {{ b = JSON.parse(t); }} catch (_) {{ b = t; }}\
         return {{ status: r.status, body: b }};"
    );
    let v = chrome.js_async(&script).await;
    (v["status"].as_u64().unwrap_or_else(|| panic!("fetch {path} failed: {v}")), v["body"].clone())
}

async fn note_texts(chrome: &Chrome) -> Vec<String> {
    let (status, body) = bff_fetch(chrome, "/api/notes").await;
    assert_eq!(status, 200, "GET /api/notes: {body}");
    body.as_array()
        .expect("notes array")
        .iter()
        .map(|n| n["text"].as_str().expect("note text").to_string())
        .collect()
}

/// Adds a note through the SPA's form and waits until the list shows it.
async fn spa_add_note(chrome: &Chrome, text: &str) {
    chrome.type_into("#text", text).await;
    chrome.click("#add button[type=submit]").await;
    let expr =
        format!("[...document.querySelectorAll('#notes li')].some(li => li.textContent.includes({text:?}))");
    chrome.wait_until(&format!("the note {text:?} in the list"), &expr).await;
}

async fn session_cookie(chrome: &Chrome) -> Option<fantoccini::cookies::Cookie<'static>> {
    let cookies = chrome.client.get_all_cookies().await.expect("cookies");
    cookies.into_iter().find(|c| c.name() == SESSION_COOKIE)
}

#[tokio::test]
async fn the_spa_logs_in_through_the_auth_servers_login_page() {
    let stack = localhost_stack(StackConfig::new()).await;
    let mut chrome = Chrome::start("spa-login").await;

    spa_login(&mut chrome, &stack).await;

    let shown = chrome.js("return document.getElementById('name').textContent").await;
    let (status, user) = bff_fetch(&chrome, "/bff/user").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["claims"]["preferred_username"], USER.0, "{user}");
    assert!(!shown.as_str().unwrap_or_default().is_empty(), "the SPA shows who is signed in");
    chrome.close().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_secure_lax_host_only_and_hidden_from_scripts() {
    let stack = localhost_stack(StackConfig::new()).await;
    let mut chrome = Chrome::start("cookie-attributes").await;
    spa_login(&mut chrome, &stack).await;

    let cookie = session_cookie(&chrome).await.expect("the browser stores the session cookie");
    let script_view = chrome.js("return document.cookie").await;

    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    assert_eq!(cookie.secure(), Some(true), "{cookie:?}");
    assert_eq!(cookie.same_site().map(|s| s.to_string()).as_deref(), Some("Lax"), "{cookie:?}");
    assert_eq!(cookie.path(), Some("/"), "{cookie:?}");
    // A host-only cookie (no Domain attribute) is reported with the bare host; a Domain
    // cookie would be `.localhost`.
    assert_eq!(cookie.domain(), Some("localhost"), "{cookie:?}");
    let script_view = script_view.as_str().expect("document.cookie is a string").to_string();
    assert!(!script_view.contains(SESSION_COOKIE), "document.cookie shows the session: {script_view}");
    assert!(!script_view.contains(cookie.value()), "document.cookie shows the session value");
    chrome.close().await;
}

#[tokio::test]
async fn a_note_added_in_the_spa_is_stored_by_the_api_and_listed() {
    let stack = localhost_stack(StackConfig::new()).await;
    let mut chrome = Chrome::start("spa-notes").await;
    spa_login(&mut chrome, &stack).await;

    spa_add_note(&chrome, "buy oat milk").await;
    chrome.step("note-added").await;

    assert_eq!(note_texts(&chrome).await, vec!["buy oat milk".to_string()]);
    chrome.close().await;
}

#[tokio::test]
async fn the_spa_keeps_working_after_the_access_token_expires_because_the_bff_refreshes_it() {
    let cfg = StackConfig::new()
        .set("auth_server.access_token_ttl_secs", json!(4))
        .set("bff.refresh_skew_secs", json!(1));
    let stack = localhost_stack(cfg).await;
    let mut chrome = Chrome::start("spa-refresh").await;
    spa_login(&mut chrome, &stack).await;
    spa_add_note(&chrome, "before expiry").await;
    // A marker in the page's memory: it survives only if the page is never reloaded.
    chrome.js("window.stillTheSamePage = true; return null").await;
    let refreshes_before = provider_grants(&stack.auth_url, "refresh_token").await.ok();

    // Waiting for the access token to expire is the one fixed sleep: time must pass.
    tokio::time::sleep(Duration::from_secs(5)).await;
    spa_add_note(&chrome, "after expiry").await;
    chrome.step("note-added-after-expiry").await;

    assert_eq!(chrome.js("return window.stillTheSamePage === true").await, json!(true), "the page reloaded");
    assert!(session_cookie(&chrome).await.is_some(), "the session cookie is still there");
    assert_eq!(note_texts(&chrome).await, vec!["before expiry".to_string(), "after expiry".to_string()]);
    let refreshes_after = provider_grants(&stack.auth_url, "refresh_token").await.ok();
    assert!(
        refreshes_after > refreshes_before,
        "the auth server saw no refresh ({refreshes_before} → {refreshes_after})"
    );
    chrome.close().await;
}

#[tokio::test]
async fn the_server_rendered_page_adds_a_note_with_its_form_and_logs_out_with_its_button() {
    let stack = localhost_stack(StackConfig::new()).await;
    let mut chrome = Chrome::start("server-page").await;
    let home = stack.bff("/");
    chrome.goto(&home).await;
    chrome.step("signed-out").await;
    chrome.click("a#login").await;
    sign_in_at_auth_server(&mut chrome, &stack).await;
    chrome.wait_for_url(&home).await;
    chrome.element("form[action='/notes-form']").await;
    chrome.step("signed-in").await;

    chrome.type_into("form[action='/notes-form'] input[name=text]", "water the plants").await;
    chrome.click("form[action='/notes-form'] button[type=submit]").await;
    chrome
        .wait_until(
            "the new note on the page",
            "[...document.querySelectorAll('#notes li')].some(li => li.textContent.includes('water the plants'))",
        )
        .await;
    chrome.step("note-added").await;
    assert_eq!(note_texts(&chrome).await, vec!["water the plants".to_string()]);

    chrome.click("form[action='/bff/logout'] button[type=submit]").await;
    // The BFF ends its session and sends the browser to the provider's end-session endpoint,
    // which asks the user to confirm (the BFF keeps no ID token to send as a hint).
    chrome.wait_for_url(&format!("{}/logout", stack.auth_url)).await;
    let cookie_after_bff_logout = session_cookie(&chrome).await;
    chrome.step("provider-logout-confirm").await;
    chrome.click("form[action='/logout'] button[type=submit]").await;
    chrome.wait_for_url(&home).await;
    chrome.element("a#login").await;
    chrome.step("logged-out").await;

    assert!(cookie_after_bff_logout.is_none(), "the session cookie survived the BFF's logout");
    assert!(session_cookie(&chrome).await.is_none(), "the session cookie came back");
    let (status, body) = bff_fetch(&chrome, "/bff/user").await;
    assert_eq!(status, 401, "{body}");
    chrome.close().await;
}

/// The attacker's pages: `fetch` with credentials in every shape a page can send without the
/// BFF's consent, and auto-submitted plain form POSTs to the API and to logout.
fn attacker_pages(bff: &str) -> Vec<(&'static str, String)> {
    let fetches = format!(
        r#"<!doctype html><title>attacker: fetch</title><pre id="log"></pre><script>
const bff = {bff:?};
const tries = {{
  json_post_with_csrf_header: () => fetch(bff + '/api/notes', {{ method: 'POST', credentials: 'include',
      headers: {{ 'Content-Type': 'application/json', 'X-CSRF': '1' }}, body: JSON.stringify({{ text: 'pwned by fetch' }}) }}),
  simple_text_post: () => fetch(bff + '/api/notes', {{ method: 'POST', credentials: 'include',
      headers: {{ 'Content-Type': 'text/plain' }}, body: JSON.stringify({{ text: 'pwned by simple fetch' }}) }}),
  no_cors_text_post: () => fetch(bff + '/api/notes', {{ method: 'POST', credentials: 'include', mode: 'no-cors',
      headers: {{ 'Content-Type': 'text/plain' }}, body: JSON.stringify({{ text: 'pwned by no-cors fetch' }}) }}),
  read_user: () => fetch(bff + '/bff/user', {{ credentials: 'include', headers: {{ 'X-CSRF': '1' }} }}),
  read_user_simple: () => fetch(bff + '/bff/user', {{ credentials: 'include' }}),
  logout_with_csrf_header: () => fetch(bff + '/bff/logout', {{ method: 'POST', credentials: 'include', headers: {{ 'X-CSRF': '1' }} }}),
  logout_no_cors: () => fetch(bff + '/bff/logout', {{ method: 'POST', credentials: 'include', mode: 'no-cors' }}),
}};
window.results = {{}};
(async () => {{
  for (const [name, go] of Object.entries(tries)) {{
    try {{
      const r = await go();
      let body = null;
      try {{ body = await r.text(); }} catch (e) {{ body = 'unreadable: ' + e; }}
      window.results[name] = {{ readable: r.type !== 'opaque', status: r.status, type: r.type, body }};
    }} catch (e) {{
      window.results[name] = {{ error: String(e) }};
    }}
  }}
  document.getElementById('log').textContent = JSON.stringify(window.results, null, 1);
  window.done = true;
}})();
</script>"#
    );
    let form = |action: &str, extra: &str| {
        format!(
            r#"<!doctype html><title>attacker: form</title>
<form id="f" method="post" action="{bff}{action}" enctype="text/plain">
<input type="hidden" name='{{"text":"pwned by form","x":"' value='"}}'>{extra}</form>
<script>document.getElementById('f').submit();</script>"#
        )
    };
    vec![
        ("/fetch", fetches),
        ("/form-api", form("/api/notes", "")),
        ("/form-logout", form("/bff/logout", "")),
        (
            "/form-logout-urlencoded",
            format!(
                r#"<!doctype html><title>attacker: form</title>
<form id="f" method="post" action="{bff}/bff/logout"><input type="hidden" name="csrf_token" value="guess"></form>
<script>document.getElementById('f').submit();</script>"#
            ),
        ),
    ]
}

#[tokio::test]
async fn pages_on_other_origins_cannot_use_the_session_with_fetch_or_form_posts() {
    let stack = localhost_stack(StackConfig::new()).await;
    let mut chrome = Chrome::start("other-origin").await;
    spa_login(&mut chrome, &stack).await;
    let attacker = serve_pages(attacker_pages(&stack.bff_url)).await;
    let port = attacker.rsplit(':').next().expect("port").to_string();
    // 127.0.0.1 is another site; localhost on another port is the same site (so the Lax
    // cookie IS sent) but another origin: the BFF's own checks must stop it.
    let origins = [attacker.clone(), format!("http://localhost:{port}")];

    for (i, origin) in origins.iter().enumerate() {
        chrome.goto(&format!("{origin}/fetch")).await;
        chrome.wait_until("the attacker's fetches to finish", "window.done === true").await;
        chrome.step(&format!("origin{i}-fetch")).await;
        let results = chrome.js("return window.results").await;
        for (name, outcome) in results.as_object().expect("results") {
            let blocked = outcome.get("error").is_some()
                || (outcome["readable"] == json!(false) && outcome["status"] == json!(0));
            assert!(blocked, "{origin}: {name} got through: {outcome}");
        }
        for page in ["/form-api", "/form-logout", "/form-logout-urlencoded"] {
            chrome.goto(&format!("{origin}{page}")).await;
            chrome.wait_for_url(&stack.bff_url).await;
            chrome.wait_until("the BFF's answer", "document.readyState === 'complete'").await;
            chrome.step(&format!("origin{i}{}", page.replace('/', "-"))).await;
            let answer = chrome
                .js("const pre = document.querySelector('pre'); return (pre || document.body).textContent")
                .await;
            let answer: Value = serde_json::from_str(answer.as_str().unwrap_or_default())
                .unwrap_or_else(|_| panic!("{origin}{page}: the BFF answered {answer}"));
            assert_eq!(answer["error"], "csrf", "{origin}{page}: {answer}");
        }
    }
    chrome.goto(&stack.bff("/app/")).await;
    chrome.wait_until("the signed-in view", "!document.getElementById('signed-in').hidden").await;
    chrome.step("still-signed-in").await;

    assert!(session_cookie(&chrome).await.is_some(), "the session cookie is gone");
    let (status, body) = bff_fetch(&chrome, "/bff/user").await;
    assert_eq!(status, 200, "the session did not survive: {body}");
    assert_eq!(note_texts(&chrome).await, Vec::<String>::new(), "an attacker created a note");
    for origin in &origins {
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, stack.bff("/api/notes"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "x-csrf, content-type")
            .send()
            .await
            .expect("preflight");
        let allow: Vec<_> = preflight
            .headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .map(|k| k.to_string())
            .collect();
        assert!(allow.is_empty(), "{origin} got {allow:?}");
    }
    chrome.close().await;
}

#[tokio::test]
async fn the_spa_steps_up_with_the_second_factor_when_the_api_asks_and_the_call_then_succeeds() {
    use common::step_up::{ACR_MFA, current_code, with_totp_user};
    let cfg = with_totp_user(StackConfig::new()).set("resource_server.required_acr", json!(ACR_MFA));
    let stack = localhost_stack(cfg).await;
    let mut chrome = Chrome::start("step-up").await;
    spa_login(&mut chrome, &stack).await;

    let (status, refused) = bff_fetch(&chrome, "/api/notes").await;
    assert_eq!((status, refused["error"].as_str()), (401, Some("step_up_required")), "{refused}");
    let login_url = refused["login_url"].as_str().expect("login_url").to_string();
    assert!(login_url.ends_with("returnTo=%2Fapp%2F"), "back to the calling page: {login_url}");
    chrome.wait_until("the step-up link", "!!document.getElementById('step-up')").await;
    chrome.step("spa-step-up-offered").await;
    let href = chrome.js("return document.getElementById('step-up').getAttribute('href')").await;
    assert_eq!(href.as_str(), Some(login_url.as_str()));
    chrome.click("#step-up").await;
    chrome.wait_for_url(&stack.auth_url).await;
    chrome.wait_until("the code form", "!!document.querySelector('input[name=code]')").await;
    chrome.step("auth-server-code-form").await;
    chrome.type_into("input[name=code]", &current_code()).await;
    chrome.click("form button[type=submit]").await;
    chrome.wait_for_url(&stack.bff("/app/")).await;
    chrome
        .wait_until(
            "the notes loaded",
            "!document.getElementById('signed-in').hidden && !document.getElementById('step-up')",
        )
        .await;
    chrome.step("spa-after-step-up").await;

    let (_, user) = bff_fetch(&chrome, "/bff/user").await;
    let (status, notes) = bff_fetch(&chrome, "/api/notes").await;
    assert_eq!(user["acr"], ACR_MFA, "{user}");
    assert_eq!(status, 200, "{notes}");
    chrome.close().await;
}
