//! The binary's start-up with bad configuration (one line naming the key, exit code 2, never a
//! panic), and environment overrides read through `ConfigSource`.
//!
//! The environment is process-global: every test here holds `ENV` so that the in-process
//! tests that set variables never race each other or a child being spawned.

use cloakroom::config::{BffConfig, ConfigSource};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ENV: Mutex<()> = Mutex::new(());

fn env_lock() -> MutexGuard<'static, ()> {
    ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A BFF section that is complete except where a test breaks it.
const VALID_BFF: &str = r#"
[bff]
listen = "127.0.0.1:0"
session_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

[bff.oidc]
issuer = "http://127.0.0.1:9"
client_id = "cloakroom-bff"
client_secret = "a-secret-of-some-length"
"#;

/// A temporary config file, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(toml: &str) -> Self {
        let path = std::env::temp_dir()
            .join(format!("cloakroom-cli-test-{}.toml", cloakroom::crypto::random_token(8)));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(toml.as_bytes())).expect("write config");
        Self(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a finished run of the binary left behind.
struct Run {
    code: Option<i32>,
    stderr: String,
    stdout: String,
}

/// Runs `cloakroom ARGS` with a clean environment plus `env`, and waits (at most 20 s) for it
/// to stop.
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloakroom"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cloakroom");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "cloakroom {args:?} did not stop on a bad configuration; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Asserts the contract for a refused start: exit code 2, one stderr line naming `key`, no
/// panic.
fn assert_refused_naming(run: &Run, key: &str) {
    let all = format!("{}{}", run.stderr, run.stdout);
    assert!(!all.contains("panicked") && !all.contains("RUST_BACKTRACE"), "start-up panicked:\n{all}");
    assert_eq!(run.code, Some(2), "exit code; stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{}", run.stderr);
    assert!(lines[0].contains(key), "the line names `{key}`: {}", lines[0]);
}

#[test]
fn a_bff_issuer_that_is_not_a_url_is_refused_naming_bff_oidc_issuer() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace("http://127.0.0.1:9", "not a url"));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.oidc.issuer");
}

#[test]
fn a_bff_without_a_session_key_is_refused_naming_bff_session_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace("session_key =", "# session_key ="));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.session_key");
}

#[test]
fn a_session_key_of_the_wrong_length_is_refused_naming_bff_session_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(VALID_BFF);

    let run = run(
        &["--config", cfg.path().to_str().unwrap(), "bff"],
        &[("CLOAKROOM_BFF__SESSION_KEY", "c2hvcnQ=")],
    );

    assert_refused_naming(&run, "bff.session_key");
}

#[test]
fn a_bff_without_any_oidc_section_is_refused_naming_bff_oidc() {
    let _env = env_lock();

    let run = run(&["bff"], &[]);

    assert_refused_naming(&run, "bff.oidc");
}

#[test]
fn a_missing_client_id_is_refused_naming_it() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace("client_id =", "# client_id ="));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.oidc.client_id");
}

#[test]
fn a_number_given_as_text_is_refused_naming_the_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&format!("{VALID_BFF}\n[bff.session]\nidle_timeout_secs = \"half an hour\"\n"));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.session.idle_timeout_secs");
}

#[test]
fn a_reserved_route_path_is_refused_naming_the_routes() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&format!(
        "{VALID_BFF}\n[[bff.routes]]\npath = \"/bff\"\nupstream = \"http://127.0.0.1:9\"\n"
    ));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes");
}

#[test]
fn a_route_header_that_can_never_be_forwarded_is_refused_naming_the_routes_key() {
    let _env = env_lock();
    for name in ["X-Forwarded-For", "cookie", "X-Original-URL", "x_tenant"] {
        let cfg = ConfigFile::new(&format!(
            "{VALID_BFF}\n[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nforward_request_headers = [\"x-tenant\", \"{name}\"]\n"
        ));

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, "bff.routes.0.forward_request_headers");
    }
}

