//! The real `cloakroom` binary as child processes, each configured only by `CLOAKROOM_…`
//! variables, so that each can be measured (CPU, RSS), killed and restarted on its own.
//!
//! Children die with the thread that spawned them (`PR_SET_PDEATHSIG`), so a crashed or
//! interrupted run leaves nothing behind: spawn them from the main future (`block_on` runs it
//! on the main thread), never from a task.

use anyhow::{Context, Result, bail};
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The binary `cargo bench` built next to this program (`target/release/cloakroom`).
pub const BINARY: &str = env!("CARGO_BIN_EXE_cloakroom");

/// Where the children's output goes: `target/bench/logs/NAME.log`.
pub fn logs_dir() -> PathBuf {
    out_dir().join("logs")
}

/// `target/bench`.
pub fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("bench")
}

/// One program of the binary (`bff`, `auth-server`, `resource-server`).
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    port: u16,
    ready_path: &'static str,
    env: Vec<(String, String)>,
    child: Option<Child>,
    spawned: bool,
}

impl Proc {
    /// `cloakroom COMMAND` listening on `port`, ready when `GET ready_path` answers 200; not
    /// started yet.
    pub fn new(
        name: &str,
        command: &'static str,
        port: u16,
        ready_path: &'static str,
        env: Vec<(String, String)>,
    ) -> Self {
        let args = vec![command.to_string()];
        Self {
            name: name.to_string(),
            program: BINARY.into(),
            args,
            port,
            ready_path,
            env,
            child: None,
            spawned: false,
        }
    }

    /// This bench program's trivial upstream (`bench upstream --port PORT`), not started yet.
    pub fn trivial_upstream(name: &str, port: u16) -> Result<Self> {
        let args = ["upstream", "--port", &port.to_string()].map(String::from).to_vec();
        let program = std::env::current_exe()?;
        Ok(Self {
            name: name.to_string(),
            program,
            args,
            port,
            ready_path: "/",
            env: Vec::new(),
            child: None,
            spawned: false,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the program and waits until it is ready.
    pub async fn start(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready().await
    }

    fn spawn(&mut self) -> Result<()> {
        std::fs::create_dir_all(logs_dir())?;
        // A restart appends to the log of the same run; a new run starts a new log.
        let log = OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.spawned)
            .truncate(!self.spawned)
            .open(logs_dir().join(format!("{}.log", self.name)))?;
        self.spawned = true;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Request logging costs the servers CPU that the plain proxy does not spend.
            .env("RUST_LOG", std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child =
            cmd.spawn().with_context(|| format!("spawning {} {:?}", self.program.display(), self.args))?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}{}", self.url(), self.ready_path);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("{} exited during start-up ({status}); see {}", self.name, self.log_hint());
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} was not ready within 60 s; see {}", self.name, self.log_hint())
    }

    fn log_hint(&self) -> String {
        logs_dir().join(format!("{}.log", self.name)).display().to_string()
    }

    /// Kills the program (a crash) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the program the way a deploy does (SIGTERM: stop accepting, finish in-flight
    /// requests), killing it if it has not exited after 15 s.
    pub async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on our own child's pid, which has not been reaped yet.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(15), child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
}
