//! Side-by-side throughput: each path gets a warm-up, then the paths take turns (A, B, C, A, B,
//! C, …) so that drift of the machine (other builds, thermal, caches) spreads over all of them.

use crate::redis_probe::{self, CommandCounts, RedisProbe};
use crate::sysstat;
use crate::wrk::{self, Load, WrkRun};
use anyhow::{Result, bail};
use std::time::Duration;

/// What answers at the end of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The reference resource server: verifies the ES256 access token on every request.
    ResourceServer,
    /// A trivial hyper server with a fixed answer: the cost of the hop alone.
    Trivial,
    /// The reference resource server with DPoP-bound tokens: cloakroom signs a proof per
    /// call, the resource server checks it (and its `jti`) besides the token.
    ResourceServerDpop,
    /// The reference resource server through a route with its own audience (`resource`): the
    /// session holds the login's token and two audience tokens.
    ResourceServerAudience,
    /// A fingerprinted file of a built app, served from a directory (no upstream).
    StaticFile,
}

impl Upstream {
    /// Row-group label.
    pub fn label(self) -> &'static str {
        match self {
            Upstream::ResourceServer => "resource server `GET /whoami` (verifies the JWT)",
            Upstream::Trivial => "trivial hyper upstream (fixed answer)",
            Upstream::ResourceServerDpop => {
                "resource server `GET /whoami`, cloakroom with `bff.oidc.dpop = \"on\"` (a proof per call)"
            }
            Upstream::ResourceServerAudience => {
                "resource server `GET /whoami` through a route with its own `resource` (two audience tokens in the session)"
            }
            Upstream::StaticFile => "a built app's fingerprinted 8 kB script, from a directory",
        }
    }

    /// Short name.
    pub fn short(self) -> &'static str {
        match self {
            Upstream::ResourceServer => "resource server",
            Upstream::Trivial => "trivial upstream",
            Upstream::ResourceServerDpop => "resource server, DPoP",
            Upstream::ResourceServerAudience => "resource server, route audience",
            Upstream::StaticFile => "static asset",
        }
    }
}

/// What a path is, for the ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Straight to the upstream.
    Direct,
    /// The plain counterpart cloakroom is compared with (a plain proxy, nginx).
    Baseline,
    /// Through cloakroom.
    Cloakroom,
}

/// One way to reach `GET /whoami` of an upstream (or a file).
pub struct Path {
    /// The upstream.
    pub upstream: Upstream,
    /// What the path is.
    pub role: Role,
    /// Row label.
    pub label: &'static str,
    /// The URL wrk requests.
    pub url: String,
    /// Headers wrk sends.
    pub headers: Vec<(String, String)>,
    /// The processes doing the proxying (or serving), whose CPU time is attributed to this
    /// path (none: no proxy hop).
    pub proxy_pids: Vec<u32>,
    /// Whether the Redis counters belong to this path (only cloakroom talks to the probe's Redis).
    pub uses_redis: bool,
}

/// What the runs of one path measured.
#[derive(Default)]
pub struct PathResult {
    /// Every measured run (warm-up excluded).
    pub runs: Vec<WrkRun>,
    /// CPU time of the proxy process over the measured runs.
    pub proxy_cpu: Duration,
    /// Redis commands over the measured runs.
    pub redis: CommandCounts,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl PathResult {
    /// Completed requests over all runs.
    pub fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }

    /// Requests per second over all runs.
    pub fn rps(&self) -> f64 {
        self.requests() as f64 / self.runs.iter().map(|r| r.secs).sum::<f64>().max(1e-9)
    }

    /// Median over the runs of their p50.
    pub fn p50_ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.p50_ms).collect())
    }

    /// Median over the runs of their p99.
    pub fn p99_ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.p99_ms).collect())
    }

    /// CPU microseconds of the proxy process per request.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.proxy_cpu.as_secs_f64() * 1e6 / self.requests().max(1) as f64
    }

    /// Redis commands per request, in total and per command.
    pub fn redis_per_request(&self) -> (f64, Vec<(String, f64)>) {
        let n = self.requests().max(1) as f64;
        let total = self.redis.values().sum::<u64>() as f64 / n;
        (total, self.redis.iter().map(|(k, v)| (k.clone(), *v as f64 / n)).collect())
    }
}

/// How long and how hard.
pub struct Plan {
    /// wrk's connections and threads.
    pub load: Load,
    /// Seconds of warm-up per path.
    pub warmup_secs: u64,
    /// Seconds per measured run.
    pub secs: u64,
    /// Turns per path.
    pub rounds: u32,
}

fn cpu(pids: &[u32]) -> Result<Duration> {
    pids.iter().map(|&p| sysstat::cpu_time(p)).sum()
}

/// Measures every path; results in the order of `paths`.
pub async fn measure(paths: &[Path], plan: &Plan, redis: &RedisProbe) -> Result<Vec<PathResult>> {
    for path in paths {
        println!("  warm-up {:?}: {} ({} s)", path.upstream, path.label, plan.warmup_secs);
        wrk::run(&path.url, &path.headers, plan.load, plan.warmup_secs).await?;
    }
    let mut results: Vec<PathResult> = paths.iter().map(|_| PathResult::default()).collect();
    for round in 1..=plan.rounds {
        for (path, result) in paths.iter().zip(&mut results) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (cpu0, cmds0) = (cpu(&path.proxy_pids)?, redis.command_counts().await?);
            let run = wrk::run(&path.url, &path.headers, plan.load, plan.secs).await?;
            let (cpu1, cmds1) = (cpu(&path.proxy_pids)?, redis.command_counts().await?);
            println!(
                "  round {round}/{}: {:<10} {:<32} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                plan.rounds,
                format!("{:?}", path.upstream),
                path.label,
                run.rps(),
                run.p50_ms,
                run.p99_ms
            );
            if run.errors > 0 {
                bail!(
                    "{}: {} requests failed (non-2xx or socket errors): the numbers would lie",
                    path.label,
                    run.errors
                );
            }
            result.proxy_cpu += cpu1.saturating_sub(cpu0);
            if path.uses_redis {
                for (k, v) in redis_probe::delta(&cmds0, &cmds1) {
                    *result.redis.entry(k).or_default() += v;
                }
            }
            result.runs.push(run);
        }
    }
    Ok(results)
}
