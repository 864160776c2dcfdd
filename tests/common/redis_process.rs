//! The `redis-server` processes of the test deployments (a single server, a cluster, Sentinel):
//! started with their output discarded, dying with the thread that started them (so a crashed
//! or killed test run leaves none behind), killed on demand or when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// `redis-server` with `args`, its output discarded, dying with the thread that spawns it.
pub fn redis_server_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("redis-server");
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// One running `redis-server` (a data node or a sentinel) on `port`.
pub struct RedisProcess {
    pub port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisProcess {
    /// Starts `redis-server ARGS…` in `dir`.
    pub fn spawn(port: u16, args: &[&str], dir: &Path) -> RedisProcess {
        let child = redis_server_command(args)
            .current_dir(dir)
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        RedisProcess { port, child: Mutex::new(Some(child)) }
    }

    /// Kills it (a crash); nothing when it is gone already.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has not been killed.
    pub fn running(&self) -> bool {
        self.child.lock().unwrap().is_some()
    }

    /// Sends `sig` (SIGSTOP freezes it: connections stay open, nothing is answered; SIGCONT
    /// lets it go on).
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(child) = self.child.lock().unwrap().as_ref() {
            unsafe {
                libc::kill(child.id() as libc::pid_t, sig);
            }
        }
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One command to the server on `port`, on a connection of its own.
pub fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    cmd.query(&mut conn)
}

/// The deployment in `cell`, started by `start` on first use from a thread that lives as long
/// as the test binary (so PR_SET_PDEATHSIG fires only when the process ends).
pub fn shared<T: Send + Sync + 'static>(cell: &'static OnceLock<&'static T>, start: fn() -> T) -> &'static T {
    cell.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let deployment: &'static T = Box::leak(Box::new(start()));
            tx.send(deployment).expect("send deployment");
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("the shared deployment started")
    })
}
