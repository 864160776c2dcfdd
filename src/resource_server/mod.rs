//! The reference resource server: a notes API that verifies every Bearer JWT on its own
//! (signature by the issuer's JWKS, algorithm bound to the key, `typ`, `iss`, `aud`, `exp`,
//! `nbf`) with no call to the auth server per request. The verifier is reusable:
//! [`BearerToken`] is an actix extractor any service can use.

mod auth;
mod metrics;
mod notes;

pub use auth::{AccessTokenVerifier, BearerToken};
pub use notes::Note;

use crate::config::ResourceServerConfig;
use crate::jwt::{JwksCache, Verifier};
use crate::startup::{StartupError, bind};
use crate::store::Store;
use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use std::net::TcpListener;
use std::time::Duration;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    metrics: crate::web::MetricsEndpoint,
}

fn other(e: impl std::fmt::Display) -> StartupError {
    StartupError::Other(e.to_string())
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
        let port = listener.local_addr().map_err(other)?.port();
        let store = Store::connect(&config.store, "resource-server").await?;
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(other)?;
        let registry = prometheus::Registry::new();
        let metrics = metrics::Metrics::register(&registry).map_err(other)?;
        let jwks = JwksCache::for_issuer(
            http,
            config.issuer.clone(),
            Duration::from_secs(config.jwks_min_refetch_secs),
        )
        .with_fetch_counter(metrics.jwks_fetches.clone());
        let verifier = web::Data::new(
            AccessTokenVerifier::new(Verifier::new(jwks, config.leeway_secs), config.audience.clone())
                .with_outcome_counter(metrics.token_checks.clone()),
        );
        let shutdown_timeout = config.shutdown_timeout_secs;
        let trace_trust = crate::telemetry::TraceTrust(config.telemetry.trust_incoming_traceparent);
        let metrics_endpoint = crate::web::MetricsEndpoint::start(
            config.metrics_listen.map(|l| l.0),
            &registry,
            shutdown_timeout,
        )?;
        let on_main = metrics_endpoint.on_main_listener();
        let store = web::Data::new(store);
        let registry = web::Data::new(registry);
        let metrics = web::Data::new(metrics);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(trace_trust)
                .app_data(verifier.clone())
                .app_data(store.clone())
                .app_data(registry.clone())
                .app_data(metrics.clone())
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route("/healthz", web::get().to(crate::web::healthz))
                .route("/readyz", web::get().to(readyz))
                .configure(crate::web::MetricsEndpoint::routes(on_main))
                .route("/whoami", web::get().to(notes::whoami))
                .route("/notes", web::get().to(notes::list))
                .route("/notes", web::post().to(notes::create))
                .route("/notes/{id}", web::delete().to(notes::delete))
                .wrap(crate::web::security_headers())
                .wrap(crate::web::request_logger())
        })
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)
        .map_err(other)?
        .run();
        Ok(Self { port, server, metrics: metrics_endpoint })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.metrics.serve_beside(self.server).await.map_err(other)
    }
}

/// `GET /readyz`: 200 when the store answers and the issuer's keys are loaded.
async fn readyz(store: web::Data<Store>, verifier: web::Data<AccessTokenVerifier>) -> HttpResponse {
    let store_ok = store.ping().await.is_ok();
    let keys_ok = verifier.verifier.jwks().ensure_loaded().await.is_ok();
    let body = serde_json::json!({ "store": store_ok, "issuer_keys": keys_ok });
    if store_ok && keys_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
