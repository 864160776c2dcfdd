//! A virtual user: logs in through a random BFF instance, makes API calls (reads and writes,
//! sometimes a burst of parallel ones) through random instances — a load balancer without
//! stickiness — then logs out and checks that another instance refuses the ended session.
//! A 401 before its own logout is a lost session.

use super::tally::{Bad, Call, Tally};
use crate::harness::{self, Browser, oidc_flow};
use cloakroom::bff::session::SESSION_COOKIE;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

tokio::task_local! {
    /// Set while the harness's login flow runs: it reports failures by panicking, and those
    /// panics are outcomes to count, not bugs to print (see [`quiet_login_panics`]).
    static LOGIN: ();
}

/// Keeps the panics of failed login flows off stderr; every other panic prints as usual.
pub fn quiet_login_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if LOGIN.try_with(|_| ()).is_err() {
            default(info);
        }
    }));
}

/// What every virtual user shares.
pub struct World {
    /// Base URLs of the BFF instances.
    pub bffs: Vec<String>,
    /// The auth server's base URL.
    pub auth_url: String,
    /// The BFF's client secret (the harness flow's `Stack` carries it).
    pub secret: String,
    /// Users to log in as.
    pub users: Vec<(String, String)>,
    /// One pooled client for the API calls.
    pub http: reqwest::Client,
    /// Pause between calls.
    pub think: Duration,
    /// The counters.
    pub tally: Tally,
    /// Set when the run is over.
    pub stop: AtomicBool,
}

/// What became of a session.
enum Outcome {
    /// It can go on.
    Alive,
    /// It answered 401: gone.
    Lost,
}

struct User {
    world: Arc<World>,
    rng: StdRng,
    cookie: String,
    notes: Vec<String>,
    /// When the current session logged in and last got a 2xx.
    life: (f64, f64),
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

impl User {
    fn stopped(&self) -> bool {
        self.world.stop.load(Ordering::Relaxed)
    }

    fn instance(&mut self) -> String {
        let i = self.rng.gen_range(0..self.world.bffs.len());
        self.world.bffs[i].clone()
    }

    /// The harness's login flow through a random instance; `None` if it failed (counted).
    async fn login(&mut self, user: (String, String)) -> Option<String> {
        let target = harness::Stack {
            auth_url: self.world.auth_url.clone(),
            bff_url: self.instance(),
            secret: self.world.secret.clone(),
        };
        let started = self.world.tally.now();
        let flow = tokio::spawn(LOGIN.scope((), async move {
            let browser = Browser::new();
            let page = oidc_flow::bff_login(&browser, &target, (&user.0, &user.1), "/").await;
            (page.status, browser.cookie(SESSION_COOKIE))
        }));
        let failure = match tokio::time::timeout(Duration::from_secs(30), flow).await {
            Ok(Ok((StatusCode::FOUND, Some(cookie)))) => {
                self.world.tally.count(Call::Login);
                return Some(cookie);
            }
            Ok(Ok((status, _))) => format!("callback answered {status}"),
            Ok(Err(e)) if e.is_panic() => {
                let payload = e.into_panic();
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                self.login_failure(&msg)
            }
            Ok(Err(_)) => "cancelled".into(),
            Err(_) => "timed out".into(),
        };
        self.world.tally.bad(Bad::LoginFailed(failure), started);
        None
    }

    /// A short reason from the harness's panic message (which may quote a page: not kept).
    fn login_failure(&self, msg: &str) -> String {
        let msg = msg.strip_prefix("assertion `left == right` failed: ").unwrap_or(msg);
        if let Some(url) = msg.strip_prefix("request to ") {
            let who = if url.starts_with(&self.world.auth_url) { "auth server" } else { "BFF" };
            return format!("no answer from the {who}");
        }
        msg.split([':', '\n']).next().unwrap_or_default().chars().take(60).collect()
    }

    /// One call with the session cookie; a replaced cookie is kept.
    async fn call(
        &mut self,
        call: Call,
        method: Method,
        base: &str,
        path: &str,
        body: Option<String>,
    ) -> Option<(StatusCode, String)> {
        let world = self.world.clone();
        let started = world.tally.now();
        let mut req = world
            .http
            .request(method, format!("{base}{path}"))
            .header(COOKIE, format!("{SESSION_COOKIE}={}", self.cookie))
            .header("X-CSRF", "1");
        if let Some(body) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(body);
        }
        world.tally.count(call);
        let res = match req.send().await {
            Ok(res) => res,
            Err(_) => {
                world.tally.bad(Bad::Transport, started);
                return None;
            }
        };
        let status = res.status();
        for v in res.headers().get_all(SET_COOKIE) {
            if let Some(c) = v.to_str().ok().and_then(|s| cookie::Cookie::parse(s.to_string()).ok())
                && c.name() == SESSION_COOKIE
                && !c.value().is_empty()
            {
                self.cookie = c.value().to_string();
            }
        }
        let body = res.text().await.unwrap_or_default();
        if status.is_server_error() {
            world.tally.bad(Bad::ServerError(error_code(&body)), started);
        }
        Some((status, body))
    }

