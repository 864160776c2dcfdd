//! A real Vite app (`tests/fixtures/vite-app`, npm `vite`, no framework) built the way a team
//! builds its single-page app, with `.br` and `.gz` files beside the built files as a
//! compression step would leave them. Needs Node (>= 20.19) and, once per machine, the npm
//! registry.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's directory.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vite-app")
}

/// A copy of the app's build output (built and precompressed once per test binary: Vite
/// refuses two builds of one project at a time) in a temporary directory of its own, which the
/// test may change.
pub fn build() -> tempdir::TempDir {
    static BUILT: std::sync::OnceLock<tempdir::TempDir> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let fixture = fixture_dir();
        super::npm::install(&fixture);
        let out = tempdir::TempDir::new("cloakroom-vite-build");
        run_node(
            &fixture,
            &["node_modules/vite/bin/vite.js", "build", "--emptyOutDir", "--outDir"],
            out.path(),
        );
        run_node(&fixture, &["precompress.mjs"], out.path());
        out
    });
    let copy = tempdir::TempDir::new("cloakroom-vite-dist");
    copy_dir(built.path(), copy.path());
    copy
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read build output") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create directory");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn run_node(cwd: &Path, args: &[&str], last: &Path) {
    let out = Command::new("node")
        .current_dir(cwd)
        .args(args)
        .arg(last)
        .output()
        .unwrap_or_else(|e| panic!("the frontend tests need Node.js on the PATH: {e}"));
    assert!(
        out.status.success(),
        "node {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Temporary directories removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory under the system's temporary directory, removed with its content on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        /// Creates `<tmp>/<prefix>-<random>`.
        pub fn new(prefix: &str) -> Self {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", cloakroom::crypto::random_token(8)));
            std::fs::create_dir_all(&path).expect("create temporary directory");
            Self(path)
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The fixture app's Vite dev server (`vite`, with hot module replacement), run from a copy of
/// the app's sources that the test may edit; stopped on drop.
pub struct DevServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: tempdir::TempDir,
    child: std::process::Child,
}

impl DevServer {
    /// Starts `vite` on a free port and waits until it serves the app.
    pub async fn start() -> DevServer {
        let fixture = fixture_dir();
        super::npm::install(&fixture);
        let dir = tempdir::TempDir::new("cloakroom-vite-dev");
        for name in ["index.html", "package.json"] {
            std::fs::copy(fixture.join(name), dir.path().join(name)).expect("copy the app");
        }
        for sub in ["src", "public"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create directory");
            copy_dir(&fixture.join(sub), &dir.path().join(sub));
        }
        std::os::unix::fs::symlink(fixture.join("node_modules"), dir.path().join("node_modules"))
            .expect("link node_modules");
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new("node")
            .current_dir(dir.path())
            .args(["node_modules/vite/bin/vite.js", "--host", "127.0.0.1", "--strictPort", "--port"])
            .arg(port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("the dev server tests need Node.js on the PATH: {e}"));
        let server = DevServer { url: format!("http://127.0.0.1:{port}"), dir, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if reqwest::get(&server.url).await.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("the Vite dev server did not answer within 60 s");
    }

    /// Replaces the source file `rel` (below the app's root) with `content`, as an editor saves.
    pub fn write(&self, rel: &str, content: &str) {
        std::fs::write(self.dir.path().join(rel), content).expect("write a source file");
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
