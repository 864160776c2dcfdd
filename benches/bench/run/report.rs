//! The benchmark's report: a Markdown block for the README (and `target/bench/results.md`).

use super::memory::MemoryResult;
use super::refresh::{Burst, RefreshResult, median};
use super::throughput::{Path, PathResult, Plan, Role, Upstream};
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

/// All results of one run (what was not run is `None`).
pub struct Results<'a> {
    /// Where and when.
    pub machine: Machine,
    /// The throughput plan.
    pub plan: &'a Plan,
    /// The paths (grouped by upstream: direct, plain proxy, cloakroom) and their results.
    pub throughput: Option<(&'a [Path], &'a [PathResult])>,
    /// Refresh waits.
    pub refresh: Option<&'a RefreshResult>,
    /// Memory per session.
    pub memory: Option<&'a MemoryResult>,
    /// WebSocket echo, direct vs cloakroom.
    pub websocket: Option<&'a super::websocket::WsResult>,
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

fn all_latencies(bursts: &[Burst]) -> Vec<f64> {
    bursts.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect()
}

fn bursts_line(with_refresh: &[Burst], without: &[Burst]) -> String {
    let (refreshed, normal) = (all_latencies(with_refresh), all_latencies(without));
    let max = refreshed.iter().copied().fold(0.0, f64::max);
    let tokens = with_refresh.iter().map(|b| b.distinct_tokens).max().unwrap_or(0);
    let flight = if tokens == 1 {
        "one refresh per expiry".to_string()
    } else {
        format!("up to {tokens} different tokens in one burst!")
    };
    format!(
        "+{:.1} ms median (median {:.1} ms, without a refresh {:.1} ms; max {:.1} ms; {} bursts, {flight})",
        median(&refreshed) - median(&normal),
        median(&refreshed),
        median(&normal),
        max,
        with_refresh.len()
    )
}

/// What cloakroom is compared with in a group.
fn baseline_name(group: Upstream) -> &'static str {
    match group {
        Upstream::StaticFile => "nginx",
        _ => "plain proxy",
    }
}

