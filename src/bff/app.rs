//! The BFF's composition root: builds the shared parts from the configuration once, then each
//! worker's app — the middleware order and the routes. Nothing else under `bff/` builds state.
//!
//! Middleware, outermost first: request logging (span with a request id), security headers, the
//! session cookie guard ([`session::session_guard`]), actix-session ([`session::middleware`]),
//! then the route policy ([`policy::enforce`]) just outside the handlers.

use super::backchannel::Backchannel;
use super::frontend::{self, Frontends};
use super::keys::Keys;
use super::policy::PolicyTable;
use super::proxy::{PeerHeader, Upstreams, WorkerClient};
use super::session::{BffSessionStore, SessionEnder, SessionSettings};
use super::state::{BffState, PublicUrlParts};
use super::{account, backchannel, callback, login, metrics, near_cache, pages, policy, provider, proxy};
use super::{client_keys, session, sessions, tokens, websocket};
use crate::config::BffConfig;
use crate::startup::{StartupError, bind};
use crate::store::Store;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, dev::Server, web};
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

/// A pooled keep-alive HTTP client without redirects, for the provider. Idle connections go
/// after `pool_idle_secs`, before the provider's own keep-alive closes them (reqwest's default,
/// 90 s, outlives actix's 5 s and nginx's 75 s).
fn provider_http_client(pool_idle_secs: u64) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(pool_idle_secs))
        .build()
}

/// The keys of `config` (a random session key, with a warning, when none is set).
fn keys_of(config: &BffConfig) -> Result<Keys, StartupError> {
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
    Ok(Keys::derive(&key_list, config.session_id_hash_key.as_ref().and_then(|k| k.0.first())))
}

/// What every worker shares, built once.
#[derive(Clone)]
struct Shared {
    state: web::Data<BffState>,
    keys: web::Data<Keys>,
    session_store: BffSessionStore,
    ender: web::Data<SessionEnder>,
    backchannel: web::Data<Backchannel>,
    policy: web::Data<PolicyTable>,
    settings: web::Data<SessionSettings>,
    frontends: web::Data<Frontends>,
    registry: web::Data<prometheus::Registry>,
}

impl Shared {
    async fn build(config: BffConfig) -> Result<Self, StartupError> {
        // Configuration first: a route header that can never be forwarded is one line, at once.
        let upstreams = Upstreams::build(&config)?;
        let frontends = Frontends::from_config(&config)?;
        let store = Store::connect(&config.store, "bff").await?;
        let keys = keys_of(&config)?;
        // For the provider (logins, refreshes): off the hot path, shared by the workers.
        let http = provider_http_client(config.upstream_pool_idle_secs).map_err(other)?;
        let provider = provider_of(&config, &http);
        let creds = client_keys::client_credentials(&config.oidc)?;
        let metrics = Arc::new(metrics::BffMetrics::new(&Upstreams::labels(&config)).map_err(other)?);
        let (cache, tokens) = caches(&config, &store, &keys, &http, &provider, &creds, &metrics);
        let session_store = BffSessionStore::new(store.clone(), keys.clone()).with_near_cache(cache);
        let ender = SessionEnder::new(session_store.clone(), Some(tokens.clone()));
        let backchannel = Backchannel::new(ender.clone(), &metrics.registry).map_err(other)?;
        let websockets = websockets(&config, &session_store, &metrics);
        let public = PublicUrlParts::of(config.public_url.url());
        let policy = PolicyTable::new(&config, &public.origin);
        let settings = SessionSettings::of(&config);
        Ok(Self {
            registry: web::Data::new(metrics.registry.clone()),
            keys: web::Data::new(keys.clone()),
            session_store,
            ender: web::Data::new(ender),
            backchannel: web::Data::new(backchannel),
            policy: web::Data::new(policy),
            settings: web::Data::new(settings),
            frontends: web::Data::new(frontends),
            state: web::Data::new(BffState {
                public,
                upstreams,
                websockets,
                config,
                store,
                keys,
                http,
                provider,
                creds,
                tokens,
                metrics,
            }),
        })
    }
}

/// The near cache and the session tokens' keeper (refreshes, audiences, client credentials,
/// revocation), which reads through it.
fn caches(
    config: &BffConfig,
    store: &Store,
    keys: &Keys,
    http: &reqwest::Client,
    provider: &provider::Provider,
    creds: &crate::oidc::ClientCredentials,
    metrics: &Arc<metrics::BffMetrics>,
) -> (near_cache::NearCache, tokens::TokenCare) {
    let cache = near_cache::NearCache::new(
        store,
        config.near_cache_entries,
        Duration::from_secs(config.session.absolute_timeout_secs),
        &metrics.near_cache,
    );
    let tokens = tokens::TokenCare::new(
        store.clone(),
        keys.clone(),
        http.clone(),
        provider.clone(),
        creds.clone(),
        tokens::RefreshTiming::from_config(config),
        metrics.clone(),
    )
    .with_near_cache(cache.clone())
    .with_login_resource(config.oidc.resource.as_ref())
    .keeping_id_token(config.logout_id_token_hint);
    (cache, tokens)
}