#[test]
fn a_bad_auth_server_listen_address_is_refused_naming_auth_server_listen() {
    let _env = env_lock();
    let cfg = ConfigFile::new("[auth_server]\nlisten = \"localhost-ish:eighty\"\n");

    let run = run(&["--config", cfg.path().to_str().unwrap(), "auth-server"], &[]);

    assert_refused_naming(&run, "auth_server.listen");
}

#[test]
fn a_login_attempt_lifetime_outside_30_to_3600_seconds_is_refused_naming_it() {
    let _env = env_lock();
    for secs in ["5", "86400"] {
        let cfg = ConfigFile::new(
            &VALID_BFF.replace("[bff]\n", &format!("[bff]\nlogin_attempt_ttl_secs = {secs}\n")),
        );

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, "bff.login_attempt_ttl_secs");
    }
}

#[test]
fn a_bad_resource_server_issuer_from_the_environment_is_refused_naming_it() {
    let _env = env_lock();

    let run = run(&["resource-server"], &[("CLOAKROOM_RESOURCE_SERVER__ISSUER", "ftp://example.com")]);

    assert_refused_naming(&run, "resource_server.issuer");
}

#[test]
fn a_bad_store_timeout_is_refused_naming_the_flattened_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(VALID_BFF);

    let run = run(
        &["--config", cfg.path().to_str().unwrap(), "bff"],
        &[("CLOAKROOM_BFF__REDIS_TIMEOUT_MS", "soon")],
    );

    assert_refused_naming(&run, "bff.redis_timeout_ms");
}

#[test]
fn a_bad_redis_url_is_refused_naming_the_key() {
    let _env = env_lock();

    let run = run(&["auth-server"], &[("CLOAKROOM_AUTH_SERVER__REDIS_URL", "http://127.0.0.1:6379")]);

    assert_refused_naming(&run, "auth_server.redis_url");
}

#[test]
fn a_config_file_that_does_not_exist_is_refused_naming_it() {
    let _env = env_lock();
    let missing = std::env::temp_dir().join("cloakroom-no-such-config-file.toml");

    let run = run(&["--config", missing.to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "--config");
    assert!(run.stderr.contains("cloakroom-no-such-config-file.toml"), "names the file: {}", run.stderr);
}

#[test]
fn a_config_path_that_is_a_directory_is_refused_naming_it() {
    let _env = env_lock();
    let dir = std::env::temp_dir();

    let run = run(&["--config", dir.to_str().unwrap(), "auth-server"], &[]);

    assert_refused_naming(&run, "--config");
}

#[test]
fn a_config_file_that_is_not_toml_is_refused_in_one_line_naming_the_file() {
    let _env = env_lock();
    let cfg = ConfigFile::new("[bff\nthis is = = not toml\n");

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "--config");
    assert!(run.stderr.contains("not valid TOML"), "{}", run.stderr);
}

#[test]
fn an_environment_override_with_a_bad_issuer_is_refused_naming_bff_oidc_issuer() {
    let _env = env_lock();
    let cfg = ConfigFile::new(VALID_BFF);

    let run = run(
        &["--config", cfg.path().to_str().unwrap(), "bff"],
        &[("CLOAKROOM_BFF__OIDC__ISSUER", "notaurl")],
    );

    assert_refused_naming(&run, "bff.oidc.issuer");
}

#[test]
fn a_listen_address_already_in_use_is_refused_in_one_line() {
    let _env = env_lock();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    let run = run(&["resource-server"], &[("CLOAKROOM_RESOURCE_SERVER__LISTEN", &addr)]);

    assert_refused_naming(&run, &addr);
}

// ----- environment overrides, in process -----

