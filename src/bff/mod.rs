//! The BFF session broker (contract §3): the browser holds one opaque `__Host-cloakroom` cookie;
//! the BFF holds the tokens, refreshes them, and proxies API calls with `Authorization: Bearer`.
//!
//! Layout: `login`/`callback` (code flow), `session`/`session_store` (actix-session over the
//! project store, typed), `tokens` (single-flight refresh), `proxy`/`upstream` (the proxy),
//! `account` (`/bff/user`, `/bff/logout`), `sessions` (`/bff/sessions`, session control), `client_info` (coarse client), `backchannel` (back-channel logout), `pages`
//! (server-rendered page, SPA files, readyz), `csrf`, `guard` (cookie strictness, store-failure mapping), `paths` (untrusted paths).

mod account;
pub mod admin;
pub mod backchannel;
mod callback;
pub mod client_info;
pub mod csrf;
pub mod guard;
pub mod header_policy;
pub mod id_token;
mod login;
pub mod metrics;
pub mod near_cache;
mod pages;
pub mod paths;
pub mod provider;
mod proxy;
pub mod refresh_lock;
mod request_scope;
pub mod session;
pub mod session_store;
pub mod sessions;
pub mod state;
pub mod token_record;
pub mod tokens;
mod upstream;
pub mod upstream_client;

use crate::config::BffConfig;
use crate::oidc::ClientCredentials;
use crate::startup::{StartupError, bind};
use crate::store::Store;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::SameSite;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};
use state::{BffState, Keys};
use std::net::TcpListener;
use std::sync::Arc;
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

/// A pooled keep-alive HTTP client without redirects. Idle connections go after
/// `pool_idle_secs`, before the upstream's own keep-alive closes them (reqwest's default, 90 s,
/// outlives actix's 5 s and nginx's 75 s).
fn http_client(pool_idle_secs: u64) -> reqwest::Result<reqwest::Client> {
    client_builder().pool_idle_timeout(Duration::from_secs(pool_idle_secs)).build()
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
}

impl Application {
    /// Binds `config.listen` and builds the server.
    pub async fn build(config: BffConfig) -> Result<Self, StartupError> {
        let listener = bind(config.listen.0)?;
        Self::build_with_listener(config, listener).await
    }

