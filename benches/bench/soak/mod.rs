//! `bench/soak.sh` (issue 8): three BFF instances on one Redis with persistence (append-only
//! file), the auth server and the resource server on that Redis too, many virtual users
//! logging in, calling the API (reads and writes), refreshing (short-lived access tokens) and
//! logging out across the instances — while Redis is killed and restarted once and the auth
//! server is stopped and restarted once. Reports 5xx and lost sessions inside and outside the
//! fault windows, and the BFFs' resident memory over the run.

mod tally;
mod vu;

use crate::deployment::{Deployment, Spec};
use crate::harness::redis::RedisServer;
use crate::procs;
use crate::sysstat;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tally::{Bad, Call, Event, Tally};
use tokio::time::Instant;

/// Options of `bench/soak.sh` (all have defaults).
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Length of the run in seconds.
    #[arg(long, default_value_t = 240)]
    secs: u64,
    /// Concurrent virtual users.
    #[arg(long, default_value_t = 40)]
    vus: usize,
    /// Distinct user accounts (virtual users share them round-robin).
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Access-token lifetime at the auth server (a refresh is due after half of it).
    #[arg(long, default_value_t = 6)]
    access_ttl_secs: u64,
    /// Virtual users start spread over this many seconds (user i after i × ramp / vus), as
    /// users arrive at a service, instead of all logging in within the same second.
    #[arg(long, default_value_t = 10)]
    ramp_secs: u64,
    /// Mean pause between a virtual user's calls, in milliseconds.
    #[arg(long, default_value_t = 100)]
    think_ms: u64,
    /// How long Redis and the auth server stay down.
    #[arg(long, default_value_t = 5)]
    downtime_secs: u64,
    /// How long after a restart the fault window stays open (reconnects, retries).
    #[arg(long, default_value_t = 5)]
    grace_secs: u64,
}

/// A fault and the time span it may be blamed for.
struct Window {
    name: &'static str,
    from: f64,
    to: f64,
}

fn in_window(e: &Event, windows: &[Window]) -> bool {
    windows.iter().any(|w| e.from <= w.to && e.to >= w.from)
}

/// Resident memory of each BFF, sampled every second.
struct RssSamples {
    per_bff: Vec<Vec<(f64, u64)>>,
}

