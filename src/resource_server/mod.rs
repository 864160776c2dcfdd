//! The reference resource server: a notes API that verifies every Bearer JWT on its own
//! (signature by the issuer's JWKS, algorithm bound to the key, `typ`, `iss`, `aud`, `exp`,
//! `nbf`) with no call to the auth server per request. The verifier is reusable:
//! [`BearerToken`] is an actix extractor any service can use.

mod auth;
mod dpop;
mod metrics;
mod notes;
mod pages;

pub use auth::{AccessTokenVerifier, BearerToken};
pub use dpop::DpopPolicy;
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
    /// The demo's server-rendered pages, when `pages_listen` is set.
    pages: Option<Server>,
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

    /// Builds the server on an already bound listener (tests bind port 0); the pages, when
    /// `pages_listen` is set, on that address.
    pub async fn build_with_listener(
        config: ResourceServerConfig,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let pages = config.pages_listen.map(|l| bind(l.0)).transpose()?;
        Self::build_with_listeners(config, listener, pages).await
    }

    /// Builds the API on `listener` and the pages on `pages` (tests bind port 0 for both).
    pub async fn build_with_listeners(
        config: ResourceServerConfig,
        listener: TcpListener,
        pages: Option<TcpListener>,
    ) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(other)?.port();
        let store = web::Data::new(Store::connect(&config.store, "resource-server").await?);
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(other)?;
        let registry = prometheus::Registry::new();
        let metrics = metrics::Metrics::register(&registry).map_err(other)?;
        let dpop = DpopPolicy::new(store.get_ref().clone(), config.public_url.clone(), config.dpop_nonce);
        let verifier = web::Data::new(verifier(&config, http.clone(), &metrics).with_dpop(dpop));
        let shutdown_timeout = config.shutdown_timeout_secs;
        let trace_trust = crate::telemetry::TraceTrust(config.telemetry.trust_incoming_traceparent);
        let metrics_endpoint = crate::web::MetricsEndpoint::start(
            config.metrics_listen.map(|l| l.0),
            &registry,
            shutdown_timeout,
        )?;
        let on_main = metrics_endpoint.on_main_listener();
        let pages = match pages {
            Some(l) => {
                let userinfo = web::Data::new(pages::UserInfo::new(http, config.issuer.clone()));
                Some(pages_server(l, verifier.clone(), store.clone(), userinfo, shutdown_timeout)?)
            }
            None => None,
        };
        let (registry, metrics) = (web::Data::new(registry), web::Data::new(metrics));
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
        Ok(Self { port, server, metrics: metrics_endpoint, pages })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let api = self.metrics.serve_beside(self.server);
        match self.pages {
            Some(pages) => {
                let (a, p) = tokio::join!(api, pages);
                a.and(p).map_err(other)
            }
            None => api.await.map_err(other),
        }
    }
}

/// The access-token verifier: the issuer's keys by discovery, cached, counted.
fn verifier(
    config: &ResourceServerConfig,
    http: reqwest::Client,
    metrics: &metrics::Metrics,
) -> AccessTokenVerifier {
    let jwks =
        JwksCache::for_issuer(http, config.issuer.clone(), Duration::from_secs(config.jwks_min_refetch_secs))
            .with_fetch_counter(metrics.jwks_fetches.clone());
    AccessTokenVerifier::new(Verifier::new(jwks, config.leeway_secs), config.audience.clone())
        .with_outcome_counter(metrics.token_checks.clone())
        .with_required_authentication(config.required_acr.clone(), config.max_auth_age_secs)
}

/// The notes demo's pages server ([`pages`]) on `listener`.
fn pages_server(
    listener: TcpListener,
    verifier: web::Data<AccessTokenVerifier>,
    store: web::Data<Store>,
    userinfo: web::Data<pages::UserInfo>,
    shutdown_timeout: u64,
) -> Result<Server, StartupError> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .app_data(store.clone())
            .app_data(userinfo.clone())
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .route("/", web::get().to(pages::index))
            .route("/notes-form", web::post().to(pages::notes_form))
            .route("/healthz", web::get().to(crate::web::healthz))
            .default_service(web::to(not_found))
            .wrap(crate::web::request_logger())
    })
    .tcp_nodelay(true)
    .shutdown_timeout(shutdown_timeout)
    .listen(listener)
    .map_err(other)?
    .run();
    Ok(server)
}

/// Any other request to the pages: the contract's JSON 404.
async fn not_found() -> Result<HttpResponse, crate::web::ApiError> {
    Err(crate::web::ApiError::new(crate::web::ErrorCode::NotFound, "no such page"))
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
