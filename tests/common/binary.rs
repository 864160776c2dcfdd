//! The real `cloakroom` binary as a child process: started with a config file and environment,
//! signalled, and waited for — for tests of what only a whole process shows (signals, exit codes).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `cloakroom` child; killed on drop if still running.
pub struct Program {
    child: Child,
    config: Option<PathBuf>,
}

impl Program {
    /// Starts `cloakroom ARGS` with a clean environment plus `env`, and `config` (TOML) as its
    /// configuration file when given.
    pub fn start(args: &[&str], env: &[(&str, &str)], config: Option<&str>) -> Program {
        let config = config.map(|toml| {
            let path = std::env::temp_dir()
                .join(format!("cloakroom-bin-test-{}.toml", cloakroom::crypto::random_token(8)));
            std::fs::write(&path, toml).expect("write config");
            path
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloakroom"));
        if let Some(path) = &config {
            cmd.arg("--config").arg(path);
        }
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The child dies with the test thread that started it, even if the test panics.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Program { child: cmd.spawn().expect("spawn cloakroom"), config }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: libc::c_int) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// Waits at most `bound` for the process to exit; `None` if it is still running.
    pub fn wait_for_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What a finished `cloakroom` run printed and how it exited.
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

/// Runs `cloakroom ARGS` to completion with a clean environment plus `env`, off the async
/// runtime (for the admin commands).
pub async fn run(args: &[&str], env: Vec<(String, String)>) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_cloakroom"))
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .expect("run cloakroom");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("cloakroom run task")
}

/// Polls `url` until it answers 200 (at most 20 s).
pub async fn wait_healthy(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered 200");
}

/// A TOML configuration file for the `cloakroom bff` binary from a stack's `[bff]` section
/// (`doc["bff"]`): its listen address (the public URL's), keys, store, provider and first route,
/// then `extra` (more `[bff]` keys, one per line), then the routes `(path, upstream)`.
pub fn bff_config_file(doc: &serde_json::Value, extra: &str, routes: &[(&str, &str)]) -> String {
    let s =
        |v: &serde_json::Value| serde_json::to_string(v.as_str().expect("a string")).expect("a JSON string");
    let addr = doc["public_url"].as_str().expect("url").trim_start_matches("http://").to_string();
    let mut file = format!(
        "[bff]\nlisten = \"{addr}\"\npublic_url = {}\nsession_key = {}\nredis_url = {}\nredis_namespace = {}\n\
         {extra}\n\n[bff.oidc]\nissuer = {}\nclient_id = {}\nclient_secret = {}\n\n\
         [[bff.routes]]\npath = \"/api\"\nupstream = {}\n",
        s(&doc["public_url"]),
        s(&doc["session_key"]),
        s(&doc["redis_url"]),
        s(&doc["redis_namespace"]),
        s(&doc["oidc"]["issuer"]),
        s(&doc["oidc"]["client_id"]),
        s(&doc["oidc"]["client_secret"]),
        s(&doc["routes"][0]["upstream"]),
    );
    for (path, upstream) in routes {
        file.push_str(&format!("\n[[bff.routes]]\npath = \"{path}\"\nupstream = \"{upstream}\"\n"));
    }
    file
}