    /// One API call, judged.
    async fn api_call(&mut self, call: Call, method: Method, path: &str, body: Option<String>) -> Outcome {
        let base = self.instance();
        let started = self.world.tally.now();
        let Some((status, body)) = self.call(call, method, &base, path, body).await else {
            return Outcome::Alive;
        };
        match status.as_u16() {
            200..=299 => {
                self.life.1 = self.world.tally.now();
                if path == "/api/notes"
                    && status == StatusCode::CREATED
                    && let Some(id) = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_string))
                {
                    self.notes.push(id);
                }
                Outcome::Alive
            }
            401 => {
                self.world.tally.bad(Bad::LostSession(error_code(&body)), started);
                Outcome::Lost
            }
            500..=599 => Outcome::Alive,
            other => {
                self.world.tally.bad(Bad::Unexpected(other, error_code(&body)), started);
                Outcome::Alive
            }
        }
    }

    /// A step: mostly one call, sometimes a burst of parallel reads on different instances.
    async fn step(&mut self) -> Outcome {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=39 => self.api_call(Call::ApiRead, Method::GET, "/api/notes", None).await,
            40..=54 => self.api_call(Call::ApiRead, Method::GET, "/api/whoami", None).await,
            55..=64 => self.api_call(Call::User, Method::GET, "/bff/user", None).await,
            65..=77 => {
                let text = format!("{{\"text\":\"soak note {}\"}}", self.rng.r#gen::<u32>());
                self.api_call(Call::ApiWrite, Method::POST, "/api/notes", Some(text)).await
            }
            // Deletes outnumber writes, so an account's notes stay under the resource server's
            // per-user limit however long the soak runs.
            78..=92 if !self.notes.is_empty() => {
                let id = self.notes.swap_remove(0);
                self.api_call(Call::ApiWrite, Method::DELETE, &format!("/api/notes/{id}"), None).await
            }
            _ => {
                // A page that fires several calls at once, spread over the instances.
                let mut burst = Vec::new();
                for _ in 0..4 {
                    let mut other = User {
                        world: self.world.clone(),
                        rng: StdRng::from_rng(&mut self.rng).unwrap_or_else(|_| StdRng::from_entropy()),
                        cookie: self.cookie.clone(),
                        notes: Vec::new(),
                        life: self.life,
                    };
                    burst.push(async move {
                        let outcome = other.api_call(Call::ApiRead, Method::GET, "/api/whoami", None).await;
                        (outcome, other.life.1)
                    });
                }
                let mut lost = false;
                for (outcome, last_ok) in futures_util::future::join_all(burst).await {
                    lost |= matches!(outcome, Outcome::Lost);
                    self.life.1 = self.life.1.max(last_ok);
                }
                if lost { Outcome::Lost } else { Outcome::Alive }
            }
        }
    }

    /// Logs out through one instance and checks through another that the session is gone.
    async fn logout(&mut self) {
        let base = self.instance();
        let Some((status, _)) = self.call(Call::Logout, Method::POST, &base, "/bff/logout", None).await
        else {
            return;
        };
        if !status.is_success() {
            return;
        }
        // Instances may learn of the logout asynchronously (within 100 ms, issue 7).
        tokio::time::sleep(Duration::from_millis(150)).await;
        let other = self.instance();
        let started = self.world.tally.now();
        if let Some((status, _)) = self.call(Call::User, Method::GET, &other, "/bff/user", None).await {
            self.world.tally.logout_checked();
            if status != StatusCode::UNAUTHORIZED && !status.is_server_error() {
                self.world.tally.bad(Bad::LogoutNotHonoured, started);
            }
        }
    }
}

/// Runs virtual user `id` until the world stops.
pub async fn run(id: usize, start_after: Duration, world: Arc<World>) {
    tokio::time::sleep(start_after).await;
    let user_creds = world.users[id % world.users.len()].clone();
    let mut user = User {
        world,
        rng: StdRng::from_entropy(),
        cookie: String::new(),
        notes: Vec::new(),
        life: (0.0, 0.0),
    };
    while !user.stopped() {
        let Some(cookie) = user.login(user_creds.clone()).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        user.cookie = cookie;
        let now = user.world.tally.now();
        user.life = (now, now);
        let steps = user.rng.gen_range(100..400);
        let mut alive = true;
        for _ in 0..steps {
            if user.stopped() {
                break;
            }
            if let Outcome::Lost = user.step().await {
                alive = false;
                break;
            }
            let jitter = user.rng.gen_range(0.5..1.5);
            tokio::time::sleep(user.world.think.mul_f64(jitter)).await;
        }
        user.world.tally.session(user.life.0, user.life.1);
        if alive {
            user.logout().await;
        }
    }
}
