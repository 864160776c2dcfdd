//! One `wrk` run (`wrk --latency`) and what it printed.

use anyhow::{Context, Result, bail};
use tokio::process::Command;

/// The load `wrk` applies.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Open connections (`-c`).
    pub connections: u32,
    /// Threads (`-t`).
    pub threads: u32,
}

/// What one run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkRun {
    /// Completed requests.
    pub requests: u64,
    /// Length of the run in seconds.
    pub secs: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile in milliseconds.
    pub p99_ms: f64,
    /// Answers other than 2xx/3xx, plus socket errors.
    pub errors: u64,
}

impl WrkRun {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

/// Runs `wrk` against `url` with `headers` for `secs` seconds.
pub async fn run(url: &str, headers: &[(String, String)], load: Load, secs: u64) -> Result<WrkRun> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = cmd.arg(url).output().await.context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// `"215.00us"`, `"1.23ms"`, `"2.00s"`, `"1.00m"` → milliseconds.
fn millis(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        "h" => n * 3_600_000.0,
        _ => return None,
    })
}

fn parse(text: &str) -> Option<WrkRun> {
    let mut run = WrkRun::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => run.p50_ms = millis(v)?,
            ["99%", v] => run.p99_ms = millis(v)?,
            [n, "requests", "in", d, ..] => {
                run.requests = n.parse().ok()?;
                run.secs = millis(d.trim_end_matches(','))? / 1000.0;
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                run.errors +=
                    rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>()
            }
            _ => {}
        }
    }
    (run.requests > 0 && run.secs > 0.0).then_some(run)
}
