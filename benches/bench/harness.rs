//! The integration-test harness (`tests/common/`), reused as it is: the browser-like client,
//! the login flow through the real login form, and the private `redis-server`. The flow
//! functions name `super::{Browser, Page, Stack, StackConfig, CLIENT_ID, USER}`; this module
//! provides them.
#![allow(dead_code, unused_imports)]

#[path = "../../tests/common/browser.rs"]
pub mod browser;
#[path = "../../tests/common/oidc_flow.rs"]
pub mod oidc_flow;
#[path = "../../tests/common/redis.rs"]
pub mod redis;
#[path = "../../tests/common/redis_process.rs"]
pub mod redis_process;

pub use browser::{Browser, Page};

/// The client id the deployments register for their BFFs.
pub const CLIENT_ID: &str = "cloakroom-bff";
/// The user the benchmark logs in as (seeded by its deployments).
pub const USER: (&str, &str) = ("alice", "alice-password");

/// The harness's in-process stack configuration, as far as the flow helpers touch it (only
/// `oidc_flow::with_other_client` does, which the bench does not use).
pub struct StackConfig {
    /// `{"bff": …, "auth_server": …, "resource_server": …}`.
    pub doc: serde_json::Value,
}

/// What the login flow needs of a deployment: where the auth server and one BFF listen, and
/// the BFF's client secret.
pub struct Stack {
    /// Base URL of the auth server (the issuer).
    pub auth_url: String,
    /// Base URL of the BFF instance the flow goes through.
    pub bff_url: String,
    /// The client secret registered for the BFF.
    pub secret: String,
}

impl Stack {
    /// The client secret registered for the BFF.
    pub fn client_secret(&self) -> String {
        self.secret.clone()
    }
}
