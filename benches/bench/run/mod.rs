//! `bench/run.sh`: the benchmark of issue 7 (and issue 4's refresh wait). Three phases, each
//! on its own private Redis and its own processes:
//!
//! 1. throughput, direct vs plain proxy vs cloakroom, interleaved ([`throughput`]); then
//!    Redis memory per session with N sessions stored ([`memory`]) on the same Redis;
//! 2. the latency a refresh adds ([`refresh`]) on a deployment with two BFF instances and
//!    short-lived access tokens;
//! 3. the report ([`report`]): printed, and written to `target/bench/results.md`.
//!
//! Phase 1 also measures the WebSocket row ([`websocket`]): an echo server reached directly
//! and through a `websocket = true` route.

mod memory;
mod refresh;
mod report;
mod throughput;
mod websocket;

use crate::deployment::{AUDIENCE_ROUTE, Deployment, OTHER_AUDIENCE_ROUTE, Spec};
use crate::harness::{self, redis::RedisServer};
use crate::login::{self, USER};
use crate::procs::{self, Proc};
use crate::redis_probe::RedisProbe;
use crate::static_files;
use crate::wrk::Load;
use anyhow::{Context, Result};
use cloakroom::bff::session::SESSION_COOKIE;
use memory::MemoryResult;
use refresh::RefreshResult;
use throughput::{Path, PathResult, Plan, Role, Upstream};

/// The BFF's route to the trivial upstream.
const TRIVIAL_ROUTE: &str = "/trivial";
/// The BFF's WebSocket route to the echo server.
const WS_ROUTE: &str = "/ws";

/// Options of `bench/run.sh` (all have defaults).
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds per measured wrk run.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Seconds of warm-up per path.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Measured runs per path (interleaved).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Sessions stored for the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: u64,
    /// Lone requests that wait for a refresh.
    #[arg(long, default_value_t = 10)]
    refresh_samples: usize,
    /// Concurrent requests per refresh burst.
    #[arg(long, default_value_t = 16)]
    waiters: usize,
    /// Refresh bursts per variant (one instance, two instances).
    #[arg(long, default_value_t = 5)]
    bursts: usize,
    /// The phases to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "throughput,websocket,memory,refresh")]
    phases: Vec<Phase>,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Direct vs plain proxy vs cloakroom.
    Throughput,
    /// Redis memory per session.
    Memory,
    /// Requests waiting for a refresh.
    Refresh,
    /// WebSocket echo, direct vs through cloakroom.
    Websocket,
}

/// Runs the benchmark.
pub async fn main(opts: Options) -> Result<()> {
    let plan = Plan {
        load: Load { connections: opts.connections, threads: opts.threads },
        warmup_secs: opts.warmup_secs,
        secs: opts.secs,
        rounds: opts.rounds,
    };
    let phases = &opts.phases;
    let (mut phase1, mut refresh) = (Phase1::default(), None);
    if [Phase::Throughput, Phase::Memory, Phase::Websocket].iter().any(|p| phases.contains(p)) {
        phase1 = throughput_and_memory(&opts, &plan).await?;
    }
    let Phase1 { throughput, memory, websocket } = phase1;
    if phases.contains(&Phase::Refresh) {
        refresh = Some(refresh_waits(&opts).await?);
    }
    let results = report::Results {
        machine: report::Machine::detect(),
        plan: &plan,
        throughput: throughput.as_ref().map(|(p, r)| (p.as_slice(), r.as_slice())),
        refresh: refresh.as_ref(),
        memory: memory.as_ref(),
        websocket: websocket.as_ref(),
    };
    let table = report::render(&results);
    println!("\n{table}");
    let out = procs::out_dir();
    std::fs::create_dir_all(&out)?;
    let file = out.join("results.md");
    std::fs::write(&file, format!("{table}{}", report::details(&results))).context("writing results.md")?;
    println!("written to {}", file.display());
    Ok(())
}

type Throughput = (Vec<Path>, Vec<PathResult>);

/// What phase 1 measured (what was not asked for is `None`).
#[derive(Default)]
struct Phase1 {
    throughput: Option<Throughput>,
    memory: Option<MemoryResult>,
    websocket: Option<websocket::WsResult>,
}

/// The WebSocket row: the echo server directly vs through the BFF at `bff_url`.
async fn websocket_row(
    opts: &Options,
    echo: &str,
    bff_url: &str,
    cookie: &str,
) -> Result<websocket::WsResult> {
    println!("phase 1c: WebSocket echo (direct, cloakroom)");
    let direct = websocket::Target { url: echo.replacen("http://", "ws://", 1), headers: vec![] };
    let through = websocket::Target {
        url: format!("{}{WS_ROUTE}/echo", bff_url.replacen("http://", "ws://", 1)),
        headers: vec![
            ("cookie".into(), format!("{SESSION_COOKIE}={cookie}")),
            ("origin".into(), bff_url.into()),
        ],
    };
    let plan = websocket::Plan {
        sockets: opts.connections as usize,
        warmup_secs: opts.warmup_secs,
        secs: opts.secs,
        rounds: opts.rounds,
    };
    websocket::measure(&direct, &through, plan).await
}

