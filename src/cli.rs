//! The command line: `cloakroom [--config FILE] <command>`.

use crate::config::{
    AuthServerConfig, BffConfig, ConfigError, ConfigSource, ResourceServerConfig, TelemetryConfig,
};
use crate::startup::StartupError;
use crate::telemetry::TraceExport;
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
        // Provider ids are opaque (ours are base64url and may start with `-`): a value is
        // never read as a flag.
        #[arg(long, allow_hyphen_values = true)]
        sub: String,
    },
    /// Ends sessions on every instance (like a back-channel logout).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["sub", "sid"])))]
    Revoke {
        /// Every session of this subject.
        #[arg(long, allow_hyphen_values = true)]
        sub: Option<String>,
        /// Every session of this provider session id.
        #[arg(long, allow_hyphen_values = true)]
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
        #[arg(long, allow_hyphen_values = true)]
        sub: Option<String>,
        /// The login session with this provider session id (`sid`) and its grants.
        #[arg(long, allow_hyphen_values = true)]
        sid: Option<String>,
    },
}

impl SessionsAction {
    /// The command this action asks of [`bff::admin`].
    fn into_command(self) -> Result<bff::admin::SessionsCommand, StartupError> {
        use bff::admin::SessionsCommand;
        use bff::session::EndTarget;
        match self {
            SessionsAction::List { sub } => Ok(SessionsCommand::List { sub }),
            SessionsAction::Revoke { sid: Some(sid), .. } => Ok(SessionsCommand::Revoke(EndTarget::Sid(sid))),
            SessionsAction::Revoke { sub: Some(sub), .. } => Ok(SessionsCommand::Revoke(EndTarget::Sub(sub))),
            SessionsAction::Revoke { .. } => Err(StartupError::Other("give --sub or --sid".into())),
        }
    }
}

impl AuthServerAction {
    /// The target this action names for [`auth_server::admin`].
    fn into_target(self) -> Result<auth_server::admin::RevokeTarget, StartupError> {
        use auth_server::admin::RevokeTarget;
        match self {
            AuthServerAction::Revoke { sid: Some(sid), .. } => Ok(RevokeTarget::Sid(sid)),
            AuthServerAction::Revoke { sub: Some(sub), .. } => Ok(RevokeTarget::Sub(sub)),
            AuthServerAction::Revoke { .. } => Err(StartupError::Other("give --sub or --sid".into())),
        }
    }
}

/// Runs the chosen command to completion. Errors are one line each.
pub fn run(cli: Cli) -> Result<(), StartupError> {
    let traces = match &cli.command {
        Command::Sessions { .. } | Command::AuthServer { action: Some(_) } => {
            crate::telemetry::init_admin();
            None
        }
        command => Some(crate::telemetry::init(trace_export(command, cli.config.as_deref())?.as_ref())?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError::Other(format!("cannot start the async runtime: {e}")))?;
    let result = serve(cli, &runtime);
    // The servers have stopped: what is still buffered goes out now (blocking, off the runtime).
    if let Some(traces) = traces {
        traces.shutdown();
    }
    result
}

/// Where a server command sends its traces: its section's `telemetry` table (`demo`: the
/// first of the three sections that has an endpoint), or the `OTEL_EXPORTER_OTLP_…`
/// environment; `None` when neither says anything.
fn trace_export(
    command: &Command,
    file: Option<&std::path::Path>,
) -> Result<Option<TraceExport>, StartupError> {
    let sections: &[(&str, &str)] = match command {
        Command::Bff => &[("bff", "cloakroom-bff")],
        Command::AuthServer { .. } => &[("auth_server", "cloakroom-auth-server")],
        Command::ResourceServer => &[("resource_server", "cloakroom-resource-server")],
        Command::Demo => &[
            ("bff", "cloakroom-demo"),
            ("auth_server", "cloakroom-demo"),
            ("resource_server", "cloakroom-demo"),
        ],
        Command::Sessions { .. } => &[],
    };
    let source = ConfigSource::load(file)?;
    for (section, service_name) in sections {
        let telemetry: TelemetryConfig = source.section(&format!("{section}.telemetry"))?;
        if let Some(url) = telemetry.traces_url() {
            return Ok(Some(TraceExport { service_name: service_name.to_string(), url }));
        }
    }
    Ok(None)
}

/// Runs a command's servers (or admin action) on `runtime` until they stop.
fn serve(cli: Cli, runtime: &tokio::runtime::Runtime) -> Result<(), StartupError> {
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
                    Some(action) => auth_server::admin::run(cfg, action.into_target()?).await,
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
                bff::admin::run(cfg, action.into_command()?).await
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_and_session_ids_starting_with_a_hyphen_are_values_not_flags() {
        let parse =
            |args: &[&str]| Cli::try_parse_from(std::iter::once("cloakroom").chain(args.iter().copied()));

        let list = parse(&["sessions", "list", "--sub", "-rB9x"]).unwrap();
        let revoke = parse(&["sessions", "revoke", "--sid", "-Qz_1"]).unwrap();
        let admin = parse(&["auth-server", "revoke", "--sub", "--x"]).unwrap();

        assert!(
            matches!(list.command, Command::Sessions { action: SessionsAction::List { sub } } if sub == "-rB9x")
        );
        assert!(matches!(revoke.command,
            Command::Sessions { action: SessionsAction::Revoke { sid: Some(s), sub: None } } if s == "-Qz_1"));
        assert!(matches!(admin.command,
            Command::AuthServer { action: Some(AuthServerAction::Revoke { sub: Some(s), .. }) } if s == "--x"));
        assert!(parse(&["sessions", "revoke"]).is_err(), "one of --sub or --sid is still required");
    }
}
