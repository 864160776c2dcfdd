//! A team developing its app with the Vite dev server behind cloakroom, as the README's "Put
//! your app behind cloakroom" section configures it (`[[bff.frontends]] upstream`): the app is
//! served from the BFF's origin with the session, its modules through the BFF, and Vite's hot
//! module replacement runs over the BFF's WebSocket relay — an edited stylesheet reaches the
//! open page in real Chromium without a reload. Needs Node.js (npm `vite`) and Chromium.

mod common;

use common::apps::metrics;
use common::chrome::Chrome;
use common::vite::DevServer;
use common::{Stack, StackConfig, USER};
use serde_json::json;

/// The dev server's policy from the README: Vite injects styles and opens a socket.
const DEV_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:";

async fn stack_with_dev_server(dev: &DevServer) -> Stack {
    let cfg = StackConfig::new()
        .on_localhost()
        .set("bff.frontends", json!([{ "upstream": dev.url, "csp": DEV_CSP }]));
    Stack::start_ready(cfg).await
}

/// The number of WebSockets the BFF relays now (its Prometheus gauge).
async fn open_sockets(stack: &Stack) -> f64 {
    let text = metrics(&stack.bff_url).await;
    text.lines()
        .find_map(|l| l.strip_prefix("cloakroom_websocket_open "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cloakroom_websocket_open gauge in:\n{text}"))
}

/// Waits until the BFF relays at least one socket (the page's HMR socket).
async fn wait_for_a_relayed_socket(stack: &Stack) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while open_sockets(stack).await < 1.0 {
        assert!(std::time::Instant::now() < deadline, "Vite's HMR socket never went through the BFF");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_edited_stylesheet_reaches_the_open_page_over_the_bffs_websocket_without_a_reload() {
    let dev = DevServer::start().await;
    let stack = stack_with_dev_server(&dev).await;
    let mut chrome = Chrome::start("vite-dev-hmr").await;
    chrome.goto(&stack.bff("/")).await;
    chrome.wait_until("the app ran", "document.getElementById('user').textContent === 'not signed in'").await;
    chrome
        .wait_until(
            "Vite's client connected",
            "document.querySelector('script[src=\"/@vite/client\"]') !== null",
        )
        .await;
    chrome.step("dev-server-page").await;
    wait_for_a_relayed_socket(&stack).await;
    chrome.js("window.__beforeTheEdit = true; return true").await;

    dev.write("src/style.css", "body { font-family: sans-serif; }\n#title { color: rgb(1, 2, 3); }\n");

    chrome
        .wait_until(
            "the edited style",
            "getComputedStyle(document.getElementById('title')).color === 'rgb(1, 2, 3)'",
        )
        .await;
    chrome.step("dev-server-after-edit").await;
    assert_eq!(chrome.js("return window.__beforeTheEdit === true").await, json!(true), "updated in place");
    chrome.close().await;
}

#[tokio::test]
async fn the_dev_servers_app_sees_the_signed_in_user_on_the_bffs_origin() {
    let dev = DevServer::start().await;
    let stack = stack_with_dev_server(&dev).await;
    let mut chrome = Chrome::start("vite-dev-login").await;

    chrome.goto(&stack.bff("/bff/login?returnTo=/")).await;
    chrome.wait_for_url(&stack.auth_url).await;
    chrome.type_into("input[name=username]", USER.0).await;
    chrome.type_into("input[name=password]", USER.1).await;
    chrome.click("form button[type=submit]").await;
    chrome.wait_for_url(&stack.bff("/")).await;

    chrome
        .wait_until(
            "the signed-in user",
            "document.getElementById('user').textContent.startsWith('signed in as ')",
        )
        .await;
    chrome.step("dev-server-signed-in").await;
    chrome.close().await;
}
