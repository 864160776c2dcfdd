//! A private `redis-server` per test binary (or per test), on a free port, never one that
//! someone left running.

use cloakroom::store::{Event, Store};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::Receiver;

/// A `redis-server` child process. Dropping it kills the server.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Mutex<Option<Child>>,
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16) -> RedisServer {
        Self::start_with(port, false)
    }

    /// Starts a server that writes every change to its append-only file before answering
    /// (`appendfsync always`), so that [`RedisServer::restart`] after a crash keeps the data.
    pub fn start_persistent() -> RedisServer {
        Self::start_with(free_port(), true)
    }

    fn start_with(port: u16, persistent: bool) -> RedisServer {
        // The append-only file goes to tmpfs when there is one: it survives a killed Redis just
        // the same, and `appendfsync always` on a virtual machine's disk stalls now and then
        // for longer than the store timeout (seen in the soak, in every program at once).
        let shm = std::path::Path::new("/dev/shm");
        let base = if persistent && shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let dir = base.join(format!("cloakroom-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let server = RedisServer { port, dir, persistent, child: Mutex::new(None) };
        server.spawn();
        server
    }

    fn spawn(&self) {
        let port = self.port.to_string();
        let appendonly = if self.persistent { "yes" } else { "no" };
        // It dies with the thread that started it (see `shared`).
        let mut cmd = super::redis_process::redis_server_command(&[
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            appendonly,
            "--appendfsync",
            "always",
            "--notify-keyspace-events",
            "",
            "--protected-mode",
            "yes",
        ]);
        cmd.arg("--dir").arg(&self.dir);
        let child = cmd.spawn().expect("redis-server must be installed (apt-get install redis-server)");
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    /// True when the server answers PING.
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (a crash, not a shutdown) and waits until it is gone.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered — a stalled
    /// Redis. [`RedisServer::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(child) = self.child.lock().unwrap().as_ref() {
            unsafe {
                libc::kill(child.id() as libc::pid_t, sig);
            }
        }
    }

    /// Starts the server again on the same port (after `stop`).
    pub fn restart(&self) {
        self.stop();
        self.spawn();
    }

    /// Every key and its string value (or type name for other types), for assertions that
    /// nothing secret is stored in the clear.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.dump_inner()
    }

    /// Deletes every key starting with `prefix` (a program's namespace, say).
    pub fn delete_prefixed(&self, prefix: &str) {
        let client = ::redis::Client::open(self.url()).expect("redis client");
        let mut conn = client.get_connection().expect("redis connection");
        let keys: Vec<String> =
            ::redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn).expect("KEYS");
        for key in keys {
            let _: () = ::redis::cmd("DEL").arg(key).query(&mut conn).expect("DEL");
        }
    }

    /// Seconds `key` (full name, namespace included) has left: `None` when it does not exist
    /// or never expires.
    pub fn ttl(&self, key: &str) -> Option<u64> {
        let client = ::redis::Client::open(self.url()).expect("redis client");
        let mut conn = client.get_connection().expect("redis connection");
        let secs: i64 = ::redis::cmd("TTL").arg(key).query(&mut conn).expect("TTL");
        u64::try_from(secs).ok()
    }

    fn dump_inner(&self) -> Vec<(String, Vec<u8>)> {
        let client = ::redis::Client::open(self.url()).expect("redis client");
        let mut conn = client.get_connection().expect("redis connection");
        let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS");
        keys.into_iter()
            .map(|k| {
                let kind: String = ::redis::cmd("TYPE").arg(&k).query(&mut conn).unwrap_or_default();
                let value: Vec<u8> = match kind.as_str() {
                    "string" => ::redis::cmd("GET").arg(&k).query(&mut conn).unwrap_or_default(),
                    "zset" => {
                        let members: Vec<String> = ::redis::cmd("ZRANGE")
                            .arg(&k)
                            .arg(0)
                            .arg(-1)
                            .query(&mut conn)
                            .unwrap_or_default();
                        members.join("\n").into_bytes()
                    }
                    other => other.as_bytes().to_vec(),
                };
                (k, value)
            })
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test binary's shared server, started on first use from a thread that lives as long as
/// the process (so PR_SET_PDEATHSIG fires only when the process ends).
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<&'static RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server: &'static RedisServer = Box::leak(Box::new(RedisServer::start()));
            tx.send(server).expect("send server");
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("redis-server started")
    })
}

/// A namespace no other test uses, so tests can share one server.
pub fn unique_namespace(prefix: &str) -> String {
    format!("{prefix}-{}", cloakroom::crypto::random_token(6))
}

/// Publishes probes from `store` until one comes back on `rx`: the subscription is live, so a
/// test does not race it (the subscriber announces `Lost` once it is (re)subscribed).
pub async fn wait_subscribed(store: &Store, rx: &mut Receiver<Event>) {
    for _ in 0..200 {
        store.publish("probe", b"").await.ok();
        if let Ok(Ok(Event::Message { channel, .. })) =
            tokio::time::timeout(Duration::from_millis(50), rx.recv()).await
            && channel == "probe"
        {
            return;
        }
    }
    panic!("subscription never became active");
}

/// Waits until a replica of the master on `port` has acknowledged every write the master took
/// so far, from whichever client. (`WAIT` would not do: it waits only for the writes of its own
/// connection, and a fresh connection has made none.) Replicas acknowledge once a second.
pub fn wait_replica_caught_up(port: u16) {
    let info = || -> String {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c))
            .unwrap_or_default()
    };
    let field = |info: &str, name: &str| -> Option<i64> {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
    };
    let written = field(&info(), "master_repl_offset").expect("the master's replication offset");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = info();
        let acked = now
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("offset=")?.parse::<i64>().ok()))
            .max();
        if acked.is_some_and(|a| a >= written) {
            return;
        }
        assert!(Instant::now() < deadline, "no replica of {port} caught up with offset {written}: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