/// The provider's metadata and keys, loading in the background from now on.
fn provider_of(config: &BffConfig, http: &reqwest::Client) -> provider::Provider {
    let par_required = config.oidc.par == crate::config::ParMode::Required;
    let provider = provider::Provider::new(http.clone(), config.oidc.issuer.clone(), par_required)
        .requiring_dpop(config.oidc.dpop == crate::config::DpopMode::On);
    provider.load_in_background();
    provider
}

/// The relayed WebSockets' registry (closing them when their session ends), limits and metrics.
fn websockets(
    config: &BffConfig,
    sessions: &BffSessionStore,
    metrics: &Arc<metrics::BffMetrics>,
) -> websocket::Sockets {
    websocket::Sockets {
        registry: websocket::SocketRegistry::new(
            sessions.clone(),
            config.websocket_slides_session.then_some(config.session.idle_timeout_secs),
        ),
        limits: websocket::Limits {
            max_message_bytes: config.websocket_max_message_bytes,
            idle: Duration::from_secs(config.websocket_idle_timeout_secs),
        },
        connect_timeout: Duration::from_secs(config.upstream_timeout_secs),
        metrics: metrics.clone(),
    }
}

/// The routes. Every one has an entry in [`PolicyTable`], which says what it asks of a request.
fn routes(cfg: &mut web::ServiceConfig, metrics_on_main: bool) {
    cfg.route("/healthz", web::get().to(crate::web::healthz)).route("/readyz", web::get().to(pages::readyz));
    crate::web::MetricsEndpoint::routes(metrics_on_main)(cfg);
    cfg.service(
        web::scope("/bff")
            .wrap(DefaultHeaders::new().add(crate::web::no_store()))
            .route("/login", web::get().to(login::login))
            .route("/callback", web::get().to(callback::callback))
            .route("/user", web::get().to(account::user))
            .route("/logout", web::post().to(account::logout))
            .route("/sessions", web::get().to(sessions::list))
            .route("/sessions/{id}", web::delete().to(sessions::delete))
            .route("/jwks", web::get().to(client_keys::jwks))
            .route("/backchannel-logout", web::post().to(backchannel::backchannel_logout)),
    )
    // Requests the policy matched to a frontend's built files; everything else the proxy serves
    // (routes, frontend servers) or refuses.
    .service(
        web::resource("/{tail:.*}")
            .guard(actix_web::guard::fn_guard(frontend::is_frontend_request))
            .to(frontend::serve),
    )
    .default_service(web::to(proxy::proxy));
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
        let shutdown_timeout = config.shutdown_timeout_secs;
        let pool_idle_secs = config.upstream_pool_idle_secs;
        let idle_timeout_secs = config.session.idle_timeout_secs;
        let metrics_listen = config.metrics_listen.map(|l| l.0);
        let trace_trust = crate::telemetry::TraceTrust(config.telemetry.trust_incoming_traceparent);
        let shared = Shared::build(config).await?;
        let metrics = crate::web::MetricsEndpoint::start(metrics_listen, &shared.registry, shutdown_timeout)?;
        let metrics_on_main = metrics.on_main_listener();
        let server = HttpServer::new(move || {
            let s = &shared;
            App::new()
                .app_data(trace_trust)
                .app_data(s.state.clone())
                // Per worker: see `WorkerClient`.
                .app_data(web::Data::new(WorkerClient::new(pool_idle_secs)))
                .app_data(s.registry.clone())
                .app_data(s.backchannel.clone())
                .app_data(s.ender.clone())
                .app_data(web::Data::new(s.session_store.clone()))
                .app_data(s.keys.clone())
                .app_data(s.policy.clone())
                .app_data(s.settings.clone())
                .app_data(s.frontends.clone())
                .configure(|cfg| routes(cfg, metrics_on_main))
                .wrap(from_fn(policy::enforce))
                .wrap(session::middleware(s.session_store.clone(), &s.keys, idle_timeout_secs))
                .wrap(from_fn(session::session_guard))
                .wrap(crate::web::security_headers())
                .wrap(crate::web::request_logger())
        })
        // Nagle on an accepted socket stalls streamed responses by up to 40 ms.
        .tcp_nodelay(true)
        .on_connect(PeerHeader::on_connect)
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)
        .map_err(other)?
        .run();
        Ok(Self { port, server, metrics })
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
