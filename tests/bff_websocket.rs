//! WebSocket routes (`websocket = true`), end to end on real parts: the real BFF on the shared
//! Redis, the real auth server, and a WebSocket echo upstream that reports the handshakes it
//! saw. The browser's side is a WebSocket client that sends what a browser sends (the session
//! cookie, `Origin`, offered subprotocols).

mod common;

use common::apps::{metrics, start_second_bff};
use common::browser::call_with;
use common::echo_upstream::EchoUpstream;
use common::raw_http;
use common::redis::RedisServer;
use common::ws_upstream::{WsUpstream, closed_within, connect, next_message, send_text};
use common::{Browser, CLIENT_ID, Stack, StackConfig, USER};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A stack with `/ws` (a WebSocket route, session required), `/ws-public` (a WebSocket
/// route with `session = "none"`) and `/plain` (an echo route without `websocket`), after
/// `tweak` changed its configuration.
struct WsStack {
    stack: Stack,
    ws: WsUpstream,
    echo: EchoUpstream,
}

impl WsStack {
    async fn start(tweak: impl FnOnce(StackConfig) -> StackConfig) -> WsStack {
        let (ws, echo) = (WsUpstream::start(), EchoUpstream::start());
        let cfg = StackConfig::new();
        let rs = cfg.doc["resource_server"]["audience"].clone();
        let cfg = cfg.set(
            "bff.routes",
            json!([
                { "path": "/api", "upstream": rs },
                { "path": "/ws", "upstream": ws.url, "websocket": true },
                { "path": "/ws-public", "upstream": ws.url, "websocket": true, "session": "none" },
                { "path": "/plain", "upstream": echo.url },
                { "path": "/refused", "upstream": format!("{}/refuse", ws.url), "websocket": true },
                { "path": "/gone", "upstream": "http://127.0.0.1:9", "websocket": true },
            ]),
        );
        let stack = Stack::start_ready(tweak(cfg)).await;
        WsStack { stack, ws, echo }
    }

    /// A browser signed in as alice, and its session cookie.
    async fn signed_in(&self) -> (Browser, String) {
        let browser = self.stack.login_as(USER).await;
        let cookie = browser.session_cookie().expect("a session cookie");
        (browser, cookie)
    }

    fn origin(&self) -> &str {
        &self.stack.bff_url
    }

    /// Opens a socket to `path` as the signed-in browser with `cookie`, from the BFF's origin.
    async fn open(&self, path: &str, cookie: &str) -> common::ws_upstream::Ws {
        let url = self.stack.bff(path);
        let cookie = Some(cookie).filter(|c| !c.is_empty());
        let (ws, _) = connect(&url, cookie, Some(self.origin()), &[]).await.expect("the socket opens");
        ws
    }
}

/// A raw handshake to `path` with `headers` besides `Host` (the browser's cookie included).
async fn raw_upgrade(stack: &WsStack, path: &str, headers: &[(&str, &str)]) -> raw_http::RawResponse {
    let request = raw_http::request(&stack.stack.bff_url, "GET", path, headers, b"");
    raw_http::send(&stack.stack.bff_url, &request).await
}

#[tokio::test]
async fn text_and_binary_are_relayed_both_ways_with_a_bearer_token_and_no_cookie_upstream() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    let mut ws = s.open("/ws/chat?room=1", &cookie).await;
    send_text(&mut ws, "hello").await;
    let text = next_message(&mut ws).await;
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    let binary = next_message(&mut ws).await;

    assert_eq!(text, Message::text("hello"));
    assert_eq!(binary, Message::binary(vec![0u8, 1, 2, 255]));
    let authorization = s.ws.last("authorization");
    assert!(
        authorization.len() == 1 && authorization[0].starts_with("Bearer ey"),
        "the upstream got the session's access token: {authorization:?}"
    );
    assert!(s.ws.last("cookie").is_empty(), "the browser's cookie never goes upstream");
    assert!(s.ws.last("origin").is_empty(), "nor its Origin");
    assert_eq!(s.ws.last("x-forwarded-host").len(), 1);
    let text = metrics(&s.stack.bff_url).await;
    assert!(text.contains("cloakroom_websocket_open 1"), "the gauge counts the open socket");
}

