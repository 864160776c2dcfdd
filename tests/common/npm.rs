//! npm fixtures under `tests/`: `npm ci` once per machine (again whenever package-lock.json
//! changes), never twice at the same time across parallel test binaries.

use std::path::Path;
use std::process::Command;

/// Runs `npm ci` in `dir` unless its current package-lock.json is installed already. A file lock
/// keeps parallel test binaries from installing at the same time; a marker holding the lock
/// file's hash says the install completed. Needs the npm registry the first time.
pub fn install(dir: &Path) {
    let lock_json = std::fs::read(dir.join("package-lock.json")).expect("read package-lock.json");
    let wanted = cloakroom::crypto::sha256_b64(&lock_json);
    let marker = dir.join("node_modules/.cloakroom-installed");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".npm-ci.lock"))
        .expect("open npm lock file");
    let _guard = FileLock::exclusive(&lock_file);
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("these tests need npm on the PATH (`npm ci` failed to start: {e})"));
    assert!(
        out.status.success(),
        "`npm ci --prefix {}` failed (it needs the npm registry once per machine):\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&marker, wanted).expect("write install marker");
}

/// An exclusive `flock` held until dropped.
struct FileLock<'a>(&'a std::fs::File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a std::fs::File) -> Self {
        use std::os::fd::AsRawFd;
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        FileLock(file)
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