/// Sets `vars` for the duration of `f` (the caller holds `ENV`), then removes them.
fn with_env<R>(vars: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    for (k, v) in vars {
        // SAFETY: every test of this binary holds `ENV`, so no other thread reads or writes the
        // environment meanwhile.
        unsafe { std::env::set_var(k, v) };
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    for (k, _) in vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }
    result.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

const OIDC_ENV: [(&str, &str); 3] = [
    ("CLOAKROOM_BFF__OIDC__ISSUER", "http://localhost:8081"),
    ("CLOAKROOM_BFF__OIDC__CLIENT_ID", "cloakroom-bff"),
    ("CLOAKROOM_BFF__OIDC__CLIENT_SECRET", "from-the-environment"),
];

#[test]
fn a_list_can_be_given_in_the_environment_as_a_toml_array() {
    let _env = env_lock();
    let mut vars = OIDC_ENV.to_vec();
    vars.push(("CLOAKROOM_BFF__OIDC__SCOPES", r#"["openid","notes"]"#));

    let bff: BffConfig = with_env(&vars, || ConfigSource::load(None).unwrap().section("bff").unwrap());

    assert_eq!(bff.oidc.scopes, ["openid", "notes"]);
    assert_eq!(
        bff.oidc.client_secret.as_ref().map(|s| s.expose()).unwrap_or_default(),
        "from-the-environment"
    );
}

#[test]
fn routes_can_be_given_in_the_environment_as_an_array_of_inline_tables() {
    let _env = env_lock();
    let mut vars = OIDC_ENV.to_vec();
    vars.push(("CLOAKROOM_BFF__ROUTES", r#"[{path="/api", upstream="http://notes.internal:8082"}]"#));

    let bff: BffConfig = with_env(&vars, || ConfigSource::load(None).unwrap().section("bff").unwrap());

    assert_eq!(bff.routes.len(), 1);
    assert_eq!(bff.routes[0].path.as_str(), "/api");
    assert_eq!(bff.routes[0].upstream.as_str(), "http://notes.internal:8082");
}

#[test]
fn the_environment_overrides_the_file_key_by_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&format!("{VALID_BFF}\n[bff.session]\nidle_timeout_secs = 60\n"));
    let vars = [
        ("CLOAKROOM_BFF__OIDC__ISSUER", "https://login.example.com"),
        ("CLOAKROOM_BFF__SESSION__ABSOLUTE_TIMEOUT_SECS", "3600"),
    ];

    let bff: BffConfig =
        with_env(&vars, || ConfigSource::load(Some(cfg.path())).unwrap().section("bff").unwrap());

    assert_eq!(bff.oidc.issuer.as_str(), "https://login.example.com", "env wins over the file");
    assert_eq!(bff.oidc.client_id, "cloakroom-bff", "untouched keys keep the file's value");
    assert_eq!(bff.session.idle_timeout_secs, 60, "a sibling in the file survives");
    assert_eq!(bff.session.absolute_timeout_secs, 3600);
}

#[test]
fn defaults_apply_to_every_key_that_is_not_set() {
    let _env = env_lock();

    let bff: BffConfig = with_env(&OIDC_ENV, || ConfigSource::load(None).unwrap().section("bff").unwrap());

    assert_eq!(bff.listen.0.to_string(), "127.0.0.1:8080");
    assert_eq!(bff.public_url.as_str(), "http://localhost:8080");
    assert_eq!(bff.oidc.scopes, ["openid", "profile", "offline_access", "notes"]);
    assert_eq!(bff.refresh_skew_secs, 30);
    assert_eq!(bff.login_attempt_ttl_secs, 300);
    assert_eq!((bff.login_rate_limit_per_ip, bff.login_rate_limit_window_secs), (30, 60));
    assert_eq!(bff.session.idle_timeout_secs, 1800);
    assert_eq!(bff.session.absolute_timeout_secs, 43200);
    assert!(bff.store.redis_url.is_none(), "no redis unless configured");
    assert_eq!(bff.store.redis_namespace, "cloakroom");
    assert!(bff.session_key.is_none());
    assert!(bff.routes.is_empty());
}

#[test]
fn a_bad_value_in_the_environment_is_reported_with_its_dotted_key() {
    let _env = env_lock();
    let mut vars = OIDC_ENV.to_vec();
    vars.push(("CLOAKROOM_BFF__OIDC__ISSUER", "notaurl"));

    let err = with_env(&vars, || ConfigSource::load(None).unwrap().section::<BffConfig>("bff").unwrap_err());

    assert_eq!(err.key, "bff.oidc.issuer", "{err}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_redis_url_and_sentinels_together_are_refused_naming_the_second_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace(
        "listen = ",
        "redis_url = \"redis://127.0.0.1:9/0\"\nredis_sentinel_urls = [\"redis://127.0.0.1:9\"]\n\
         redis_sentinel_master = \"mymaster\"\nlisten = ",
    ));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.redis_sentinel_urls");
    assert!(run.stderr.contains("redis_url"), "names the other key: {}", run.stderr);
}

#[test]
fn a_cluster_and_sentinels_together_are_refused_naming_the_second_key() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace(
        "listen = ",
        "redis_cluster_urls = [\"redis://127.0.0.1:9\"]\nredis_sentinel_urls = [\"redis://127.0.0.1:9\"]\n\
         redis_sentinel_master = \"mymaster\"\nlisten = ",
    ));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.redis_sentinel_urls");
    assert!(run.stderr.contains("redis_cluster_urls"), "names the other key: {}", run.stderr);
}

