//! A real browser for end-to-end tests: Debian's headless Chromium driven over WebDriver
//! (`fantoccini`) through a `chromedriver` this harness starts on a free port and kills on
//! drop. Nothing is downloaded: a missing `/usr/bin/chromium` or `/usr/bin/chromedriver` fails
//! the test with a message saying what to install.
//!
//! Waits poll with a deadline (a loaded 2-core machine can be slow), and every step can be
//! saved as a screenshot under `target/browser-screenshots/` (a CI artifact).

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The browser binary (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// At most two browsers at once in one test binary: each is several processes, and the CI
/// machine has two cores.
static BROWSERS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// A running chromedriver process in its own process group, which also holds the Chromium it
/// launches: on drop the whole group is killed (so a failed test leaves no browser behind) and
/// chromedriver is reaped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group we created for
            // this chromedriver (process_group(0) below) and nothing else.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the browser tests need Debian's `{package}` package \
         (`apt-get install chromium chromium-driver`; .ci/run installs it). No browser is downloaded."
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("addr").port()
}

async fn start_driver() -> Driver {
    require(CHROMIUM, "chromium");
    require(CHROMEDRIVER, "chromium-driver");
    // A port just released can be taken again before chromedriver binds it; retry a few times.
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let mut driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = driver.child.try_wait() {
                break;
            }
            let ok = reqwest::get(format!("{}/status", driver.url)).await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.child.kill();
    }
    panic!("{CHROMEDRIVER} did not start answering on a free port");
}

/// One headless Chromium session with its own profile, for one test.
pub struct Chrome {
    /// The WebDriver client.
    pub client: Client,
    test: String,
    step: usize,
    profile: PathBuf,
    _driver: Driver,
    _permit: SemaphorePermit<'static>,
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium. `test` names the screenshots.
    pub async fn start(test: &str) -> Chrome {
        let permit = BROWSERS.acquire().await.expect("browser semaphore");
        let driver = start_driver().await;
        let profile =
            std::env::temp_dir().join(format!("cloakroom-chrome-{}", cloakroom::crypto::random_token(8)));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-extensions",
                    "--window-size=1100,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start {CHROMIUM}: {e}"));
        Chrome { client, test: test.to_string(), step: 0, profile, _driver: driver, _permit: permit }
    }

    /// Opens `url` in the current tab.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("current url").to_string()
    }

    /// Waits for an element matching `css`.
    pub async fn element(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => {
                self.screenshot("timeout").await;
                panic!("no element `{css}` on {} within {WAIT:?}: {e}", self.url_now().await)
            }
        }
    }

    async fn url_now(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.element(css).await.send_keys(text).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs an async `script` in the page: `await` is allowed and the value of its last
    /// `return` is the result.
    pub async fn js_async(&self, script: &str) -> Value {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];\
             (async () => {{ {script} }})().then(done, (e) => done({{ thrown: String(e) }}));"
        );
        self.client
            .execute_async(&wrapped, vec![])
            .await
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// Waits until the JavaScript expression `expr` is truthy in the page; `what` explains
    /// the failure.
    pub async fn wait_until(&self, what: &str, expr: &str) {
        let script = format!("try {{ return !!({expr}); }} catch (_) {{ return false; }}");
        let deadline = Instant::now() + WAIT;
        loop {
            // A navigation in progress makes scripts fail; that is "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(&script, vec![]).await {
                return;
            }
            if Instant::now() > deadline {
                self.screenshot("timeout").await;
                panic!("timed out after {WAIT:?} waiting for {what} (`{expr}`) on {}", self.url_now().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the current URL starts with `prefix`.
    pub async fn wait_for_url(&self, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.url_now().await;
            if now.starts_with(prefix) {
                return;
            }
            if Instant::now() > deadline {
                self.screenshot("timeout").await;
                panic!("timed out after {WAIT:?} waiting for {prefix}, still on {now}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `target/browser-screenshots/<test>-<nn>-<step>.png`.
    pub async fn screenshot(&self, step: &str) {
        let Ok(png) = self.client.screenshot().await else { return };
        let dir = screenshot_dir();
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{}-{step}.png", self.test)), png);
    }

    /// Saves a numbered screenshot of the next step (`<test>-01-<step>.png`, …).
    pub async fn step(&mut self, step: &str) {
        self.step += 1;
        let name = format!("{:02}-{step}", self.step);
        self.screenshot(&name).await;
    }

    /// Ends the session and the browser.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `target/browser-screenshots` (under `CARGO_TARGET_DIR` when set).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser-screenshots")
}

/// Serves fixed HTML pages on a free port of 127.0.0.1 (another origin, and another site,
/// than `localhost`): `pages` maps a path to its HTML. Returns the base URL. Every request is
/// answered with `Connection: close`; unknown paths get 404.
pub async fn serve_pages(pages: Vec<(&'static str, String)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let pages = std::sync::Arc::new(pages);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                    match conn.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let found = pages.iter().find(|(p, _)| *p == path).map(|(_, html)| html.clone());
                let (status, body) = match found {
                    Some(html) => ("200 OK", html),
                    None => ("404 Not Found", "not found".to_string()),
                };
                let res = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(res.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    url
}
