//! Step-up arrange steps: the demo user with a TOTP secret (the reference auth server's second
//! factor), the current code, the code form, and a stub upstream that answers every request
//! with one `401` challenge (a fault the real resource server never produces: a malformed one).

use super::browser::{Browser, Page};
use super::{StackConfig, USER};
use serde_json::json;

/// USER's TOTP secret (base32, 160 bits).
pub const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// The reference auth server's two authentication levels.
pub const ACR_PWD: &str = "urn:cloakroom:pwd";
/// Password and TOTP code.
pub const ACR_MFA: &str = "urn:cloakroom:mfa";

/// `cfg` with USER given [`TOTP_SECRET`] (the other user has no second factor).
pub fn with_totp_user(cfg: StackConfig) -> StackConfig {
    let mut users = cfg.doc["auth_server"]["users"].clone();
    users[0] = json!({ "username": USER.0, "password": USER.1, "totp_secret": TOTP_SECRET });
    cfg.set("auth_server.users", users)
}

/// The current code of [`TOTP_SECRET`].
pub fn current_code() -> String {
    let bytes = totp_rs::Secret::Encoded(TOTP_SECRET.into()).to_bytes().expect("base32");
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes).expect("totp");
    totp.generate_current().expect("clock")
}

/// Fills the code form on `page` with `code` and submits it.
pub async fn submit_code(browser: &Browser, page: &Page, code: &str) -> Page {
    assert_eq!(page.status, 200, "expected the code form, got {}: {}", page.status, page.body);
    assert!(page.body.contains("name=\"code\""), "not the code form: {}", page.body);
    let action = page.form_action().expect("code form has an action");
    let mut fields: Vec<(String, String)> = page.inputs().into_iter().filter(|(n, _)| n != "code").collect();
    fields.push(("code".into(), code.into()));
    browser.post_form(&action, &fields).await
}

/// A stub upstream answering every request `401` with `WWW-Authenticate: <challenge>`;
/// returns its base URL and the count of requests it saw.
pub async fn challenge_upstream(challenge: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (answer, counted) = (
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {challenge}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        ),
        hits.clone(),
    );
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, hits)
}
