//! The reference OpenID Connect provider: authorization code flow with PKCE S256, rotating
//! refresh tokens with reuse detection, RFC 7009 revocation, userinfo, RP-initiated and
//! back-channel logout. Every piece of state lives in the [`Store`](crate::store::Store), so
//! instances sharing a Redis (and a signing key file) behave as one. [`admin`] is the
//! operator's `cloakroom auth-server revoke`.

pub mod admin;
mod authorize;
mod backchannel;
mod client_assertion;
mod clients;
mod codes;
mod delivery;
mod discovery;
mod dpop;
mod errors;
mod grants;
mod login;
mod login_session;
mod login_totp;
mod logout;
mod metrics;
mod pages;
mod par;
mod params;
mod passwords;
mod pending;
mod pushed;
mod rate_limit;
mod resources;
mod revoke;
mod second_factor;
mod state;
mod token;
mod token_client;
mod token_code;
mod token_refresh;
mod token_response;
mod tokens;
mod userinfo;
mod users;

pub use login_session::COOKIE as LOGIN_COOKIE;

use crate::config::AuthServerConfig;
use crate::startup::{StartupError, bind};
use actix_web::{App, HttpResponse, HttpServer, dev::Server, web};
use state::AppState;
use std::net::TcpListener;

/// Largest form body accepted (logins, token requests).
const BODY_LIMIT: usize = 16 * 1024;

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    metrics: crate::web::MetricsEndpoint,
}

impl Application {
    /// Binds `config.listen` and builds the server.
    pub async fn build(config: AuthServerConfig) -> Result<Self, StartupError> {
        let listener = bind(config.listen.0)?;
        Self::build_with_listener(config, listener).await
    }

    /// Builds the server on an already bound listener (tests bind port 0).
    pub async fn build_with_listener(
        config: AuthServerConfig,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let registry = prometheus::Registry::new();
        let metrics =
            metrics::Metrics::register(&registry).map_err(|e| StartupError::Other(e.to_string()))?;
        let shutdown_timeout = config.shutdown_timeout_secs;
        let metrics_listen = config.metrics_listen.map(|l| l.0);
        let trace_trust = crate::telemetry::TraceTrust(config.telemetry.trust_incoming_traceparent);
        let state = AppState::connect(config, metrics).await?;
        users::seed(&state).await?;
        let state = web::Data::new(state);
        let metrics_endpoint =
            crate::web::MetricsEndpoint::start(metrics_listen, &registry, shutdown_timeout)?;
        let on_main = metrics_endpoint.on_main_listener();
        let registry = web::Data::new(registry);
        let port = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?.port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(crate::web::security_headers())
                .wrap(crate::web::request_logger())
                .app_data(trace_trust)
                .app_data(state.clone())
                .app_data(registry.clone())
                .app_data(web::PayloadConfig::new(BODY_LIMIT))
                .configure(routes)
                .configure(crate::web::MetricsEndpoint::routes(on_main))
        })
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)
        .map_err(|e| StartupError::Other(e.to_string()))?
        .run();
        Ok(Self { port, server, metrics: metrics_endpoint })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (tests stop and start an auth server to cut it off).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.metrics.serve_beside(self.server).await.map_err(|e| StartupError::Other(e.to_string()))
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/openid-configuration", web::get().to(discovery::openid_configuration))
        .route("/jwks", web::get().to(discovery::jwks))
        .route("/authorize", web::get().to(authorize::authorize))
        .route("/login", web::post().to(login::login))
        .route("/login/totp", web::post().to(login_totp::login_totp))
        .route("/signup", web::get().to(login::signup_form))
        .route("/signup", web::post().to(login::signup))
        .route("/token", web::post().to(token::token))
        .route("/revoke", web::post().to(revoke::revoke))
        .route("/par", web::post().to(par::par))
        .route("/userinfo", web::get().to(userinfo::userinfo))
        .route("/userinfo", web::post().to(userinfo::userinfo))
        .route("/logout", web::get().to(logout::logout_get))
        .route("/logout", web::post().to(logout::logout_post))
        .route("/app.css", web::get().to(pages::stylesheet))
        .route("/healthz", web::get().to(crate::web::healthz))
        .route("/readyz", web::get().to(readyz));
}

/// `GET /readyz`: 200 when the store answers.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .content_type("text/plain")
                .body("store unavailable")
        }
    }
}