#[test]
fn a_redis_url_and_a_cluster_together_are_refused_naming_the_second_key() {
    let _env = env_lock();

    let run = run(
        &["auth-server"],
        &[
            ("CLOAKROOM_AUTH_SERVER__REDIS_URL", "redis://127.0.0.1:9/0"),
            ("CLOAKROOM_AUTH_SERVER__REDIS_CLUSTER_URLS", "[\"redis://127.0.0.1:9\"]"),
        ],
    );

    assert_refused_naming(&run, "auth_server.redis_cluster_urls");
}

#[test]
fn sentinels_without_a_master_name_are_refused_naming_redis_sentinel_master() {
    let _env = env_lock();
    let cfg = ConfigFile::new(
        &VALID_BFF.replace("listen = ", "redis_sentinel_urls = [\"redis://127.0.0.1:9\"]\nlisten = "),
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.redis_sentinel_master");
}

#[test]
fn a_sentinel_master_name_without_sentinels_is_refused_naming_it() {
    let _env = env_lock();

    let run = run(&["resource-server"], &[("CLOAKROOM_RESOURCE_SERVER__REDIS_SENTINEL_MASTER", "mymaster")]);

    assert_refused_naming(&run, "resource_server.redis_sentinel_master");
}

#[test]
fn sentinels_with_a_master_name_are_read_from_the_environment() {
    let _env = env_lock();
    let mut vars = OIDC_ENV.to_vec();
    vars.push((
        "CLOAKROOM_BFF__REDIS_SENTINEL_URLS",
        r#"["redis://127.0.0.1:26379","redis://127.0.0.1:26380"]"#,
    ));
    vars.push(("CLOAKROOM_BFF__REDIS_SENTINEL_MASTER", "mymaster"));

    let bff: BffConfig = with_env(&vars, || ConfigSource::load(None).unwrap().section("bff").unwrap());

    assert_eq!(bff.store.redis_sentinel_urls.len(), 2);
    assert_eq!(bff.store.redis_sentinel_master.as_deref(), Some("mymaster"));
    assert!(bff.store.redis_url.is_none() && bff.store.redis_cluster_urls.is_empty());
}

fn with_routes(routes: &str) -> ConfigFile {
    ConfigFile::new(&format!("{VALID_BFF}\n{routes}"))
}

#[test]
fn two_routes_with_the_same_path_are_refused_naming_the_routes() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\n\
         [[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:10\"\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes");
    assert!(run.stderr.contains("configured twice"), "{}", run.stderr);
}

#[test]
fn a_route_session_rule_that_does_not_exist_is_refused_naming_the_routes() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nsession = \"maybe\"\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes");
}

#[test]
fn a_route_that_would_take_trace_or_a_lower_case_method_is_refused_naming_the_routes() {
    let _env = env_lock();
    for methods in ["[\"GET\", \"TRACE\"]", "[\"get\"]", "[\"\"]"] {
        let cfg = with_routes(&format!(
            "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nmethods = {methods}\n"
        ));

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, "bff.routes");
    }
}

#[test]
fn a_misspelled_route_key_is_refused_naming_the_routes() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nsesion = \"none\"\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes");
    assert!(run.stderr.contains("sesion"), "the line names the unknown key: {}", run.stderr);
}