/// Phase 1 (and 1b, 1c on the same Redis): one BFF, the resource server, the trivial upstream
/// and the WebSocket echo server.
async fn throughput_and_memory(opts: &Options, plan: &Plan) -> Result<Phase1> {
    println!("phase 1: throughput (direct, plain proxy, cloakroom; two upstreams; a static file)");
    let redis = RedisServer::start();
    let probe = RedisProbe::connect(&redis.url()).await?;
    let mut trivial = Proc::trivial_upstream("bench-trivial-upstream", harness::redis::free_port())?;
    trivial.start().await?;
    let dist = static_files::write_dist()?;
    let nginx = static_files::Nginx::start(&dist, harness::redis::free_port()).await?;
    let echo = websocket::start_echo().await?;
    // The auth and resource servers keep their state in memory: the BFF's Redis counts only
    // what the BFF sends.
    let spec = Spec {
        access_token_ttl_secs: 3600,
        // The second instance runs with DPoP on, for the DPoP row; it is idle otherwise.
        bff_instances: 2,
        bff_redis: redis.url(),
        backend_redis: None,
        users: vec![(USER.0.to_string(), USER.1.to_string())],
        extra_routes: vec![(TRIVIAL_ROUTE.to_string(), trivial.url())],
        frontends: vec![("/".to_string(), dist.display().to_string())],
        websocket_routes: vec![(WS_ROUTE.to_string(), echo.clone())],
        dpop_instance: Some(DPOP_INSTANCE),
        audience_routes: true,
        name: "bench",
    };
    let dep = Deployment::start(&spec).await?;
    let keys_before = memory::keys(&probe, &dep.bff_namespace).await?;
    let cookie = login::session_cookie(&dep, 0, USER).await?;
    // The session then holds three tokens: the login's and one per route audience, as the
    // memory phase counts it.
    warm_audience_routes(&dep.bffs[0].url(), &cookie).await?;
    let session_keys: Vec<String> =
        memory::keys(&probe, &dep.bff_namespace).await?.difference(&keys_before).cloned().collect();
    let mut throughput = None;
    if opts.phases.contains(&Phase::Throughput) {
        let token = login::access_token(&dep, USER).await?;
        let bff = &dep.bffs[0];
        let mut paths = Vec::new();
        let mut rs_proxy = None;
        for (upstream, url, route) in [
            (Upstream::ResourceServer, dep.rs.url(), "/api"),
            (Upstream::Trivial, trivial.url(), TRIVIAL_ROUTE),
        ] {
            let proxy = crate::plain_proxy::start(&url, &token).await?;
            if upstream == Upstream::ResourceServer {
                rs_proxy = Some(proxy);
            }
            paths.push(Path {
                upstream,
                role: Role::Direct,
                label: "direct (Bearer)",
                url: format!("{url}/whoami"),
                headers: vec![("Authorization".into(), format!("Bearer {token}"))],
                proxy_pids: vec![],
                uses_redis: false,
            });
            paths.push(Path {
                upstream,
                role: Role::Baseline,
                label: "plain hyper proxy (adds Bearer)",
                url: format!("http://{proxy}/whoami"),
                headers: vec![],
                proxy_pids: vec![std::process::id()],
                uses_redis: false,
            });
            paths.push(Path {
                upstream,
                role: Role::Cloakroom,
                label: "cloakroom (cookie + X-CSRF)",
                url: format!("{}{route}/whoami", bff.url()),
                headers: vec![
                    ("Cookie".into(), format!("{SESSION_COOKIE}={cookie}")),
                    ("X-CSRF".into(), "1".into()),
                ],
                proxy_pids: bff.pid().into_iter().collect(),
                uses_redis: true,
            });
        }
        if let Some(proxy) = &rs_proxy {
            paths.extend(audience_paths(&proxy.to_string(), bff, &cookie));
        }
        if let Some(proxy) = rs_proxy {
            let dpop_cookie = login::session_cookie(&dep, DPOP_INSTANCE, USER).await?;
            paths.extend(dpop_paths(&proxy.to_string(), &dep.bffs[DPOP_INSTANCE], &dpop_cookie));
        }
        paths.extend(static_paths(&nginx, bff));
        let results = throughput::measure(&paths, plan, &probe).await?;
        throughput = Some((paths, results));
    }
    let mut websocket = None;
    if opts.phases.contains(&Phase::Websocket) {
        websocket = Some(websocket_row(opts, &echo, &dep.bffs[0].url(), &cookie).await?);
    }
    let mut memory = None;
    if opts.phases.contains(&Phase::Memory) {
        println!("phase 1b: Redis memory with {} sessions", opts.sessions);
        memory = Some(memory::measure(&probe, &dep.bff_namespace, &session_keys, opts.sessions).await?);
    }
    dep.stop().await;
    trivial.kill().await;
    nginx.stop().await;
    Ok(Phase1 { throughput, memory, websocket })
}

