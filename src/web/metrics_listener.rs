//! `metrics_listen`, the same key in all three sections: unset, `/metrics` is a route of the
//! main listener; set, a small server of its own answers `GET /metrics` there and only there,
//! so the counters can be kept off the public listener (an operator network, a sidecar).

use crate::startup::{StartupError, bind};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::SocketAddr;

/// Where a program serves `/metrics`.
pub struct MetricsEndpoint {
    separate: Option<Server>,
}

impl MetricsEndpoint {
    /// Binds `metrics_listen` when it is set and starts a one-worker server for `registry`
    /// there; unset, nothing is bound and the main listener keeps the route.
    pub fn start(
        metrics_listen: Option<SocketAddr>,
        registry: &prometheus::Registry,
        shutdown_timeout_secs: u64,
    ) -> Result<Self, StartupError> {
        let Some(addr) = metrics_listen else { return Ok(Self { separate: None }) };
        let listener = bind(addr)?;
        let registry = web::Data::new(registry.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                .route("/metrics", web::get().to(super::metrics))
                .wrap(super::security_headers())
        })
        .workers(1)
        .shutdown_timeout(shutdown_timeout_secs)
        .listen(listener)
        .map_err(|e| StartupError::Other(format!("metrics listener: {e}")))?
        .run();
        Ok(Self { separate: Some(server) })
    }

    /// Whether the main listener serves `/metrics` (no separate listener).
    pub fn on_main_listener(&self) -> bool {
        self.separate.is_none()
    }

    /// Adds `GET /metrics` to an app when the main listener serves it (the app carries the
    /// registry as `web::Data`).
    pub fn routes(on_main_listener: bool) -> impl Fn(&mut web::ServiceConfig) + Clone {
        move |cfg| {
            if on_main_listener {
                cfg.route("/metrics", web::get().to(super::metrics));
            }
        }
    }

    /// Runs `main` to its end; the metrics server, if any, runs beside it and is stopped
    /// when `main` stops.
    pub async fn serve_beside(self, main: Server) -> std::io::Result<()> {
        let Some(metrics) = self.separate else { return main.await };
        let handle = metrics.handle();
        let main = async move {
            let result = main.await;
            handle.stop(true).await;
            result
        };
        let (main_result, metrics_result) = tokio::join!(main, metrics);
        main_result.and(metrics_result)
    }
}
