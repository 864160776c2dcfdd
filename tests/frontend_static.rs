//! A team's single-page app behind cloakroom: the output of a real `vite build` (npm `vite`,
//! `tests/fixtures/vite-app`) served from `[[bff.frontends]] dir`, with its content types,
//! cache policy, conditional requests, precompressed files, the fallback to `index.html` for
//! the app's own routes, `login = "required"`, and the attacks a file server meets.

mod common;

use common::attack::assert_error;
use common::raw_http;
use common::vite::{self, tempdir::TempDir};
use common::{Browser, Page, Stack, StackConfig, USER};
use reqwest::Method;
use serde_json::json;
use std::path::Path;

/// The stack with the Vite build as its frontend at `/` (`login` as given) and `/api` as usual.
async fn stack_with_app(dist: &Path, login: &str) -> Stack {
    let cfg = StackConfig::new().set(
        "bff.frontends",
        json!([{ "dir": dist.to_str().expect("utf-8 path"), "login": login, "csp": "default-src 'self'; frame-ancestors 'none'" }]),
    );
    Stack::start_ready(cfg).await
}

/// `GET path` with these headers, from a browser without a session.
async fn get(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Page {
    get_as(&Browser::new(), stack, path, headers).await
}

async fn get_as(browser: &Browser, stack: &Stack, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = browser.request(Method::GET, &format!("{}{path}", stack.bff_url));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    browser.send(req).await
}

/// The built script's path, `/assets/index-<hash>.js`.
fn script_path(dist: &Path) -> String {
    let name = std::fs::read_dir(dist.join("assets"))
        .expect("assets/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.ends_with(".js"))
        .expect("a built script");
    format!("/assets/{name}")
}

const NAVIGATE: (&str, &str) = ("Sec-Fetch-Mode", "navigate");

#[tokio::test]
async fn the_built_app_is_served_with_its_content_types_and_cache_policy() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;

    let index = get(&stack, "/", &[NAVIGATE]).await;
    let script = get(&stack, &script_path(dist.path()), &[("Sec-Fetch-Dest", "script")]).await;
    let robots = get(&stack, "/robots.txt", &[]).await;

    assert_eq!(index.status, 200, "{}", index.body);
    assert!(index.header("content-type").unwrap_or_default().starts_with("text/html"));
    assert!(index.body.contains("Fixture app"), "{}", index.body);
    assert_eq!(index.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        index.header("content-security-policy").as_deref(),
        Some("default-src 'self'; frame-ancestors 'none'")
    );
    assert_eq!(index.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(script.status, 200, "{}", script.body);
    assert!(
        script.header("content-type").unwrap_or_default().contains("javascript"),
        "{:?}",
        script.header("content-type")
    );
    assert_eq!(script.header("cache-control").as_deref(), Some("public, max-age=31536000, immutable"));
    assert_eq!(robots.status, 200);
    assert!(robots.header("content-type").unwrap_or_default().starts_with("text/plain"));
    assert_eq!(robots.header("cache-control").as_deref(), Some("no-cache"));
}

#[tokio::test]
async fn a_revalidation_with_the_etag_gets_304_without_a_body() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;
    let first = get(&stack, "/", &[NAVIGATE]).await;
    let etag = first.header("etag").expect("an ETag");

    let again = get(&stack, "/", &[NAVIGATE, ("If-None-Match", &etag)]).await;

    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn a_navigation_to_the_apps_own_route_gets_index_html_but_a_missing_asset_is_a_404() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;

    let route = get(&stack, "/users/42?tab=notes", &[NAVIGATE]).await;
    let old_client = get(&stack, "/users/42", &[("Accept", "text/html,application/xhtml+xml")]).await;
    let asset = get(
        &stack,
        "/assets/index-missing.js",
        &[("Sec-Fetch-Dest", "script"), ("Sec-Fetch-Mode", "no-cors")],
    )
    .await;
    let fetch = get(&stack, "/users/42", &[("Sec-Fetch-Mode", "cors"), ("Accept", "application/json")]).await;

    for page in [&route, &old_client] {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Fixture app"), "{}", page.body);
        assert_eq!(page.header("cache-control").as_deref(), Some("no-cache"));
    }
    assert_error(&asset, 404, "not_found");
    assert_error(&fetch, 404, "not_found");
}

#[tokio::test]
async fn a_precompressed_file_is_served_in_the_encoding_the_browser_accepts() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;
    let script = script_path(dist.path());
    let on_disk =
        |suffix: &str| std::fs::read(dist.path().join(format!("{}{suffix}", &script[1..]))).unwrap();

    for (accept, encoding, suffix) in
        [("br, gzip", Some("br"), ".br"), ("gzip", Some("gzip"), ".gz"), ("identity", None, "")]
    {
        let raw = raw_http::send(
            &stack.bff_url,
            &raw_http::request(&stack.bff_url, "GET", &script, &[("Accept-Encoding", accept)], b""),
        )
        .await;

        assert_eq!(raw.status, 200, "{accept}");
        assert_eq!(raw.header("content-encoding"), encoding, "{accept}");
        assert!(raw.header("content-type").unwrap_or_default().contains("javascript"), "{accept}");
        assert_eq!(raw.header("vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(raw.body, on_disk(suffix), "{accept}: the file as stored");
    }
}

#[tokio::test]
async fn path_traversal_hidden_files_and_symbolic_links_out_of_the_directory_serve_nothing() {
    let dist = vite::build();
    let outside = TempDir::new("cloakroom-outside");
    std::fs::write(outside.path().join("secret.txt"), "outside the build").unwrap();
    std::fs::write(dist.path().join(".env"), "API_KEY=dotfile").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dist.path().join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dist.path().join("assets/out")).unwrap();
    let stack = stack_with_app(dist.path(), "optional").await;

    for target in [
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2fetc%2fpasswd",
        "/assets/%2e%2e/%2e%2e/Cargo.toml",
        "/.env",
        "/%2eenv",
        "/leak.txt",
        "/assets/out/secret.txt",
        "/assets%5c..%5c.env",
        "/index.html%00.js",
    ] {
        let raw =
            raw_http::send(&stack.bff_url, &raw_http::request(&stack.bff_url, "GET", target, &[], b"")).await;

        assert!(raw.status == 404 || raw.status == 400, "{target}: {}", raw.status);
        let text = raw.text();
        assert!(
            !text.contains("outside the build") && !text.contains("API_KEY") && !text.contains("[package]"),
            "{target}: {text}"
        );
    }
}

#[tokio::test]
async fn a_byte_range_is_honoured_once_and_a_range_past_the_end_is_416() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;
    let many: String = (0..200).map(|i| format!("{i}-{i}")).collect::<Vec<_>>().join(",");

    let one = get(&stack, "/robots.txt", &[("Range", "bytes=0-3")]).await;
    let several = get(&stack, "/robots.txt", &[("Range", &format!("bytes={many}"))]).await;
    let past = get(&stack, "/robots.txt", &[("Range", "bytes=99999-")]).await;

    assert_eq!(one.status, 206);
    assert_eq!(one.body, "User");
    assert!(several.status == 206 || several.status == 200, "{}", several.status);
    assert!(
        !several.header("content-type").unwrap_or_default().starts_with("multipart/"),
        "never a multipart answer"
    );
    assert!(several.body.len() <= "User-agent: *\nDisallow:\n".len());
    assert_eq!(past.status, 416);
}

