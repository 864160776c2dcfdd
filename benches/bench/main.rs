//! cloakroom's benchmark and soak, one program with three modes:
//!
//! - `run` (`bench/run.sh`): direct vs a plain hyper proxy vs cloakroom side by side, Redis
//!   commands and CPU per request, the latency a refresh adds, Redis memory per session;
//! - `soak` (`bench/soak.sh`): three BFF instances under logins, API calls, refreshes and
//!   logouts while Redis and the auth server are restarted;
//! - `dpop-sign` (`bench/dpop.sh`): the signing cost of one DPoP proof per algorithm.
//!
//! Every program runs as its own `target/release/cloakroom` process on a private Redis and
//! free loopback ports. A `[[bench]]` target with `harness = false`: `cargo test` never builds
//! it, `cargo bench --bench bench -- MODE` runs it with the release profile.

mod deployment;
mod dpop_sign;
mod harness;
mod login;
mod plain_proxy;
mod procs;
mod redis_probe;
mod run;
mod soak;
mod static_files;
mod sysstat;
mod trivial_upstream;
mod wrk;

use clap::{Parser, Subcommand};

/// cloakroom's benchmark and soak.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// The benchmark (issue 7, issue 4's refresh wait).
    Run(run::Options),
    /// The soak (issue 8).
    Soak(soak::Options),
    /// The cost of one DPoP proof per algorithm (issue 18).
    DpopSign(dpop_sign::Options),
    /// The trivial upstream (started by `run` as a process of its own).
    #[command(hide = true)]
    Upstream {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` adds `--bench` to the arguments.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    // Two workers, like the BFF's two actix workers on this machine: the plain proxy runs here.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        match cli.mode {
            Mode::Run(opts) => run::main(opts).await,
            Mode::Soak(opts) => soak::main(opts).await,
            Mode::DpopSign(opts) => dpop_sign::main(opts),
            Mode::Upstream { port } => trivial_upstream::serve(port).await,
        }
    })
}