async fn sample_rss(
    pids: Vec<u32>,
    tally_start: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> RssSamples {
    let mut samples = RssSamples { per_bff: vec![Vec::new(); pids.len()] };
    while !stop.load(Ordering::Relaxed) {
        let t = tally_start.elapsed().as_secs_f64();
        for (i, pid) in pids.iter().enumerate() {
            if let Ok(rss) = sysstat::rss_bytes(*pid) {
                samples.per_bff[i].push((t, rss));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    samples
}

/// Sums `cloakroom_token_refresh_total` by outcome over the BFFs' `/metrics`.
async fn refresh_counts(bffs: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for bff in bffs {
        let Ok(res) = reqwest::get(format!("{bff}/metrics")).await else { continue };
        let text = res.text().await.unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with("cloakroom_token_refresh_total{")) {
            let outcome = line.split("outcome=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
            let n: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            *out.entry(outcome.to_string()).or_default() += n;
        }
    }
    out
}

async fn sleep_until(start: Instant, at_secs: f64) {
    tokio::time::sleep_until(start + Duration::from_secs_f64(at_secs)).await;
}

/// Runs the soak.
pub async fn main(opts: Options) -> Result<()> {
    vu::quiet_login_panics();
    let redis = RedisServer::start_persistent();
    let users: Vec<(String, String)> =
        (0..opts.users).map(|i| (format!("soak-user-{i}"), format!("soak-password-{i}"))).collect();
    let spec = Spec {
        access_token_ttl_secs: opts.access_ttl_secs,
        bff_instances: 3,
        bff_redis: redis.url(),
        backend_redis: Some(redis.url()),
        users: users.clone(),
        extra_routes: Vec::new(),
        frontends: Vec::new(),
        websocket_routes: Vec::new(),
        dpop_instance: None,
        audience_routes: false,
        name: "soak",
    };
    let mut dep = Deployment::start(&spec).await?;
    let bff_urls: Vec<String> = dep.bffs.iter().map(procs::Proc::url).collect();
    let pids: Vec<u32> = dep.bffs.iter().filter_map(procs::Proc::pid).collect();
    let world = Arc::new(vu::World {
        bffs: bff_urls.clone(),
        auth_url: dep.auth.url(),
        secret: dep.login_target(0).secret,
        users,
        http: reqwest::Client::builder().tcp_nodelay(true).timeout(Duration::from_secs(20)).build()?,
        think: Duration::from_millis(opts.think_ms),
        tally: Tally::new(),
        stop: Default::default(),
    });
    let start = Instant::now();
    let secs = opts.secs as f64;
    println!(
        "soak: {} s, 3 BFF instances, {} virtual users over {} accounts, access tokens {} s; logs in {}",
        opts.secs,
        opts.vus,
        opts.users,
        opts.access_ttl_secs,
        procs::logs_dir().display()
    );
    let stop_sampling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn(sample_rss(pids, start, stop_sampling.clone()));
    let ramp = Duration::from_secs(opts.ramp_secs);
    let vus: Vec<_> = (0..opts.vus)
        .map(|i| {
            let delay = ramp.mul_f64(i as f64 / opts.vus.max(1) as f64);
            tokio::spawn(vu::run(i, delay, world.clone()))
        })
        .collect();

    // The faults run here, in the main future: processes are (re)spawned from the main thread.
    let down = Duration::from_secs(opts.downtime_secs);
    let grace = opts.grace_secs as f64;
    let mut windows = Vec::new();
    sleep_until(start, secs / 3.0).await;
    let from = world.tally.now();
    println!("  {from:>6.1} s: killing Redis");
    redis.stop();
    tokio::time::sleep(down).await;
    redis.restart();
    let back = world.tally.now();
    println!("  {back:>6.1} s: Redis back (from its append-only file)");
    windows.push(Window { name: "Redis killed and restarted", from, to: back + grace });

    sleep_until(start, 2.0 * secs / 3.0).await;
    let from = world.tally.now();
    println!("  {from:>6.1} s: stopping the auth server (SIGTERM)");
    dep.auth.terminate().await;
    tokio::time::sleep(down).await;
    dep.auth.start().await.context("restarting the auth server")?;
    let back = world.tally.now();
    println!("  {back:>6.1} s: auth server back");
    windows.push(Window { name: "auth server stopped and restarted", from, to: back + grace });

    sleep_until(start, secs).await;
    world.stop.store(true, Ordering::Relaxed);
    for vu in vus {
        let _ = vu.await;
    }
    stop_sampling.store(true, Ordering::Relaxed);
    let rss = sampler.await?;
    let refreshes = refresh_counts(&bff_urls).await;
    let summary = summarize(&opts, &world.tally, &windows, &rss, &refreshes);
    println!("\n{summary}");
    let out = procs::out_dir();
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("soak.md"), &summary)?;
    println!("written to {}", out.join("soak.md").display());
    dep.stop().await;
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

fn summarize(
    opts: &Options,
    tally: &Tally,
    windows: &[Window],
    rss: &RssSamples,
    refreshes: &BTreeMap<String, f64>,
) -> String {
    let mut s = String::new();
    let m = crate::run::machine_line();
    let calls = tally.calls();
    let count = |c: Call| calls.get(&c).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "Soak run {m}: {} s, 3 BFF instances, {} virtual users arriving over the first {} s, access tokens {} s.",
        opts.secs, opts.vus, opts.ramp_secs, opts.access_ttl_secs
    );
    for w in windows {
        let _ = writeln!(
            s,
            "Fault window: {} at {:.0} s, open until {:.0} s ({} s grace after the restart).",
            w.name, w.from, w.to, opts.grace_secs
        );
    }
    let _ = writeln!(s, "\n| | outside fault windows | inside |");
    let _ = writeln!(s, "|---|---:|---:|");
    let events = tally.events();
    let mut rows: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in &events {
        let label = match &e.bad {
            Bad::ServerError(code) => format!("5xx `{code}`"),
            Bad::LostSession(code) => format!("lost sessions (401 `{code}` before logout)"),
            Bad::LoginFailed(why) => format!("failed logins ({why})"),
            Bad::Unexpected(status, code) => format!("unexpected {status} `{code}`"),
            Bad::Transport => "no answer from a BFF".into(),
            Bad::LogoutNotHonoured => "logged-out session still accepted".into(),
        };
        let row = rows.entry(label).or_default();
        if in_window(e, windows) { row.1 += 1 } else { row.0 += 1 }
    }
    let total = |pred: &dyn Fn(&Bad) -> bool, inside: bool| {
        events.iter().filter(|e| pred(&e.bad) && in_window(e, windows) == inside).count()
    };
    let is_5xx = |b: &Bad| matches!(b, Bad::ServerError(_));
    let is_lost = |b: &Bad| matches!(b, Bad::LostSession(_));
    let _ = writeln!(s, "| **5xx** | **{}** | {} |", total(&is_5xx, false), total(&is_5xx, true));
    let _ = writeln!(s, "| **lost sessions** | **{}** | {} |", total(&is_lost, false), total(&is_lost, true));
    for (label, (out, inside)) in &rows {
        let _ = writeln!(s, "| {label} | {out} | {inside} |");
    }
    let sessions = tally.sessions();
    let across: Vec<String> = windows
        .iter()
        .map(|w| {
            let n = sessions.iter().filter(|(login, last_ok)| *login < w.from && *last_ok > w.to).count();
            format!("{n} across \"{}\"", w.name)
        })
        .collect();
    let _ = writeln!(s, "\nSessions in use on both sides of a fault window: {}.", across.join(", "));
    let _ = writeln!(
        s,
        "Calls: {} logins, {} API reads, {} API writes, {} `/bff/user`, {} logouts ({} checked on another instance).",
        count(Call::Login),
        count(Call::ApiRead),
        count(Call::ApiWrite),
        count(Call::User),
        count(Call::Logout),
        tally.logout_checks.load(Ordering::Relaxed)
    );
    let refreshes: Vec<String> = refreshes.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
    let _ =
        writeln!(s, "Refreshes (`cloakroom_token_refresh_total`, all instances): {}.", refreshes.join(", "));
    // Memory: "start" is the first sample after a tenth of the run (pools and caches warm);
    // then every fifth of the run, so a level and a slope can be told apart.
    let _ = writeln!(s, "\n| BFF instance | RSS start (10 %) | 20 % | 40 % | 60 % | 80 % | end | max |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, samples) in rss.per_bff.iter().enumerate() {
        let at =
            |secs: f64| samples.iter().find(|(t, _)| *t >= secs).or(samples.last()).map_or(0, |(_, b)| *b);
        let last = samples.last().map_or(0, |(_, b)| *b);
        let max = samples.iter().map(|(_, b)| *b).max().unwrap_or(0);
        let mut row = format!("| bff{i} | {} MB", mb(at(opts.secs as f64 / 10.0)));
        for fifth in 1..=4 {
            let _ = write!(row, " | {} MB", mb(at(opts.secs as f64 * fifth as f64 / 5.0)));
        }
        let _ = writeln!(s, "{row} | {} MB | {} MB |", mb(last), mb(max));
    }
    s
}
