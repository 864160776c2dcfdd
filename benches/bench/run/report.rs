//! The benchmark's report: a Markdown block for the README (and `target/bench/results.md`).

use super::memory::MemoryResult;
use super::refresh::{Burst, RefreshResult, median};
use super::throughput::{Path, PathResult, Plan, Upstream};
use std::fmt::Write;

/// Where and when.
pub struct Machine {
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// Cores and CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// `git describe`-like commit.
    pub commit: String,
}

impl Machine {
    /// This machine, now.
    pub fn detect() -> Machine {
        let now = time::OffsetDateTime::now_utc();
        let date = format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute()
        );
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let dirty =
            if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() { "" } else { "+changes" };
        let commit = format!("{}{dirty}", git(&["rev-parse", "--short", "HEAD"]));
        Machine { date, cpu: format!("{cores} cores ({model})"), kernel: format!("Linux {kernel}"), commit }
    }
}

/// All results of one run.
pub struct Results<'a> {
    /// Where and when.
    pub machine: Machine,
    /// The throughput plan.
    pub plan: &'a Plan,
    /// The paths, in order: direct, plain proxy, cloakroom.
    pub paths: &'a [Path],
    /// Their results.
    pub throughput: &'a [PathResult],
    /// Refresh waits.
    pub refresh: &'a RefreshResult,
    /// Memory per session.
    pub memory: &'a MemoryResult,
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bursts_line(bursts: &[Burst], baseline: f64) -> String {
    let all: Vec<f64> = bursts.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect();
    let max = all.iter().copied().fold(0.0, f64::max);
    let tokens = bursts.iter().map(|b| b.distinct_tokens).max().unwrap_or(0);
    let flight = if tokens == 1 {
        "one refresh per expiry".to_string()
    } else {
        format!("up to {tokens} tokens in one burst!")
    };
    format!(
        "+{:.1} ms median, {:.1} ms max ({} bursts; {flight})",
        median(&all) - baseline,
        max - baseline,
        bursts.len()
    )
}

