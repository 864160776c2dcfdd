//! The harness's own guarantees: a private Redis that can be killed and restarted.

mod common;

use common::redis::RedisServer;

#[test]
fn a_private_redis_server_answers_and_can_be_stopped_and_restarted_on_its_port() {
    let server = RedisServer::start();
    assert!(server.ping());
    server.stop();
    assert!(!server.ping(), "a stopped server must not answer");
    server.restart();
    assert!(server.ping());
}

#[test]
fn the_shared_server_is_one_server_per_test_binary() {
    let a = common::redis::shared();
    let b = common::redis::shared();
    assert_eq!(a.port(), b.port());
    assert!(a.ping());
}

#[tokio::test]
async fn the_browser_keeps_cookies_and_forgets_expired_ones() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/set",
                web::get().to(|| async {
                    HttpResponse::Ok().insert_header(("Set-Cookie", "a=1; Path=/; HttpOnly")).finish()
                }),
            )
            .route(
                "/clear",
                web::get().to(|| async {
                    HttpResponse::Ok().insert_header(("Set-Cookie", "a=; Path=/; Max-Age=0")).finish()
                }),
            )
            .route(
                "/echo",
                web::get().to(|req: actix_web::HttpRequest| async move {
                    let c =
                        req.headers().get("cookie").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    HttpResponse::Ok().body(c)
                }),
            )
    })
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let browser = common::Browser::new();
    let base = format!("http://127.0.0.1:{port}");
    browser.get(&format!("{base}/set")).await;
    assert_eq!(browser.get(&format!("{base}/echo")).await.body, "a=1");
    browser.get(&format!("{base}/clear")).await;
    assert_eq!(browser.get(&format!("{base}/echo")).await.body, "");
}
