//! A real Sentinel deployment for tests: a master, one replica and three `redis-server
//! --sentinel` processes (each with its own generated config file in a temp dir), all on free
//! ports, killed on drop, never one someone left running. Failure detection is fast
//! (`down-after-milliseconds 1000`) so that a failover fits in a test.

use super::redis::free_port;
use super::redis_process::{RedisProcess, query, shared};
use cloakroom::config::{RedisUrl, StoreConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "mymaster";

/// A running master + replica + 3 sentinels; dropping it kills every process.
pub struct RedisSentinel {
    /// The two data nodes; which one is master changes with failovers.
    nodes: Vec<RedisProcess>,
    sentinels: Vec<RedisProcess>,
    dir: PathBuf,
}

fn wait(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("redis sentinel: {what} never happened");
}

impl RedisSentinel {
    /// Starts the master, its replica and three sentinels, and waits until every sentinel
    /// names the master and the replica is in sync and streaming.
    pub fn start() -> RedisSentinel {
        let dir = std::env::temp_dir().join(format!(
            "cloakroom-sentinel-{}-{}",
            std::process::id(),
            cloakroom::crypto::random_token(4)
        ));
        std::fs::create_dir_all(&dir).expect("sentinel dir");
        let master = free_port();
        let replica = free_port();
        let data = |port: u16, replica_of: Option<u16>| {
            let port_s = port.to_string();
            let mut args = vec!["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
            let of = replica_of.map(|m| m.to_string());
            if let Some(of) = &of {
                args.extend(["--replicaof", "127.0.0.1", of]);
            }
            let file = format!("dump-{port}.rdb");
            args.extend(["--dbfilename", &file]);
            RedisProcess::spawn(port, &args, &dir)
        };
        let nodes = vec![data(master, None), data(replica, Some(master))];
        let sentinels = (0..3)
            .map(|_| {
                let port = free_port();
                let conf = dir.join(format!("sentinel-{port}.conf"));
                // Sentinel rewrites its own file (discovered peers, epochs): one file each.
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\nprotected-mode no\n\
                         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
                         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                         sentinel failover-timeout {MASTER_NAME} 5000\n\
                         sentinel parallel-syncs {MASTER_NAME} 1\n"
                    ),
                )
                .expect("sentinel config");
                RedisProcess::spawn(port, &[conf.to_str().expect("utf-8 path"), "--sentinel"], &dir)
            })
            .collect();
        let deployment = RedisSentinel { nodes, sentinels, dir };
        deployment.wait_in_sync();
        // After a full sync the master streams to the replica only once it acknowledged
        // (within a second): until then no write can be acknowledged (`WAIT`).
        deployment.wait_replicated();
        for s in &deployment.sentinels {
            wait(|| deployment.master_named_by(s.port) == Some(master), "every sentinel names the master");
        }
        deployment
    }

    /// `redis://127.0.0.1:PORT` of every sentinel.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(|s| format!("redis://127.0.0.1:{}", s.port)).collect()
    }

    /// A store configuration on the master these sentinels name, under `namespace` (1 s time
    /// bound).
    pub fn store_config(&self, namespace: &str) -> StoreConfig {
        StoreConfig {
            redis_sentinel_urls: self
                .urls()
                .into_iter()
                .map(|u| RedisUrl::try_from(u).expect("url"))
                .collect(),
            redis_sentinel_master: Some(MASTER_NAME.to_string()),
            redis_namespace: namespace.to_string(),
            redis_timeout_ms: 1000,
            ..StoreConfig::default()
        }
    }

    /// The master's port as the sentinel on `sentinel_port` names it.
    fn master_named_by(&self, sentinel_port: u16) -> Option<u16> {
        let addr: Option<(String, String)> =
            query(sentinel_port, redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME))
                .ok()?;
        addr.and_then(|(_, port)| port.parse().ok())
    }

    /// The port of the node that is master now (asked of the node itself).
    pub fn master(&self) -> u16 {
        self.nodes
            .iter()
            .filter(|n| n.running())
            .map(|n| n.port)
            .find(|&port| {
                query::<String>(port, redis::cmd("INFO").arg("replication"))
                    .is_ok_and(|r| r.contains("role:master"))
            })
            .expect("a running master")
    }

    /// The port of the data node that is not `port`.
    pub fn other(&self, port: u16) -> u16 {
        self.nodes.iter().map(|n| n.port).find(|&p| p != port).expect("two nodes")
    }

    /// Waits until every running replica's link to its master is up.
    fn wait_in_sync(&self) {
        wait(
            || {
                self.nodes.iter().filter(|n| n.running()).all(|n| {
                    let repl: String =
                        query(n.port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
                    repl.contains("role:master") || repl.contains("master_link_status:up")
                })
            },
            "the replica is in sync",
        );
    }

    /// Waits until every running sentinel knows the two others and the replica, so that a
    /// failover can be agreed on (quorum 2, majority of 3).
    pub fn wait_quorum(&self) {
        wait(
            || {
                self.sentinels.iter().all(|s| {
                    let info: Vec<String> =
                        query(s.port, redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME))
                            .unwrap_or_default();
                    let field = |name: &str| {
                        info.iter()
                            .position(|k| k == name)
                            .and_then(|i| info.get(i + 1))
                            .cloned()
                            .unwrap_or_default()
                    };
                    let replicas: Vec<Vec<String>> =
                        query(s.port, redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME))
                            .unwrap_or_default();
                    let replica_ok = replicas.iter().any(|r| {
                        let f =
                            |name: &str| r.iter().position(|k| k == name).and_then(|i| r.get(i + 1)).cloned();
                        f("flags").as_deref() == Some("slave")
                            && f("master-link-status").as_deref() == Some("ok")
                    });
                    field("num-other-sentinels") == "2" && field("num-slaves") == "1" && replica_ok
                })
            },
            "the sentinels know each other and the replica",
        );
    }

    /// Waits until the replica has acknowledged every write the master took so far.
    pub fn wait_replicated(&self) {
        super::redis::wait_replica_caught_up(self.master());
    }

    /// Freezes the data node on `port` (SIGSTOP): a stalled replica that acknowledges nothing.
    pub fn pause(&self, port: u16) {
        self.nodes.iter().find(|n| n.port == port).expect("node").signal(libc::SIGSTOP);
    }

    /// Lets a paused data node go on (SIGCONT).
    pub fn resume(&self, port: u16) {
        self.nodes.iter().find(|n| n.port == port).expect("node").signal(libc::SIGCONT);
    }

    /// Kills the data node on `port` (a crash).
    pub fn kill(&self, port: u16) {
        self.nodes.iter().find(|n| n.port == port).expect("node").kill();
    }

    /// Asks one sentinel for a failover (`SENTINEL FAILOVER`), which demotes a live master.
    pub fn failover(&self) {
        // The sentinel refreshes what it knows of the replica every few seconds; until then it
        // may answer NOGOODSLAVE: ask again.
        wait(
            || {
                query::<String>(
                    self.sentinels[0].port,
                    redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME),
                )
                .is_ok()
            },
            "SENTINEL FAILOVER was accepted",
        );
    }

    /// True when every sentinel names the node on `port` as master and it says so itself (a
    /// quick check, for polling from async code).
    pub fn is_master(&self, port: u16) -> bool {
        query::<String>(port, redis::cmd("INFO").arg("replication")).is_ok_and(|r| r.contains("role:master"))
            && self.sentinels.iter().all(|s| self.master_named_by(s.port) == Some(port))
    }

    /// Waits until the node on `port` has been turned into a replica (Sentinel reconfigures a
    /// demoted master once it notices it, which takes it up to a few INFO periods).
    pub fn wait_replica(&self, port: u16) {
        wait(
            || {
                query::<String>(port, redis::cmd("INFO").arg("replication"))
                    .is_ok_and(|r| r.contains("role:slave"))
            },
            "the old master became a replica",
        );
    }

    /// Waits until [`RedisSentinel::is_master`] holds for `port`.
    pub fn wait_master_is(&self, port: u16) {
        wait(|| self.is_master(port), "the sentinels promoted the replica");
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for p in self.sentinels.iter().chain(&self.nodes) {
            p.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test binary's shared deployment, started on first use from a thread that lives as long
/// as the process (so PR_SET_PDEATHSIG fires only when the process ends). Never failed over.
pub fn shared_sentinel() -> &'static RedisSentinel {
    static SENTINEL: OnceLock<&'static RedisSentinel> = OnceLock::new();
    shared(&SENTINEL, RedisSentinel::start)
}