#[test]
fn a_route_over_a_probe_path_is_refused_naming_the_routes() {
    let _env = env_lock();
    for path in ["/healthz", "/metrics/x", "/readyz"] {
        let cfg =
            with_routes(&format!("[[bff.routes]]\npath = \"{path}\"\nupstream = \"http://127.0.0.1:9\"\n"));

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, "bff.routes");
    }
}

#[test]
fn a_frontend_dir_without_an_index_html_is_refused_naming_it() {
    let _env = env_lock();
    let empty =
        std::env::temp_dir().join(format!("cloakroom-empty-dist-{}", cloakroom::crypto::random_token(8)));
    std::fs::create_dir_all(&empty).unwrap();
    let cfg = ConfigFile::new(&format!("{VALID_BFF}\n[[bff.frontends]]\ndir = \"{}\"\n", empty.display()));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    let _ = std::fs::remove_dir_all(&empty);
    assert_refused_naming(&run, "bff.frontends.0.dir");
}

#[test]
fn two_frontends_with_the_same_path_are_refused_naming_the_frontends() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&format!(
        "{VALID_BFF}\n[[bff.frontends]]\ndir = \"/tmp\"\n[[bff.frontends]]\npath = \"/\"\ndir = \"/tmp\"\n"
    ));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.frontends");
    assert!(run.stderr.contains("configured twice"), "{}", run.stderr);
}

#[test]
fn a_route_websocket_setting_that_is_not_a_boolean_is_refused_naming_the_key() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/live\"\nupstream = \"http://127.0.0.1:9\"\nwebsocket = \"yes\"\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes");
    assert!(run.stderr.contains("websocket"), "{}", run.stderr);
}

#[test]
fn a_websocket_limit_given_as_text_is_refused_naming_the_key() {
    let _env = env_lock();
    for key in ["websocket_max_message_bytes", "websocket_idle_timeout_secs"] {
        let cfg = ConfigFile::new(&VALID_BFF.replace("[bff]\n", &format!("[bff]\n{key} = \"plenty\"\n")));

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, &format!("bff.{key}"));
    }
}

#[test]
fn a_route_resource_that_is_not_an_absolute_uri_or_has_a_fragment_is_refused_naming_the_routes() {
    let _env = env_lock();
    for resource in ["notes", "https://api.example/#part", ""] {
        let cfg = with_routes(&format!(
            "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nresource = \"{resource}\"\n"
        ));

        let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

        assert_refused_naming(&run, "bff.routes");
        assert!(run.stderr.contains("resource") || run.stderr.contains("URI"), "{}", run.stderr);
    }
}

#[test]
fn route_scopes_the_login_does_not_ask_for_are_refused_naming_the_routes_scopes() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nscopes = [\"admin\"]\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes.0.scopes");
    assert!(run.stderr.contains("`admin`"), "{}", run.stderr);
}

#[test]
fn a_user_token_audience_on_a_route_without_a_session_is_refused_naming_its_resource() {
    let _env = env_lock();
    let cfg = with_routes(
        "[[bff.routes]]\npath = \"/pub\"\nupstream = \"http://127.0.0.1:9\"\nsession = \"none\"\nresource = \"https://api.example\"\n",
    );

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.routes.0.resource");
}

#[test]
fn waiting_for_replicas_without_a_redis_store_is_refused_naming_redis_wait_replicas() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace("listen = ", "redis_wait_replicas = 1\nlisten = "));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.redis_wait_replicas");
}

#[test]
fn a_replica_wait_as_long_as_the_store_timeout_is_refused_naming_redis_wait_timeout_ms() {
    let _env = env_lock();
    let cfg = ConfigFile::new(&VALID_BFF.replace(
        "listen = ",
        "redis_url = \"redis://127.0.0.1:9\"\nredis_wait_replicas = 1\nredis_timeout_ms = 200\n\
         redis_wait_timeout_ms = 200\nlisten = ",
    ));

    let run = run(&["--config", cfg.path().to_str().unwrap(), "bff"], &[]);

    assert_refused_naming(&run, "bff.redis_wait_timeout_ms");
}