/// The Markdown report.
pub fn render(r: &Results) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "Run {} on commit `{}`: {}, {}, loopback. wrk: {} threads, {} connections, {} × {} s per path after a {} s warm-up, paths interleaved; every process a separate `target/release/cloakroom` (logging `warn`).\n",
        m.date,
        m.commit,
        m.cpu,
        m.kernel,
        r.plan.load.threads,
        r.plan.load.connections,
        r.plan.rounds,
        r.plan.secs,
        r.plan.warmup_secs
    );
    let _ = writeln!(
        s,
        "| upstream / path | req/s | p50 | p99 | proxy CPU per request | Redis commands per request |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    let mut groups: Vec<Upstream> = r.paths.iter().map(|p| p.upstream).collect();
    groups.dedup();
    for group in &groups {
        let _ = writeln!(s, "| **{}** | | | | | |", group.label());
        for (path, res) in r.paths.iter().zip(r.throughput).filter(|(p, _)| p.upstream == *group) {
            let cpu = if path.proxy_pid.is_some() {
                format!("{:.0} µs", res.cpu_us_per_request())
            } else {
                "–".into()
            };
            let cmds =
                if path.uses_redis { format!("{:.2}", res.redis_per_request().0) } else { "–".into() };
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} ms | {:.2} ms | {cpu} | {cmds} |",
                path.label,
                thousands(res.rps()),
                res.p50_ms(),
                res.p99_ms()
            );
        }
    }
    let _ = writeln!(s, "\n| figure | value |");
    let _ = writeln!(s, "|---|---:|");
    for group in &groups {
        let find = |pred: &dyn Fn(&Path) -> bool| {
            r.paths
                .iter()
                .zip(r.throughput)
                .find(|(p, _)| p.upstream == *group && pred(p))
                .map(|(_, res)| res)
        };
        let (Some(direct), Some(plain), Some(cloak)) = (
            find(&|p| p.proxy_pid.is_none()),
            find(&|p| p.proxy_pid.is_some() && !p.uses_redis),
            find(&|p| p.uses_redis),
        ) else {
            continue;
        };
        let name = match group {
            Upstream::ResourceServer => "resource server",
            Upstream::Trivial => "trivial upstream",
        };
        let _ =
            writeln!(s, "| {name}: cloakroom / plain proxy, req/s | **{:.2}×** |", cloak.rps() / plain.rps());
        let _ = writeln!(s, "| {name}: cloakroom / direct, req/s | {:.2}× |", cloak.rps() / direct.rps());
        let _ = writeln!(
            s,
            "| {name}: cloakroom / plain proxy, p99 | **{:.2}×** |",
            cloak.p99_ms() / plain.p99_ms()
        );
    }
    if let Some((_, cloak)) = r.paths.iter().zip(r.throughput).find(|(p, _)| p.uses_redis) {
        let (total, per) = cloak.redis_per_request();
        let per: Vec<String> = per.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        let _ = writeln!(
            s,
            "| Redis commands per proxied request (`INFO commandstats`; calls inside scripts count too) | {total:.2} ({}) |",
            per.join(", ")
        );
    }
    let f = r.refresh;
    let base = median(&f.baseline_ms);
    let _ = writeln!(
        s,
        "| latency of a normal proxied request, lone client (median of {}) | {base:.2} ms |",
        f.baseline_ms.len()
    );
    let _ = writeln!(
        s,
        "| added latency of a request that waits for a refresh (median of {}) | +{:.1} ms |",
        f.single_ms.len(),
        median(&f.single_ms) - base
    );
    if let Some(b) = f.one_instance.first() {
        let _ = writeln!(
            s,
            "| the same, {} concurrent requests on one instance | {} |",
            b.latencies_ms.len(),
            bursts_line(&f.one_instance, base)
        );
    }
    if let Some(b) = f.two_instances.first() {
        let _ = writeln!(
            s,
            "| the same, {} concurrent requests split over two instances | {} |",
            b.latencies_ms.len(),
            bursts_line(&f.two_instances, base)
        );
    }
    if f.not_refreshed > 0 {
        let _ = writeln!(s, "| samples in which no refresh happened (should be 0) | {} |", f.not_refreshed);
    }
    let mem = r.memory;
    let keys: Vec<String> = mem
        .keys
        .iter()
        .map(|k| match k.value_bytes {
            Some(v) => {
                format!("{} {} B value / {} B", k.kind, thousands(v as f64), thousands(k.memory_usage as f64))
            }
            None => format!("{} ({}) {} B", k.kind, k.kind_type, thousands(k.memory_usage as f64)),
        })
        .collect();
    let _ = writeln!(
        s,
        "| Redis memory per session, {} sessions stored (`used_memory` growth / sessions) | {} B |",
        thousands(mem.sessions as f64),
        thousands(mem.bytes_per_session)
    );
    let _ = writeln!(s, "| keys per session (`MEMORY USAGE`) | {} |", keys.join("; "));
    s
}

/// Per-run detail for `target/bench/results.md`.
pub fn details(r: &Results) -> String {
    let mut s =
        String::from("\n### Runs\n\n| path | round | req/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n");
    for (path, res) in r.paths.iter().zip(r.throughput) {
        for (i, run) in res.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {:?}: {} | {} | {} | {:.2} ms | {:.2} ms |",
                path.upstream,
                path.label,
                i + 1,
                thousands(run.rps()),
                run.p50_ms,
                run.p99_ms
            );
        }
    }
    let f = r.refresh;
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        s,
        "\nRefresh waits, ms: {}\n\nNormal requests, ms: {}",
        list(&f.single_ms),
        list(&f.baseline_ms)
    );
    let _ = writeln!(
        s,
        "\nMemory fill: {} sessions in {:.1} s.",
        thousands(r.memory.sessions as f64),
        r.memory.secs
    );
    s
}
