//! The static-asset row: one fingerprinted file of a built app, served by nginx (the web server
//! teams put in front of a `dist/`) and by cloakroom's `[[bff.frontends]] dir`, from the same
//! directory. nginx runs as a child process with as many workers as the BFF has (two), access
//! log off, `sendfile` on.

use crate::procs;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The asset's path below the frontend.
pub const ASSET: &str = "/assets/app-5f3c9a1e.js";

/// Writes `target/bench/static/` (an `index.html` and an 8 kB script under `assets/`) and
/// returns its path.
pub fn write_dist() -> Result<PathBuf> {
    let dir = procs::out_dir().join("static");
    std::fs::create_dir_all(dir.join("assets"))?;
    std::fs::write(
        dir.join("index.html"),
        format!("<!doctype html><title>bench</title><script type=module src=\"{ASSET}\"></script>"),
    )?;
    let line = "export const greeting = (name) => `hello, ${name}`; // padding to a typical chunk\n";
    std::fs::write(dir.join(ASSET.trim_start_matches('/')), line.repeat(8192 / line.len()))?;
    Ok(dir)
}

/// A running nginx serving `root` on 127.0.0.1:`port`.
pub struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    /// Starts nginx and waits until it answers.
    pub async fn start(root: &Path, port: u16) -> Result<Nginx> {
        let prefix = procs::out_dir().join("nginx");
        std::fs::create_dir_all(prefix.join("logs"))?;
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 2;\npid {pid};\nerror_log {log} warn;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nodelay on;\n  keepalive_requests 100000;\n\
                 types {{ text/html html; text/javascript js; }}\n\
                 client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;\n\
                 uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
                 location /assets/ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n  }}\n}}\n",
                pid = prefix.join("nginx.pid").display(),
                log = prefix.join("logs/error.log").display(),
                tmp = prefix.display(),
                root = root.display(),
            ),
        )?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf).args(["-g", "daemon off;"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().context("starting nginx (apt-get install nginx)")?;
        let nginx = Nginx { child, port };
        nginx.wait_ready().await?;
        Ok(nginx)
    }

    async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http.get(self.url()).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("nginx did not answer within 20 s; see target/bench/nginx/logs/error.log")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The master's and the workers' process ids (the workers do the serving).
    pub fn pids(&self) -> Vec<u32> {
        let Some(master) = self.child.id() else { return Vec::new() };
        let mut pids = vec![master];
        pids.extend(crate::sysstat::children(master));
        pids
    }

    /// Stops nginx.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
