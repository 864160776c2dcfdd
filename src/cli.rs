//! The command line: `cloakroom [--config FILE] <command>`.

use crate::config::{AuthServerConfig, BffConfig, ConfigError, ConfigSource, ResourceServerConfig};
use crate::startup::StartupError;
use crate::{auth_server, bff, resource_server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// cloakroom — a Backend-for-Frontend session broker.
#[derive(Debug, Parser)]
#[command(name = "cloakroom", version, about)]
pub struct Cli {
    /// TOML configuration file; `CLOAKROOM_…` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The programs in this binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The BFF session broker (default 127.0.0.1:8080).
    Bff,
    /// The reference OpenID Connect auth server (default 127.0.0.1:8081); `auth-server revoke`
    /// revokes a user's grants in its store instead (reads the `[auth_server]` configuration).
    AuthServer {
        /// An administrative action instead of running the server.
        #[command(subcommand)]
        action: Option<AuthServerAction>,
    },
    /// The reference resource server, a notes API (default 127.0.0.1:8082).
    ResourceServer,
    /// All three in one process, wired together, with the demo user seeded.
    Demo,
    /// Administer BFF sessions in the BFF's store (reads the `[bff]` configuration).
    Sessions {
        /// What to do.
        #[command(subcommand)]
        action: SessionsAction,
    },
}

/// `cloakroom sessions …`.
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Prints the live sessions of a subject, one JSON object per line.
    List {
        /// The subject (`sub`) at the provider.
        #[arg(long)]
        sub: String,
    },
    /// Ends sessions on every instance (like a back-channel logout).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["sub", "sid"])))]
    Revoke {
        /// Every session of this subject.
        #[arg(long)]
        sub: Option<String>,
        /// Every session of this provider session id.
        #[arg(long)]
        sid: Option<String>,
    },
}

/// `cloakroom auth-server …` (an admin action; without one the server runs).
#[derive(Debug, Subcommand)]
pub enum AuthServerAction {
    /// Revokes a subject's (or one provider session's) grants and login sessions.
    ///
    /// Every refresh-token family dies, the provider login sessions end, and each client with
    /// a `backchannel_logout_uri` gets a logout token; the command waits for those deliveries
    /// (bounded retries) before it exits. Prints one JSON line: `grants_revoked`,
    /// `login_sessions_ended`, `notices_delivered`, `notices_failed`.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["sub", "sid"])))]
    Revoke {
        /// Every grant and login session of this subject (`sub`).
        #[arg(long)]
        sub: Option<String>,
        /// The login session with this provider session id (`sid`) and its grants.
        #[arg(long)]
        sid: Option<String>,
    },
}

/// Runs the chosen command to completion. Errors are one line each.
pub fn run(cli: Cli) -> Result<(), StartupError> {
    match cli.command {
        Command::Sessions { .. } | Command::AuthServer { action: Some(_) } => crate::telemetry::init_admin(),
        _ => crate::telemetry::init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError::Other(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Bff => {
                let cfg: BffConfig = ConfigSource::load(cli.config.as_deref())?.section("bff")?;
                if cfg.session_key.is_none() {
                    return Err(ConfigError::new(
                        "bff.session_key",
                        "is required (base64 of 32 random bytes)",
                    )
                    .into());
                }
                bff::Application::build(cfg).await?.run_until_stopped().await
            }
            Command::AuthServer { action } => {
                let cfg: AuthServerConfig =
                    ConfigSource::load(cli.config.as_deref())?.section("auth_server")?;
                match action {
                    Some(action) => auth_server::admin::run(cfg, action).await,
                    None => auth_server::Application::build(cfg).await?.run_until_stopped().await,
                }
            }
            Command::ResourceServer => {
                let cfg: ResourceServerConfig =
                    ConfigSource::load(cli.config.as_deref())?.section("resource_server")?;
                resource_server::Application::build(cfg).await?.run_until_stopped().await
            }
            Command::Demo => crate::demo::run(cli.config.as_deref()).await,
            Command::Sessions { action } => {
                let cfg: BffConfig = ConfigSource::load(cli.config.as_deref())?.section("bff")?;
                bff::admin::run(cfg, action).await
            }
        }
    })
}