#[tokio::test]
async fn a_foreign_origin_is_refused_403_and_the_upstream_never_sees_a_connection() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    for origin in ["http://evil.example", "null", &format!("{}.evil.example", s.origin())] {
        let refused = connect(&s.stack.bff("/ws/chat"), Some(&cookie), Some(origin), &[])
            .await
            .expect_err("a cross-site WebSocket is refused");

        assert_eq!((refused.status, refused.code().as_str()), (403, "csrf"), "{origin}: {}", refused.body);
    }
    assert_eq!(s.ws.hits(), 0, "the upstream never saw a connection");
}

#[tokio::test]
async fn a_websocket_upgrade_without_an_origin_is_refused() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    let refused = connect(&s.stack.bff("/ws/chat"), Some(&cookie), None, &[]).await.expect_err("refused");

    assert_eq!((refused.status, refused.code().as_str()), (403, "csrf"), "{}", refused.body);
    assert_eq!(s.ws.hits(), 0);
}

#[tokio::test]
async fn without_a_session_a_session_required_websocket_route_answers_401() {
    let s = WsStack::start(|c| c).await;

    let refused = connect(&s.stack.bff("/ws/chat"), None, Some(s.origin()), &[]).await.expect_err("refused");

    assert_eq!((refused.status, refused.code().as_str()), (401, "unauthenticated"), "{}", refused.body);
    assert_eq!(s.ws.hits(), 0);
}

#[tokio::test]
async fn a_session_none_websocket_route_relays_without_any_authorization_even_when_signed_in() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    let mut anonymous = s.open("/ws-public/feed", "").await;
    let mut signed_in = s.open("/ws-public/feed", &cookie).await;
    send_text(&mut signed_in, "tick").await;

    assert_eq!(next_message(&mut signed_in).await, Message::text("tick"));
    assert_eq!(s.ws.hits(), 2);
    for handshake in s.ws.handshakes() {
        assert!(!handshake.iter().any(|(n, _)| n == "authorization" || n == "cookie"), "{handshake:?}");
    }
    send_text(&mut anonymous, "tock").await;
    assert_eq!(next_message(&mut anonymous).await, Message::text("tock"));
}

#[tokio::test]
async fn a_subprotocol_is_negotiated_through_the_bff() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    let (_ws, protocol) =
        connect(&s.stack.bff("/ws/chat"), Some(&cookie), Some(s.origin()), &["chat.v9", "chat.v1"])
            .await
            .expect("the socket opens");

    assert_eq!(protocol.as_deref(), Some("chat.v1"), "the upstream's choice reaches the browser");
    assert_eq!(s.ws.last("sec-websocket-protocol"), vec!["chat.v9, chat.v1".to_string()]);
    let none_chosen = connect(&s.stack.bff("/ws/chat"), Some(&cookie), Some(s.origin()), &["chat.v9"])
        .await
        .expect_err("502");
    assert_eq!(
        none_chosen.status, 502,
        "an upstream that chooses none of the offered subprotocols is refused"
    );
}

#[tokio::test]
async fn an_oversized_message_either_way_closes_the_socket_with_1009() {
    let s = WsStack::start(|c| c.set("bff.websocket_max_message_bytes", json!(1024))).await;
    let (_browser, cookie) = s.signed_in().await;
    let mut from_browser = s.open("/ws/a", &cookie).await;
    let mut from_upstream = s.open("/ws/b", &cookie).await;

    send_text(&mut from_browser, &"x".repeat(2000)).await;
    send_text(&mut from_upstream, "big:2000").await;

    assert_eq!(closed_within(&mut from_browser, Duration::from_secs(3)).await.0, 1009);
    assert_eq!(closed_within(&mut from_upstream, Duration::from_secs(3)).await.0, 1009);
    assert!(s.ws.wait_for_close().await.contains(&1009), "the upstream is closed too");
}

#[tokio::test]
async fn an_idle_socket_is_closed_with_1001() {
    let s = WsStack::start(|c| c.set("bff.websocket_idle_timeout_secs", json!(1))).await;
    let (_browser, cookie) = s.signed_in().await;
    let mut ws = s.open("/ws/quiet", &cookie).await;

    let (code, after) = closed_within(&mut ws, Duration::from_secs(4)).await;

    assert_eq!(code, 1001);
    assert!(after >= Duration::from_millis(900), "not before the idle timeout: {after:?}");
    assert_eq!(s.ws.wait_for_close().await, vec![1001]);
}

