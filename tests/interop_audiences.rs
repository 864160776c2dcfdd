//! Many APIs, one session, against node-oidc-provider with `resourceIndicators` for three
//! resources (the login's and two APIs') and the client credentials grant: the BFF unchanged,
//! each API a cloakroom resource server accepting only its own audience.

mod common;

use common::Browser;
use common::apis::Api;
use common::browser::{assert_error_code, call, call_spread};
use common::interop::{InteropStack, InteropStackBuilder};
use common::oidc_provider::PROVIDER_USER_SUB;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const API_A: &str = "https://notes.api.test";
const API_B: &str = "https://billing.api.test";

/// The provider knows both APIs' resources; the BFF names its login's own resource and fronts
/// the two APIs at `/a` and `/b`.
fn two_apis(a: &Api, b: &Api) -> InteropStackBuilder {
    InteropStack::builder()
        .provider(|o| {
            o.extra_resources = vec![API_A.into(), API_B.into()];
            o.client_credentials = true;
        })
        .login_resource()
        .bff(
            "routes",
            json!([
                { "path": "/a", "upstream": a.url, "resource": API_A },
                { "path": "/b", "upstream": b.url, "resource": API_B },
                { "path": "/app-a", "upstream": a.url, "resource": API_A, "token": "client", "session": "none" },
            ]),
        )
}

#[tokio::test]
async fn two_apis_at_oidc_provider_get_their_own_audience_refreshed_once_per_audience_and_expiry() {
    let (a, b) = (Api::new(API_A), Api::new(API_B));
    let builder = two_apis(&a, &b).access_token_ttl(3).instances(2);
    let stack = builder.start().await;
    a.start(&stack.doc).await;
    b.start(&stack.doc).await;
    let browser = Browser::new();
    let done = stack.login(&browser).await;
    assert_eq!(done.status, 302, "callback: {}", done.body);

    for (route, audience) in [("/a", API_A), ("/b", API_B)] {
        let page = call(&browser, stack.bff(), &format!("{route}/whoami")).await;
        assert_eq!(page.status, 200, "{route}: {}", page.body);
        assert_eq!(page.json()["aud"], json!(audience), "{}", page.body);
        assert_eq!(page.json()["sub"], PROVIDER_USER_SUB);
    }
    assert_eq!(stack.op.stats().await.refreshes, 2, "one grant per audience");

    for round in 1..=2u64 {
        tokio::time::sleep(Duration::from_millis(3100)).await;
        let bases = stack.bff_urls();
        let (pages_a, pages_b) = tokio::join!(
            call_spread(&browser, &bases, 20, "/a/whoami"),
            call_spread(&browser, &bases, 20, "/b/whoami"),
        );
        for p in pages_a.iter().chain(&pages_b) {
            assert_eq!(p.status, 200, "round {round}: {}: {}", p.url, p.body);
        }
        for pages in [&pages_a, &pages_b] {
            let jtis: HashSet<String> = pages.iter().map(|p| p.json()["jti"].to_string()).collect();
            assert_eq!(jtis.len(), 1, "round {round}: one token per audience");
        }
        let stats = stack.op.stats().await;
        assert_eq!(stats.refreshes, 2 + 2 * round, "round {round}: {stats:?}");
        assert_eq!((stats.refresh_token_reuse, stats.refresh_invalid_grant), (0, 0), "{stats:?}");
    }
}

#[tokio::test]
async fn a_client_route_at_oidc_provider_gets_one_client_credentials_token_for_every_call() {
    let (a, b) = (Api::new(API_A), Api::new(API_B));
    let stack = two_apis(&a, &b).instances(2).start().await;
    a.start(&stack.doc).await;
    b.start(&stack.doc).await;
    let anonymous = Browser::new();

    let pages = call_spread(&anonymous, &stack.bff_urls(), 20, "/app-a/whoami").await;

    for p in &pages {
        assert_eq!(p.status, 200, "{}: {}", p.url, p.body);
        assert_eq!(p.json()["aud"], json!(API_A), "{}", p.body);
        assert_eq!(p.json()["sub"], json!(stack.op.client_id()), "the application's own token: {}", p.body);
    }
    assert_eq!(stack.op.stats().await.client_credentials, 1);
    assert_error_code(&call(&anonymous, stack.bff(), "/a/whoami").await, 401, "unauthenticated");
}
