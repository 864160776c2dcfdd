//! More APIs beside a stack's own resource server: reference resource servers with their own
//! audience (RFC 8707 resource), on ports known before the stack starts, so that the BFF's
//! routes can name them.

use cloakroom::config::{ConfigSource, ResourceServerConfig};
use serde_json::json;
use std::net::TcpListener;

/// One more API: a reference resource server accepting only tokens for `audience`.
pub struct Api {
    listener: TcpListener,
    /// Its base URL.
    pub url: String,
    /// The audience (resource indicator) its tokens must carry.
    pub audience: String,
}

impl Api {
    /// An API for `audience` on a fresh port, not started yet.
    pub fn new(audience: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        Self { listener, url, audience: audience.to_owned() }
    }

    /// Starts it with the stack's resource-server settings (issuer, store) but its own
    /// audience and namespace; `stack_doc` is the stack's configuration document.
    pub async fn start(self, stack_doc: &serde_json::Value) -> String {
        let mut doc = stack_doc["resource_server"].clone();
        doc["audience"] = json!(self.audience);
        let ns = doc["redis_namespace"].as_str().unwrap_or("rs").to_owned();
        doc["redis_namespace"] = json!(format!("{ns}-{}", cloakroom::crypto::random_token(4)));
        let cfg: ResourceServerConfig = ConfigSource::from_toml_str("")
            .set("resource_server", &doc)
            .section("resource_server")
            .expect("resource server config");
        let app = cloakroom::resource_server::Application::build_with_listener(cfg, self.listener)
            .await
            .expect("resource server starts");
        tokio::spawn(app.run_until_stopped());
        super::apps::wait_ready(&self.url).await;
        self.url
    }
}
