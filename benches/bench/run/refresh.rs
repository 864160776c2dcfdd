//! The added latency of a request that has to wait for a refresh (issue 4), alone and with
//! concurrent waiters on one and on two BFF instances.
//!
//! The deployment issues access tokens for [`ACCESS_TOKEN_TTL_SECS`]. A sample waits until the
//! session's access token has EXPIRED, so that no implementation may forward it: the request
//! must wait for the new one. Right after, a few requests with the fresh token give the
//! baseline. Every answer carries the `jti` of the token the resource server saw (`/whoami`),
//! which tells whether a refresh happened and how many distinct tokens a burst used.

use anyhow::{Result, bail};
use reqwest::header::COOKIE;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Access-token lifetime of the refresh deployment.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 2;
/// Normal requests after each refresh, for the baseline.
const BASELINE_PER_SAMPLE: usize = 5;
/// The quiet pause before an idle baseline request (a refresh is due only after half of
/// [`ACCESS_TOKEN_TTL_SECS`]).
const IDLE_PAUSE: Duration = Duration::from_millis(500);

/// How many samples.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Single-request samples.
    pub samples: usize,
    /// Concurrent requests per burst.
    pub waiters: usize,
    /// Bursts per variant (one instance, two instances).
    pub bursts: usize,
}

/// Latencies of one burst and how many distinct access tokens it used (1: single flight).
pub struct Burst {
    /// Milliseconds per request.
    pub latencies_ms: Vec<f64>,
    /// Distinct `jti`s among the answers.
    pub distinct_tokens: usize,
}

/// Everything measured.
pub struct RefreshResult {
    /// Normal requests, milliseconds.
    pub baseline_ms: Vec<f64>,
    /// Normal requests after half a second of quiet (like a refresh sample, which comes after
    /// seconds of quiet: an idle machine wakes up slower than a busy one), milliseconds.
    pub idle_baseline_ms: Vec<f64>,
    /// Lone requests that waited for a refresh, milliseconds.
    pub single_ms: Vec<f64>,
    /// Bursts on one instance, and the same bursts without a refresh (right after one).
    pub one_instance: (Vec<Burst>, Vec<Burst>),
    /// Bursts split over two instances, and the same without a refresh.
    pub two_instances: (Vec<Burst>, Vec<Burst>),
    /// Samples in which no refresh happened (should be none).
    pub not_refreshed: usize,
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Burst {
    fn of(answers: &[(f64, Token)]) -> Burst {
        let mut jtis: Vec<&str> = answers.iter().map(|(_, t)| t.jti.as_str()).collect();
        jtis.sort_unstable();
        jtis.dedup();
        Burst { latencies_ms: answers.iter().map(|(ms, _)| *ms).collect(), distinct_tokens: jtis.len() }
    }
}

#[derive(Clone, PartialEq)]
struct Token {
    jti: String,
    exp: i64,
}

struct Caller {
    http: reqwest::Client,
    cookie: String,
    urls: Vec<String>,
}

impl Caller {
    async fn call(&self, instance: usize) -> Result<(f64, Token)> {
        let url = &self.urls[instance % self.urls.len()];
        let started = Instant::now();
        let res = self.http.get(url).header(COOKIE, &self.cookie).header("X-CSRF", "1").send().await?;
        let status = res.status();
        let body = res.text().await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let token = Token {
            jti: v["jti"].as_str().unwrap_or_default().to_string(),
            exp: v["exp"].as_i64().unwrap_or_default(),
        };
        Ok((ms, token))
    }

    async fn burst(&self, n: usize, instances: usize) -> Result<Vec<(f64, Token)>> {
        let calls = (0..n).map(|i| self.call(i % instances));
        futures_util::future::join_all(calls).await.into_iter().collect()
    }

    /// Normal requests right after a refresh; those that saw another token (a refresh happened
    /// meanwhile) are left out.
    async fn baseline(&self, current: &Token, out: &mut Vec<f64>) -> Result<()> {
        for _ in 0..BASELINE_PER_SAMPLE {
            let (ms, token) = self.call(0).await?;
            if token == *current {
                out.push(ms);
            }
        }
        Ok(())
    }
}

/// Sleeps until the BFF must consider `token` expired: the BFF stamps its own expiry from the
/// time it received the token, in whole seconds, at most one second after the JWT's `exp`.
async fn until_expired(token: &Token) {
    let target_ms = (token.exp + 1) * 1000 + 20;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(target_ms.saturating_sub(now_ms).max(0) as u64)).await;
}

/// Measures with the session `cookie` (`__Host-cloakroom=…`) against `GET /api/whoami` of the
/// BFF instances at `bff_urls` (at least two).
pub async fn measure(bff_urls: &[String], cookie: String, plan: Plan) -> Result<RefreshResult> {
    let caller = Caller {
        http: reqwest::Client::builder().tcp_nodelay(true).build()?,
        cookie,
        urls: bff_urls.iter().map(|u| format!("{u}/api/whoami")).collect(),
    };
    let mut result = RefreshResult {
        baseline_ms: Vec::new(),
        idle_baseline_ms: Vec::new(),
        single_ms: Vec::new(),
        one_instance: (Vec::new(), Vec::new()),
        two_instances: (Vec::new(), Vec::new()),
        not_refreshed: 0,
    };
    // Open the pooled connections (to both instances) before anything is timed.
    let mut current = caller
        .burst(plan.waiters.max(2), 2)
        .await?
        .pop()
        .map(|(_, t)| t)
        .unwrap_or(Token { jti: String::new(), exp: 0 });
    for i in 0..plan.samples {
        until_expired(&current).await;
        let (ms, token) = caller.call(0).await?;
        if token.jti == current.jti {
            result.not_refreshed += 1;
        } else {
            result.single_ms.push(ms);
        }
        current = token;
        caller.baseline(&current, &mut result.baseline_ms).await?;
        // Still in the first half of the new token's life: no refresh is due yet.
        tokio::time::sleep(IDLE_PAUSE).await;
        let (idle_ms, token) = caller.call(0).await?;
        if token == current {
            result.idle_baseline_ms.push(idle_ms);
        }
        println!(
            "  refresh sample {}/{}: {ms:.2} ms (after a quiet pause without a refresh: {idle_ms:.2} ms)",
            i + 1,
            plan.samples
        );
    }
    for instances in [1, 2] {
        for i in 0..plan.bursts {
            until_expired(&current).await;
            let answers = caller.burst(plan.waiters, instances).await?;
            let burst = Burst::of(&answers);
            if answers.iter().any(|(_, t)| t.jti == current.jti) {
                result.not_refreshed += 1;
            }
            if let Some((_, t)) = answers.into_iter().max_by_key(|(_, t)| t.exp) {
                current = t;
            }
            // The same burst with nothing to refresh: what concurrency alone costs.
            let normal = caller.burst(plan.waiters, instances).await?;
            let unchanged = normal.iter().all(|(_, t)| *t == current);
            println!(
                "  burst of {} on {instances} instance(s) {}/{}: median {:.2} ms (without a refresh {:.2} ms), {} token(s)",
                plan.waiters,
                i + 1,
                plan.bursts,
                median(&burst.latencies_ms),
                median(&Burst::of(&normal).latencies_ms),
                burst.distinct_tokens
            );
            caller.baseline(&current, &mut result.baseline_ms).await?;
            let variant = if instances == 1 { &mut result.one_instance } else { &mut result.two_instances };
            variant.0.push(burst);
            if unchanged {
                variant.1.push(Burst::of(&normal));
            }
        }
    }
    Ok(result)
}