fn throughput_table(
    s: &mut String,
    paths: &[Path],
    results: &[PathResult],
    figures: &mut Vec<(String, String)>,
) {
    let _ = writeln!(
        s,
        "| upstream / path | req/s | p50 | p99 | proxy CPU per request | Redis commands per request |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
    let mut groups: Vec<Upstream> = paths.iter().map(|p| p.upstream).collect();
    groups.dedup();
    for group in &groups {
        let _ = writeln!(s, "| **{}** | | | | | |", group.label());
        for (path, res) in paths.iter().zip(results).filter(|(p, _)| p.upstream == *group) {
            let cpu = if !path.proxy_pids.is_empty() {
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
    for group in &groups {
        let find = |pred: &dyn Fn(&Path) -> bool| {
            paths.iter().zip(results).find(|(p, _)| p.upstream == *group && pred(p)).map(|(_, res)| res)
        };
        let (Some(plain), Some(cloak)) =
            (find(&|p| p.role == Role::Baseline), find(&|p| p.role == Role::Cloakroom))
        else {
            continue;
        };
        let (name, base) = (group.short(), baseline_name(*group));
        figures.push((
            format!("{name}: cloakroom / {base}, req/s"),
            format!("**{:.2}×**", cloak.rps() / plain.rps()),
        ));
        if let Some(direct) = find(&|p| p.role == Role::Direct) {
            figures.push((
                format!("{name}: cloakroom / direct, req/s"),
                format!("{:.2}×", cloak.rps() / direct.rps()),
            ));
        }
        figures.push((
            format!("{name}: cloakroom / {base}, p99"),
            format!("**{:.2}×**", cloak.p99_ms() / plain.p99_ms()),
        ));
    }
    if let Some((_, cloak)) = paths.iter().zip(results).find(|(p, _)| p.uses_redis) {
        let (total, per) = cloak.redis_per_request();
        let per: Vec<String> = per.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        figures.push((
            "Redis commands per proxied request (`INFO commandstats`; calls inside scripts count too)".into(),
            format!("{total:.2} ({})", per.join(", ")),
        ));
    }
}

fn refresh_figures(f: &RefreshResult, figures: &mut Vec<(String, String)>) {
    let base = median(&f.baseline_ms);
    figures.push((
        format!("a normal proxied request, one client (median of {})", f.baseline_ms.len()),
        format!("{base:.2} ms"),
    ));
    let idle = median(&f.idle_baseline_ms);
    figures.push((
        format!(
            "a normal proxied request after half a second of quiet, one client (median of {})",
            f.idle_baseline_ms.len()
        ),
        format!("{idle:.2} ms"),
    ));
    figures.push((
        format!(
            "added latency of a request that waits for a refresh, after seconds of quiet (median of {}; against the quiet baseline)",
            f.single_ms.len()
        ),
        format!("+{:.1} ms (median {:.1} ms)", median(&f.single_ms) - idle, median(&f.single_ms)),
    ));
    for (label, (with, without)) in
        [("on one instance", &f.one_instance), ("split over two instances", &f.two_instances)]
    {
        if let Some(b) = with.first() {
            figures.push((
                format!("the same, {} concurrent requests {label}", b.latencies_ms.len()),
                bursts_line(with, without),
            ));
        }
    }
    if f.not_refreshed > 0 {
        figures
            .push(("samples in which no refresh happened (should be 0)".into(), f.not_refreshed.to_string()));
    }
}

fn memory_figures(mem: &MemoryResult, figures: &mut Vec<(String, String)>) {
    figures.push((
        format!(
            "Redis memory per session, {} sessions stored (`used_memory` growth / sessions)",
            thousands(mem.sessions as f64)
        ),
        format!("{} B", thousands(mem.bytes_per_session)),
    ));
    let keys: Vec<String> = mem
        .keys
        .iter()
        .map(|k| match k.value_bytes {
            Some(v) => format!(
                "`{}` {} B value, {} B",
                k.kind,
                thousands(v as f64),
                thousands(k.memory_usage as f64)
            ),
            None => format!("`{}` ({}) {} B", k.kind, k.kind_type, thousands(k.memory_usage as f64)),
        })
        .collect();
    figures.push(("keys of one session (`MEMORY USAGE`)".into(), keys.join("; ")));
}

/// The Markdown report.
pub fn render(r: &Results) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = write!(s, "Run {} on commit `{}`: {}, {}, loopback.", m.date, m.commit, m.cpu, m.kernel);
    let mut figures = Vec::new();
    if let Some((paths, results)) = r.throughput {
        let p = r.plan;
        let _ = writeln!(
            s,
            " wrk: {} threads, {} connections, {} × {} s per path after a {} s warm-up, paths interleaved; every server a separate process (logging `warn`).\n",
            p.load.threads, p.load.connections, p.rounds, p.secs, p.warmup_secs
        );
        throughput_table(&mut s, paths, results, &mut figures);
    } else {
        let _ = writeln!(s);
    }
    if let Some(ws) = r.websocket {
        figures.push((
            format!(
                "WebSocket echo, {} sockets × one 32-byte text in flight: messages/s direct / through cloakroom",
                ws.plan.sockets
            ),
            format!("{} / {}", thousands(ws.direct), thousands(ws.cloakroom)),
        ));
        figures.push((
            "WebSocket echo: cloakroom / direct, messages/s".into(),
            format!("**{:.2}×**", ws.cloakroom / ws.direct),
        ));
    }
    if let Some(f) = r.refresh {
        refresh_figures(f, &mut figures);
    }
    if let Some(mem) = r.memory {
        memory_figures(mem, &mut figures);
    }
    let _ = writeln!(s, "\n| figure | value |\n|---|---:|");
    for (k, v) in figures {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}

/// Per-run detail for `target/bench/results.md`.
pub fn details(r: &Results) -> String {
    let mut s = String::new();
    if let Some((paths, results)) = r.throughput {
        s.push_str("\n### Runs\n\n| path | round | req/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n");
        for (path, res) in paths.iter().zip(results) {
            for (i, run) in res.runs.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "| {}: {} | {} | {} | {:.2} ms | {:.2} ms |",
                    path.upstream.short(),
                    path.label,
                    i + 1,
                    thousands(run.rps()),
                    run.p50_ms,
                    run.p99_ms
                );
            }
        }
    }
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
    if let Some(f) = r.refresh {
        let _ = writeln!(
            s,
            "\nRefresh waits, ms: {}\n\nNormal requests, ms: {}",
            list(&f.single_ms),
            list(&f.baseline_ms)
        );
    }
    if let Some(mem) = r.memory {
        let _ =
            writeln!(s, "\nMemory fill: {} sessions in {:.1} s.", thousands(mem.sessions as f64), mem.secs);
    }
    s
}
