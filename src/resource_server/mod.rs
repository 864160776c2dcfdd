//! The reference resource server: a notes API that verifies Bearer JWTs on its own.

use crate::config::ResourceServerConfig;
use crate::startup::{StartupError, bind};
use actix_web::{App, HttpServer, dev::Server, web};
use std::net::TcpListener;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `config.listen` and builds the server.
    pub async fn build(config: ResourceServerConfig) -> Result<Self, StartupError> {
        let listener = bind(config.listen.0)?;
        Self::build_with_listener(config, listener).await
    }

    /// Builds the server on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(
        config: ResourceServerConfig,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let _ = config;
        let port = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?.port();
        let server =
            HttpServer::new(move || App::new().route("/healthz", web::get().to(crate::web::healthz)))
                .listen(listener)
                .map_err(|e| StartupError::Other(e.to_string()))?
                .run();
        Ok(Self { port, server })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.server.await.map_err(|e| StartupError::Other(e.to_string()))
    }
}