#[tokio::test]
async fn the_upstreams_close_code_reaches_the_browser() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;
    let mut ws = s.open("/ws/x", &cookie).await;

    send_text(&mut ws, "close:4001").await;

    assert_eq!(closed_within(&mut ws, Duration::from_secs(3)).await.0, 4001);
}

#[tokio::test]
async fn logout_on_another_bff_instance_closes_the_socket_with_1008_within_a_second() {
    let s = WsStack::start(|c| c).await;
    let other = start_second_bff(&s.stack, |_| {}).await;
    let (browser, cookie) = s.signed_in().await;
    let mut ws = s.open("/ws/live", &cookie).await;
    send_text(&mut ws, "before").await;
    assert_eq!(next_message(&mut ws).await, Message::text("before"));

    let page = call_with(&browser, Method::POST, &format!("{other}/bff/logout")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (code, after) = closed_within(&mut ws, Duration::from_secs(3)).await;

    assert_eq!(code, 1008);
    assert!(after <= Duration::from_secs(1), "closed {after:?} after the logout");
    assert_eq!(s.ws.wait_for_close().await, vec![1008], "the upstream hears the session ended");
    let text = metrics(&s.stack.bff_url).await;
    assert!(text.contains("cloakroom_websocket_closes_total{reason=\"session_ended\"} 1"), "{text}");
}

#[tokio::test]
async fn back_channel_logout_closes_the_socket_with_1008_within_a_second() {
    let s = WsStack::start(|c| c).await;
    let (browser, cookie) = s.signed_in().await;
    let sub = s.stack.sub_of(&browser).await;
    let mut ws = s.open("/ws/live", &cookie).await;

    let now = cloakroom::clock::now();
    let claims = json!({
        "iss": s.stack.auth_url, "aud": CLIENT_ID, "iat": now, "exp": now + 120, "sub": sub,
        "jti": cloakroom::crypto::random_token(16),
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let token = s.stack.signing_key.sign("logout+jwt", &claims).unwrap();
    let res = reqwest::Client::new()
        .post(s.stack.bff("/bff/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (code, after) = closed_within(&mut ws, Duration::from_secs(3)).await;

    assert_eq!(code, 1008);
    assert!(after <= Duration::from_secs(1), "closed {after:?} after the back-channel logout");
}

#[tokio::test]
async fn a_session_reaching_its_absolute_lifetime_closes_its_socket_within_about_a_second() {
    let s = WsStack::start(|c| c.set("bff.session.absolute_timeout_secs", json!(3))).await;
    let (browser, cookie) = s.signed_in().await;
    let expires_at = s.stack.user(&browser).await.json()["session"]["expires_at"].as_i64().unwrap();
    let mut ws = s.open("/ws/live", &cookie).await;

    let (code, _) = closed_within(&mut ws, Duration::from_secs(6)).await;
    let closed_at = cloakroom::clock::now_millis();

    assert_eq!(code, 1008);
    let late = closed_at - expires_at * 1000;
    assert!((0..=1500).contains(&late), "closed {late} ms after the deadline");
}

#[tokio::test]
async fn an_upgrade_to_a_route_without_websocket_is_not_tunnelled() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;
    let cookie = format!("{}={cookie}", cloakroom::bff::session::SESSION_COOKIE);

    let res = raw_upgrade(
        &s,
        "/plain/socket",
        &[
            ("Cookie", &cookie),
            ("X-CSRF", "1"),
            ("Origin", s.origin()),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;

    assert_ne!(res.status, 101, "no protocol switch on a route without websocket = true");
    let seen = s.echo.seen();
    let last = seen.last().expect("the upstream got a plain request");
    for name in ["upgrade", "connection", "sec-websocket-key", "sec-websocket-version"] {
        assert!(last.all(name).is_empty(), "{name} was not forwarded: {:?}", last.headers);
    }
    assert_eq!(s.ws.hits(), 0);
}

#[tokio::test]
async fn upgrade_smuggling_on_a_websocket_route_is_refused_400_before_the_upstream() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;
    let cookie = format!("{}={cookie}", cloakroom::bff::session::SESSION_COOKIE);
    let base: Vec<(&str, &str)> = vec![("Cookie", &cookie), ("Origin", s.origin())];
    let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    let version = ("Sec-WebSocket-Version", "13");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "h2c",
            vec![
                ("Connection", "Upgrade, HTTP2-Settings"),
                ("Upgrade", "h2c"),
                ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
            ],
        ),
        ("no key", vec![("Connection", "Upgrade"), ("Upgrade", "websocket"), version]),
        (
            "short key",
            vec![
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                version,
                ("Sec-WebSocket-Key", "c2hvcnQ="),
            ],
        ),
        ("no version", vec![("Connection", "Upgrade"), ("Upgrade", "websocket"), key]),
        (
            "version 8",
            vec![("Connection", "Upgrade"), ("Upgrade", "websocket"), key, ("Sec-WebSocket-Version", "8")],
        ),
        ("two upgrades", vec![("Connection", "Upgrade"), ("Upgrade", "websocket, h2c"), key, version]),
    ];

    for (what, headers) in cases {
        let all: Vec<(&str, &str)> = base.iter().copied().chain(headers).collect();
        let res = raw_upgrade(&s, "/ws/chat", &all).await;

        assert_eq!(res.status, 400, "{what}: {}", res.text());
        assert_eq!(res.json()["error"], "invalid_request", "{what}");
    }
    assert_eq!(s.ws.hits(), 0, "no upstream connection was made");
}

#[tokio::test]
async fn a_websocket_route_still_proxies_plain_requests_under_its_csrf_rule() {
    let s = WsStack::start(|c| c).await;
    let (browser, _cookie) = s.signed_in().await;

    let without_header = browser.send(browser.request(Method::GET, &s.stack.bff("/ws/info"))).await;
    let with_header = s.stack.api_get(&browser, "/ws/info").await;

    assert_eq!(without_header.status, 403, "X-CSRF is still required: {}", without_header.body);
    assert_eq!(with_header.status, 200, "{}", with_header.body);
    assert_eq!(with_header.body, "plain request");
}

#[tokio::test]
async fn an_upstream_that_refuses_the_websocket_answers_502_and_the_browser_gets_no_101() {
    let s = WsStack::start(|c| c).await;
    let (_browser, cookie) = s.signed_in().await;

    for path in ["/refused/chat", "/gone/chat"] {
        let refused =
            connect(&s.stack.bff(path), Some(&cookie), Some(s.origin()), &[]).await.expect_err("no 101");

        assert_eq!((refused.status, refused.code().as_str()), (502, "upstream_unavailable"), "{path}");
    }
    assert_eq!(s.ws.hits(), 1, "the refusing upstream was asked once");
    assert_eq!(s.ws.last("upgrade"), vec!["websocket".to_string()]);
}

/// Kills every pub/sub connection of `redis` (the instances' event-bus subscriptions).
fn kill_pubsub(redis: &RedisServer) {
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut conn).unwrap();
}

#[tokio::test]
async fn after_a_gap_on_the_event_bus_sockets_of_sessions_that_ended_meanwhile_are_closed() {
    let redis = RedisServer::start();
    let ws = WsUpstream::start();
    let cfg = StackConfig::on_redis(Some(redis.url()))
        .set("bff.routes", json!([{ "path": "/ws", "upstream": ws.url, "websocket": true }]));
    let stack = Stack::start_ready(cfg).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("a session cookie");
    let (mut socket, _) =
        connect(&stack.bff("/ws/live"), Some(&cookie), Some(&stack.bff_url), &[]).await.expect("opens");
    // The session disappears without its `session-ended` message (as if published during a gap).
    let mut conn = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let sessions: Vec<String> = redis::cmd("KEYS").arg("*:session:*").query(&mut conn).unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let _: i64 = redis::cmd("DEL").arg(&sessions[0]).query(&mut conn).unwrap();
    send_text(&mut socket, "still here").await;
    assert_eq!(next_message(&mut socket).await, Message::text("still here"));

    kill_pubsub(&redis);
    let (code, _) = closed_within(&mut socket, Duration::from_secs(3)).await;

    assert_eq!(code, 1008, "the registry read every session with a socket again after the gap");
}

/// Sends a text every 300 ms for `secs` seconds, each echoed.
async fn chat_for(ws: &mut common::ws_upstream::Ws, secs: u64) {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        send_text(ws, "tick").await;
        assert_eq!(next_message(ws).await, Message::text("tick"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn by_default_a_busy_socket_does_not_slide_the_session_and_closes_at_the_idle_deadline() {
    let s = WsStack::start(|c| c.set("bff.session.idle_timeout_secs", json!(2))).await;
    let (browser, cookie) = s.signed_in().await;
    let mut ws = s.open("/ws/live", &cookie).await;

    let mut echoed = 0;
    let code = loop {
        if ws.send(Message::text("tick")).await.is_err() {
            break 1006;
        }
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("an answer") {
            Some(Ok(Message::Close(frame))) => break frame.map_or(1005, |f| f.code.into()),
            Some(Ok(_)) => echoed += 1,
            _ => break 1006,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    assert_eq!(code, 1008, "closed at the idle deadline after {echoed} echoes");
    assert!(echoed >= 3, "the socket worked until then: {echoed}");
    assert_eq!(s.stack.user(&browser).await.status, 401, "the socket's frames did not keep the session");
}

#[tokio::test]
async fn with_websocket_slides_session_a_busy_socket_keeps_its_session_alive() {
    let s = WsStack::start(|c| {
        c.set("bff.session.idle_timeout_secs", json!(2)).set("bff.websocket_slides_session", json!(true))
    })
    .await;
    let (browser, cookie) = s.signed_in().await;
    let mut ws = s.open("/ws/live", &cookie).await;

    chat_for(&mut ws, 5).await;

    assert_eq!(s.stack.user(&browser).await.status, 200, "the socket's frames slid the idle timeout");
}

#[tokio::test]
async fn a_frontend_servers_websocket_hot_reload_is_relayed_with_the_same_checks() {
    let ws = WsUpstream::start();
    let cfg = StackConfig::new().set("bff.frontends", json!([{ "upstream": ws.url }]));
    let stack = Stack::start_ready(cfg).await;
    let cookie = stack.login_as(USER).await.session_cookie().expect("a session cookie");

    let foreign = connect(&stack.bff("/"), Some(&cookie), Some("http://evil.example"), &["chat.v2"]).await;
    let (mut socket, protocol) =
        connect(&stack.bff("/"), Some(&cookie), Some(&stack.bff_url), &["chat.v2"]).await.expect("opens");
    send_text(&mut socket, "{\"type\":\"ping\"}").await;

    assert_eq!(foreign.expect_err("refused").status, 403);
    assert_eq!(next_message(&mut socket).await, Message::text("{\"type\":\"ping\"}"));
    assert_eq!(protocol.as_deref(), Some("chat.v2"), "as Vite's client offers `vite-hmr` and gets it");
    assert_eq!(ws.hits(), 1);
    assert!(ws.last("authorization")[0].starts_with("Bearer "), "the user's token goes along");
    assert!(ws.last("cookie").is_empty());
}

#[tokio::test]
async fn with_dpop_on_the_websocket_handshake_carries_the_bound_token_and_a_proof_for_its_get() {
    let s = WsStack::start(common::dpop::on).await;
    let (_browser, cookie) = s.signed_in().await;

    let mut ws = s.open("/ws/chat?room=1", &cookie).await;
    send_text(&mut ws, "hello").await;
    assert_eq!(next_message(&mut ws).await, Message::text("hello"));

    let authorization = s.ws.last("authorization");
    let proof = s.ws.last("dpop");
    assert!(authorization.len() == 1 && authorization[0].starts_with("DPoP ey"), "{authorization:?}");
    assert_eq!(proof.len(), 1, "one proof");
    let token = authorization[0].trim_start_matches("DPoP ");
    let htu = common::forge::parts(&proof[0]).1["htu"].as_str().expect("htu").to_string();
    assert!(htu.starts_with(&s.ws.url) && !htu.contains('?'), "the handshake's URL without query: {htu}");
    let check = cloakroom::jwt::dpop::ProofCheck {
        htm: "GET",
        htu: &htu,
        access_token: Some(token),
        nonces: &[],
        max_age_secs: 60,
    };
    assert!(
        cloakroom::jwt::dpop::verify_proof(&proof[0], &check).is_ok(),
        "a valid proof of the session's key"
    );
}
