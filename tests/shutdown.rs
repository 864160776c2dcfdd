//! Graceful shutdown of the real binary: on SIGTERM a program stops accepting connections,
//! finishes the requests in flight (bounded by `shutdown_timeout_secs`) and exits 0; SIGINT
//! exits 0 too. Every program and the demo.

mod common;

use common::apps::start_auth_and_resource_server;
use common::binary::{Program, wait_healthy};
use common::redis::free_port;
use common::{StackConfig, USER};
use std::time::{Duration, Instant};

/// An upstream whose every answer takes a second: a request in flight during the shutdown.
async fn slow_upstream() -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            HttpResponse::Ok().body("finished")
        }))
    })
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test]
async fn on_sigterm_the_bff_refuses_new_connections_finishes_the_request_in_flight_and_exits_0() {
    let cfg = StackConfig::new();
    let doc = cfg.doc["bff"].clone();
    // The auth and resource servers run here; the BFF is the real binary on the stack's BFF port.
    let stack = start_auth_and_resource_server(cfg).await;
    let slow = slow_upstream().await;
    let addr = stack.bff_url.trim_start_matches("http://").to_string();
    let config = common::binary::bff_config_file(&doc, "shutdown_timeout_secs = 5", &[("/slow", &slow)]);
    let mut bff = Program::start(&["bff"], &[], Some(&config));
    wait_healthy(&stack.bff("/readyz")).await;
    let browser = stack.login_as(USER).await;

    let in_flight = stack.api_get(&browser, "/slow/report");
    let shutdown = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bff.signal(libc::SIGTERM);
        let signalled = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let refused = tokio::net::TcpStream::connect(&addr).await.is_err();
        (signalled, refused)
    };
    let (page, (signalled, refused)) = tokio::join!(in_flight, shutdown);

    assert!(refused, "no new connections once SIGTERM arrived");
    assert_eq!(page.status, 200, "the request in flight finished: {}", page.body);
    assert_eq!(page.body, "finished");
    let status =
        bff.wait_for_exit(Duration::from_secs(8)).expect("the BFF exits within its shutdown timeout");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(8));
}

/// A command, its environment and its health URL.
type ProgramSpec = (&'static str, Vec<(String, String)>, String);

/// Each program on free ports, with in-memory stores.
fn programs() -> Vec<ProgramSpec> {
    let (bff, auth, rs) = (free_port(), free_port(), free_port());
    let listen = |p: u16| format!("127.0.0.1:{p}");
    let issuer = format!("http://127.0.0.1:{auth}");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_string();
    let bff_env = vec![
        ("CLOAKROOM_BFF__LISTEN".to_string(), listen(bff)),
        ("CLOAKROOM_BFF__SESSION_KEY".to_string(), key),
        ("CLOAKROOM_BFF__OIDC__ISSUER".to_string(), issuer.clone()),
        ("CLOAKROOM_BFF__OIDC__CLIENT_ID".to_string(), "cloakroom-bff".to_string()),
        ("CLOAKROOM_BFF__OIDC__CLIENT_SECRET".to_string(), "a-secret-of-some-length".to_string()),
    ];
    let auth_env = vec![
        ("CLOAKROOM_AUTH_SERVER__LISTEN".to_string(), listen(auth)),
        ("CLOAKROOM_AUTH_SERVER__ISSUER".to_string(), issuer.clone()),
    ];
    let rs_env = vec![
        ("CLOAKROOM_RESOURCE_SERVER__LISTEN".to_string(), listen(rs)),
        ("CLOAKROOM_RESOURCE_SERVER__ISSUER".to_string(), issuer.clone()),
    ];
    let mut demo_env = vec![
        ("CLOAKROOM_BFF__LISTEN".to_string(), listen(bff)),
        ("CLOAKROOM_BFF__OIDC__ISSUER".to_string(), issuer.clone()),
    ];
    demo_env.extend(auth_env.clone());
    demo_env.extend(rs_env.clone());
    vec![
        ("bff", bff_env, format!("http://127.0.0.1:{bff}/healthz")),
        ("auth-server", auth_env, format!("http://127.0.0.1:{auth}/healthz")),
        ("resource-server", rs_env, format!("http://127.0.0.1:{rs}/healthz")),
        ("demo", demo_env, format!("http://127.0.0.1:{bff}/healthz")),
    ]
}

#[tokio::test]
async fn every_program_and_the_demo_exit_0_on_sigterm_and_on_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        for (command, env, health) in programs() {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut program = Program::start(&[command], &env, None);
            wait_healthy(&health).await;

            program.signal(signal);

            let status = program
                .wait_for_exit(Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{command} still runs 10 s after signal {signal}"));
            assert_eq!(status.code(), Some(0), "{command} on signal {signal}: {status:?}");
        }
    }
}