/// Calls both audience routes once through the BFF at `bff`, so that their tokens are had.
async fn warm_audience_routes(bff: &str, cookie: &str) -> Result<()> {
    let http = reqwest::Client::new();
    for route in [AUDIENCE_ROUTE, OTHER_AUDIENCE_ROUTE] {
        let res = http
            .get(format!("{bff}{route}/whoami"))
            .header("Cookie", format!("{SESSION_COOKIE}={cookie}"))
            .header("X-CSRF", "1")
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "{route}/whoami answered {}", res.status());
    }
    Ok(())
}

/// The audience row: the plain proxy adding a Bearer token, and cloakroom sending the token of
/// a route's own audience (`resource`), with two audience tokens in the session.
fn audience_paths(plain_proxy: &str, bff: &Proc, cookie: &str) -> [Path; 2] {
    let label = "cloakroom, route `resource` (cookie + X-CSRF)";
    proxy_and_cloakroom(Upstream::ResourceServerAudience, plain_proxy, bff, AUDIENCE_ROUTE, cookie, label)
}

/// The BFF instance of phase 1 that runs with `bff.oidc.dpop = "on"`.
const DPOP_INSTANCE: usize = 1;

/// The DPoP row: the plain proxy adding a Bearer token, and cloakroom sending a DPoP-bound
/// token with a fresh proof per call, both to the resource server.
fn dpop_paths(plain_proxy: &str, bff: &Proc, cookie: &str) -> [Path; 2] {
    let label = "cloakroom, DPoP (cookie + X-CSRF)";
    proxy_and_cloakroom(Upstream::ResourceServerDpop, plain_proxy, bff, "/api", cookie, label)
}

/// A row of the resource server's `GET /whoami`: the plain proxy adding a Bearer token, and
/// cloakroom's `route` with the session `cookie`.
fn proxy_and_cloakroom(
    upstream: Upstream,
    plain_proxy: &str,
    bff: &Proc,
    route: &str,
    cookie: &str,
    label: &'static str,
) -> [Path; 2] {
    [
        Path {
            upstream,
            role: Role::Baseline,
            label: "plain hyper proxy (adds Bearer)",
            url: format!("http://{plain_proxy}/whoami"),
            headers: vec![],
            proxy_pids: vec![std::process::id()],
            uses_redis: false,
        },
        Path {
            upstream,
            role: Role::Cloakroom,
            label,
            url: format!("{}{route}/whoami", bff.url()),
            headers: vec![
                ("Cookie".into(), format!("{SESSION_COOKIE}={cookie}")),
                ("X-CSRF".into(), "1".into()),
            ],
            proxy_pids: bff.pid().into_iter().collect(),
            uses_redis: true,
        },
    ]
}

/// The static-asset row: nginx and cloakroom's frontend `dir` serving the same file.
fn static_paths(nginx: &static_files::Nginx, bff: &Proc) -> [Path; 2] {
    let asset = static_files::ASSET;
    [
        Path {
            upstream: Upstream::StaticFile,
            role: Role::Baseline,
            label: "nginx (the same directory)",
            url: format!("{}{asset}", nginx.url()),
            headers: vec![],
            proxy_pids: nginx.pids(),
            uses_redis: false,
        },
        Path {
            upstream: Upstream::StaticFile,
            role: Role::Cloakroom,
            label: "cloakroom `[[bff.frontends]] dir`",
            url: format!("{}{asset}", bff.url()),
            headers: vec![],
            proxy_pids: bff.pid().into_iter().collect(),
            uses_redis: false,
        },
    ]
}

/// Phase 2: two BFF instances, short-lived access tokens.
async fn refresh_waits(opts: &Options) -> Result<RefreshResult> {
    println!("phase 2: requests waiting for a refresh");
    let redis = RedisServer::start();
    let spec = Spec {
        access_token_ttl_secs: refresh::ACCESS_TOKEN_TTL_SECS,
        bff_instances: 2,
        bff_redis: redis.url(),
        backend_redis: None,
        users: vec![(USER.0.to_string(), USER.1.to_string())],
        extra_routes: Vec::new(),
        frontends: Vec::new(),
        websocket_routes: Vec::new(),
        dpop_instance: None,
        audience_routes: false,
        name: "refresh",
    };
    let dep = Deployment::start(&spec).await?;
    let cookie = login::session_cookie(&dep, 0, USER).await?;
    let bff_urls: Vec<String> = dep.bffs.iter().map(procs::Proc::url).collect();
    let plan = refresh::Plan { samples: opts.refresh_samples, waiters: opts.waiters, bursts: opts.bursts };
    let result = refresh::measure(&bff_urls, format!("{SESSION_COOKIE}={cookie}"), plan).await?;
    dep.stop().await;
    Ok(result)
}

/// `DATE on commit C: CORES, KERNEL, loopback` for reports.
pub fn machine_line() -> String {
    let m = report::Machine::detect();
    format!("{} on commit `{}`: {}, {}, loopback", m.date, m.commit, m.cpu, m.kernel)
}