    /// Builds the server on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(config: BffConfig, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener.local_addr().map_err(other)?.port();
        // Configuration first: a route header that can never be forwarded is one line, at once.
        let request_headers = header_policy::RoutePolicies::build(&config.routes)?;
        let store = Store::connect(&config.store, "bff").await?;
        let key_list = match &config.session_key {
            Some(k) => k.0.clone(),
            None => {
                tracing::warn!("bff.session_key is not set: using a random key; sessions end on restart");
                vec![crate::crypto::random_bytes::<32>()]
            }
        };
        if config.session_id_hash_key.as_ref().is_some_and(|k| k.0.len() != 1) {
            return Err(
                crate::config::ConfigError::new("bff.session_id_hash_key", "takes exactly one key").into()
            );
        }
        let keys = Keys::derive(&key_list, config.session_id_hash_key.as_ref().and_then(|k| k.0.first()));
        let shutdown_timeout = config.shutdown_timeout_secs;
        let pool_idle_secs = config.upstream_pool_idle_secs;
        // For the provider (logins, refreshes): off the hot path, shared by the workers.
        let http = http_client(pool_idle_secs).map_err(other)?;
        let provider = provider::Provider::new(http.clone(), config.oidc.issuer.clone());
        provider.load_in_background();
        let creds = ClientCredentials {
            client_id: config.oidc.client_id.clone(),
            client_secret: config.oidc.client_secret.clone(),
        };
        let route_labels: Vec<&str> = config.routes.iter().map(|r| r.path.as_str()).collect();
        let metrics = Arc::new(metrics::BffMetrics::new(&route_labels).map_err(other)?);
        let cache = near_cache::NearCache::new(
            &store,
            config.near_cache_entries,
            std::time::Duration::from_secs(config.session.absolute_timeout_secs),
            &metrics.near_cache,
        );
        let tokens = tokens::TokenCare::new(
            store.clone(),
            keys.clone(),
            http.clone(),
            provider.clone(),
            creds.clone(),
            tokens::RefreshTiming::from_config(&config),
            metrics.clone(),
        )
        .with_near_cache(cache.clone())
        .keeping_id_token(config.logout_id_token_hint);
        let metrics_endpoint = crate::web::MetricsEndpoint::start(
            config.metrics_listen.map(|l| l.0),
            &metrics.registry,
            config.shutdown_timeout_secs,
        )?;
        let metrics_on_main = metrics_endpoint.on_main_listener();
        let registry = web::Data::new(metrics.registry.clone());
        let idle = config.session.idle_timeout_secs;
        let session_store =
            session_store::BffSessionStore::new(store.clone(), keys.clone()).with_near_cache(cache);
        let bcl = web::Data::new(
            backchannel::Backchannel::new(session_store.clone(), &metrics.registry).map_err(other)?,
        );
        let session_data = web::Data::new(session_store.clone());
        let public = state::PublicUrlParts::of(config.public_url.url());
        let state = web::Data::new(BffState {
            public,
            request_headers,
            config,
            store,
            keys: keys.clone(),
            http,
            provider,
            creds,
            tokens,
            metrics,
        });

        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(session_store.clone(), keys.cookie_key.clone())
                .cookie_name(guard::SESSION_COOKIE.to_string())
                .cookie_secure(true)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .cookie_path("/".to_string())
                .cookie_domain(None)
                .cookie_content_security(CookieContentSecurity::Signed)
                // Only changed state is written: the idle extension is written by
                // `TypedSession::current` at most once per tenth of the idle timeout, never a
                // TTL refresh per request.
                .session_lifecycle(
                    BrowserSession::default()
                        .state_ttl(actix_web::cookie::time::Duration::seconds(idle as i64))
                        .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                )
                .build();
            // Per worker: see `upstream_client::WorkerClient`.
            let upstream = web::Data::new(upstream_client::WorkerClient::new(pool_idle_secs));
            App::new()
                .app_data(state.clone())
                .app_data(upstream)
                .app_data(registry.clone())
                .app_data(bcl.clone())
                .app_data(session_data.clone())
                .route("/healthz", web::get().to(crate::web::healthz))
                .route("/readyz", web::get().to(pages::readyz))
                .configure(crate::web::MetricsEndpoint::routes(metrics_on_main))
                .route("/", web::get().to(pages::index))
                .route("/notes-form", web::post().to(pages::notes_form))
                .route("/app", web::get().to(pages::app_redirect))
                .route("/app/", web::get().to(pages::app_index))
                .route("/app/app.js", web::get().to(pages::app_js))
                .route("/app/app.css", web::get().to(pages::app_css))
                .service(
                    web::scope("/bff")
                        .wrap(DefaultHeaders::new().add(crate::web::no_store()))
                        .route("/login", web::get().to(login::login))
                        .route("/callback", web::get().to(callback::callback))
                        .route("/user", web::get().to(account::user))
                        .route("/logout", web::post().to(account::logout))
                        .route("/sessions", web::get().to(sessions::list))
                        .route("/sessions/{id}", web::delete().to(sessions::delete))
                        // Server to server (the provider): no cookie, no CSRF rules; the signed
                        // logout token is the credential.
                        .route("/backchannel-logout", web::post().to(backchannel::backchannel_logout)),
                )
                .default_service(web::to(proxy::proxy))
                .wrap(sessions)
                .wrap(from_fn(guard::session_guard))
                .wrap(crate::web::security_headers())
                .wrap(crate::web::request_logger())
        })
        // Nagle on an accepted socket stalls streamed responses by up to 40 ms.
        .tcp_nodelay(true)
        .on_connect(upstream::PeerHeader::on_connect)
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
