//! A real Redis Cluster for tests: `redis-server --cluster-enabled yes` processes on free ports
//! (and free cluster-bus ports), joined by `redis-cli --cluster create`, never one someone left
//! running.

use super::redis::free_port;
use super::redis_process::{RedisProcess, query, shared};
use cloakroom::config::{RedisUrl, StoreConfig};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running cluster; dropping it kills every node.
pub struct RedisCluster {
    nodes: Vec<RedisProcess>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits until the cluster is
    /// up (every slot served, every replica in sync).
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "cloakroom-cluster-{}-{}",
            std::process::id(),
            cloakroom::crypto::random_token(4)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let nodes: Vec<RedisProcess> = (0..masters * (1 + replicas))
            .map(|_| {
                let port = free_port();
                let bus = free_port();
                let (port_s, bus_s, conf) = (port.to_string(), bus.to_string(), format!("nodes-{port}.conf"));
                let args = [
                    "--port",
                    &port_s,
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus_s,
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "1000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ];
                RedisProcess::spawn(port, &args, &dir)
            })
            .collect();
        let cluster = RedisCluster { nodes, dir };
        for node in &cluster.nodes {
            cluster.wait(|| query::<String>(node.port, &redis::cmd("PING")).is_ok(), "node answers");
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        cluster.wait_healthy();
        cluster
    }

    fn wait(&self, mut ok: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis cluster: {what} never happened");
    }

    /// Waits until every running node says `cluster_state:ok` and every running replica's
    /// link to its master is up.
    pub fn wait_healthy(&self) {
        self.wait(
            || {
                self.running().all(|port| {
                    let info: String = query(port, redis::cmd("CLUSTER").arg("INFO")).unwrap_or_default();
                    let repl: String = query(port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
                    info.contains("cluster_state:ok")
                        && (repl.contains("role:master") || repl.contains("master_link_status:up"))
                })
            },
            "the cluster is healthy",
        );
    }

    fn running(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().filter(|n| n.running()).map(|n| n.port)
    }

    /// `redis://127.0.0.1:PORT` of every node (the seed list).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| format!("redis://127.0.0.1:{}", n.port)).collect()
    }

    /// A store configuration on this cluster under `namespace` (1 s time bound).
    pub fn store_config(&self, namespace: &str) -> StoreConfig {
        StoreConfig {
            redis_cluster_urls: self
                .urls()
                .into_iter()
                .map(|u| RedisUrl::try_from(u).expect("url"))
                .collect(),
            redis_namespace: namespace.to_string(),
            redis_timeout_ms: 1000,
            ..StoreConfig::default()
        }
    }

    /// Port of the master currently serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let any = self.running().next().expect("a running node");
        let slot: i64 = query(any, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).expect("KEYSLOT");
        self.running()
            .find(|&port| {
                let repl: String = query(port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
                let slots: Vec<redis::Value> =
                    query(port, redis::cmd("CLUSTER").arg("SLOTS")).unwrap_or_default();
                repl.contains("role:master") && slots.iter().any(|range| match range {
                    redis::Value::Array(parts) => match (&parts[0], &parts[1], &parts[2]) {
                        (redis::Value::Int(lo), redis::Value::Int(hi), redis::Value::Array(master)) => {
                            *lo <= slot
                                && slot <= *hi
                                && matches!(master.get(1), Some(redis::Value::Int(p)) if *p == port as i64)
                        }
                        _ => false,
                    },
                    _ => false,
                })
            })
            .expect("a master for the slot")
    }

    /// Ports of the running masters.
    pub fn masters(&self) -> Vec<u16> {
        self.running()
            .filter(|&port| {
                query::<String>(port, redis::cmd("INFO").arg("replication"))
                    .is_ok_and(|r| r.contains("role:master"))
            })
            .collect()
    }

    /// Waits until a replica of the master on `port` has acknowledged every write it took so far.
    pub fn wait_replicated(&self, port: u16) {
        super::redis::wait_replica_caught_up(port);
    }

    /// Port of a replica of the master on `master_port`.
    pub fn replica_of(&self, master_port: u16) -> u16 {
        self.running()
            .find(|&port| {
                let repl: String = query(port, redis::cmd("INFO").arg("replication")).unwrap_or_default();
                repl.contains("role:slave") && repl.contains(&format!("master_port:{master_port}"))
            })
            .expect("a replica of that master")
    }

    /// Kills the node on `port` (a crash).
    pub fn kill(&self, port: u16) {
        self.nodes.iter().find(|n| n.port == port).expect("node").kill();
    }

    /// Makes the replica on `port` take over its (dead) master's slots at once.
    pub fn take_over(&self, port: u16) {
        let _: String = query(port, redis::cmd("CLUSTER").arg("FAILOVER").arg("TAKEOVER")).expect("FAILOVER");
        self.wait(
            || {
                query::<String>(port, redis::cmd("INFO").arg("replication"))
                    .is_ok_and(|r| r.contains("role:master"))
            },
            "the replica became master",
        );
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test binary's shared 3-master cluster, started on first use from a thread that lives as
/// long as the process (so PR_SET_PDEATHSIG fires only when the process ends).
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<&'static RedisCluster> = OnceLock::new();
    shared(&CLUSTER, || RedisCluster::start(3, 0))
}