#[tokio::test]
async fn a_frontend_takes_only_get_and_head_and_never_answers_for_bff_paths() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;
    let browser = Browser::new();

    let post =
        browser.send(browser.request(Method::POST, &format!("{}/users", stack.bff_url)).body("x")).await;
    let head = browser.send(browser.request(Method::HEAD, &format!("{}/", stack.bff_url))).await;
    let unknown_bff = get(&stack, "/bff/nothing-here", &[NAVIGATE]).await;

    assert_error(&post, 405, "method_not_allowed");
    assert_eq!(head.status, 200);
    assert_error(&unknown_bff, 404, "not_found");
}

#[tokio::test]
async fn with_login_required_a_navigation_without_a_session_goes_to_the_login_and_a_fetch_gets_401() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "required").await;

    let navigation = get(&stack, "/reports/7?range=week", &[NAVIGATE]).await;
    let fetch = get(
        &stack,
        &script_path(dist.path()),
        &[("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Dest", "script")],
    )
    .await;
    let signed_in = stack.login_as(USER).await;
    let page = get_as(&signed_in, &stack, "/reports/7", &[NAVIGATE]).await;

    assert_eq!(navigation.status, 302);
    let login = format!("{}/bff/login?returnTo=%2Freports%2F7%3Frange%3Dweek", stack.bff_url);
    assert_eq!(navigation.location(), Some(login), "back to this very page after the login");
    assert_error(&fetch, 401, "unauthenticated");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Fixture app"));
}

#[tokio::test]
async fn with_a_frontend_at_the_root_the_routes_and_the_bff_endpoints_keep_their_paths() {
    let dist = vite::build();
    let stack = stack_with_app(dist.path(), "optional").await;
    let browser = stack.login_as(USER).await;

    let user = browser
        .send(browser.request(Method::GET, &format!("{}/bff/user", stack.bff_url)).header("X-CSRF", "1"))
        .await;
    let notes = browser
        .send(browser.request(Method::GET, &format!("{}/api/notes", stack.bff_url)).header("X-CSRF", "1"))
        .await;
    let healthz = get(&stack, "/healthz", &[]).await;

    assert_eq!(user.status, 200, "{}", user.body);
    assert_eq!(notes.status, 200, "{}", notes.body);
    assert_eq!(healthz.body, "ok");
}
