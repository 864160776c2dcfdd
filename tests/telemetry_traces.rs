//! Traces (OpenTelemetry): the real `cloakroom bff` binary exports its spans over OTLP/HTTP
//! (protobuf) to a small OTLP/HTTP receiver in the harness (`common/otlp_receiver.rs`, decoding
//! with `opentelemetry-proto`; no Collector can be installed here), propagates W3C
//! `traceparent` to the upstream and to the provider, believes a browser's `traceparent` only
//! when told to, never records a secret, and exports nothing when no endpoint is configured.
//! The auth and resource servers run in this process (behind a provider tap that records
//! every secret), the BFF as a child process with its own subscriber.

mod common;

use common::apps::start_auth_and_resource_server;
use common::binary::{Program, wait_healthy};
use common::echo_upstream::EchoUpstream;
use common::otlp_receiver::{OtlpReceiver, ReceivedSpan, descends_from};
use common::provider_tap::ProviderTap;
use common::{Browser, Stack, StackConfig, USER};
use serde_json::json;
use std::time::Duration;

/// A browser's own trace context: trace id and parent id that only it knows.
const BROWSER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const BROWSER_SPAN: &str = "00f067aa0ba902b7";

/// The auth and resource servers behind a tap, an echo upstream, a receiver, and the BFF binary.
struct Traced {
    stack: Stack,
    tap: ProviderTap,
    echo: EchoUpstream,
    receiver: OtlpReceiver,
    bff: Program,
}

/// The BFF's configuration file: the stack's `[bff]` section, routes `/api` and `/echo`, and
/// `telemetry` (TOML lines of `[bff.telemetry]`, or none).
fn bff_toml(doc: &serde_json::Value, echo: &str, skew: u64, telemetry: Option<&str>) -> String {
    let mut config =
        common::binary::bff_config_file(doc, &format!("refresh_skew_secs = {skew}"), &[("/echo", echo)]);
    if let Some(lines) = telemetry {
        config.push_str(&format!("\n[bff.telemetry]\n{lines}\n"));
    }
    config
}

impl Traced {
    /// Starts everything; `telemetry(receiver_url)` gives the `[bff.telemetry]` lines.
    async fn start(access_ttl: u64, telemetry: impl Fn(&str) -> Option<String>) -> Traced {
        let echo = EchoUpstream::start();
        let receiver = OtlpReceiver::start();
        let mut cfg = StackConfig::new().set("auth_server.access_token_ttl_secs", json!(access_ttl));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let direct = cfg.doc["auth_server"]["issuer"].as_str().expect("issuer").to_string();
        let tap = ProviderTap::start(listener, direct);
        for key in ["auth_server.issuer", "bff.oidc.issuer", "resource_server.issuer"] {
            cfg = cfg.set(key, json!(tap.url));
        }
        let doc = cfg.doc["bff"].clone();
        let stack = start_auth_and_resource_server(cfg).await;
        let config =
            bff_toml(&doc, &echo.url, (access_ttl / 2).clamp(1, 30), telemetry(&receiver.url).as_deref());
        // A short batch delay: spans reach the receiver within a tenth of a second.
        let bff = Program::start(&["bff"], &[("OTEL_BSP_SCHEDULE_DELAY", "100")], Some(&config));
        wait_healthy(&stack.bff("/readyz")).await;
        Traced { stack, tap, echo, receiver, bff }
    }

    /// Traces on, to the receiver; `trust` as `trust_incoming_traceparent`.
    async fn exporting(access_ttl: u64, trust: bool) -> Traced {
        Self::start(access_ttl, |url| {
            Some(format!("otlp_endpoint = \"{url}\"\ntrust_incoming_traceparent = {trust}"))
        })
        .await
    }

    /// `GET /echo/<path>` with `X-CSRF: 1` and, when given, a `traceparent`.
    async fn echo_call(&self, browser: &Browser, path: &str, traceparent: Option<&str>) {
        let mut req = browser.request(reqwest::Method::GET, &self.stack.bff(path)).header("X-CSRF", "1");
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp).header("tracestate", "browser=1");
        }
        let page = browser.send(req).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    /// The request span of the call to `target` (path), once it and its upstream call arrived.
    async fn request_span(&self, target: &str) -> (ReceivedSpan, Vec<ReceivedSpan>) {
        let is_root = |s: &ReceivedSpan| s.name == "HTTP request" && s.attr("http.target") == Some(target);
        let spans = self
            .receiver
            .wait_for(&format!("the request span of {target} and its upstream call"), |spans| {
                spans.iter().filter(|s| is_root(s)).any(|root| {
                    spans.iter().any(|s| s.name == "upstream call" && s.parent_span_id == root.span_id)
                })
            })
            .await;
        let root = spans.iter().find(|s| is_root(s)).expect("root").clone();
        (root, spans)
    }

    /// The `tracestate` values the echo upstream received for `target`.
    fn upstream_tracestate(&self, target: &str) -> Vec<String> {
        self.echo
            .seen()
            .into_iter()
            .find(|s| s.target == target)
            .map(|s| s.all("tracestate"))
            .unwrap_or_default()
    }

    /// The `traceparent` the echo upstream received for `target`, split into its four parts.
    fn upstream_traceparent(&self, target: &str) -> Option<Vec<String>> {
        let seen =
            self.echo.seen().into_iter().find(|s| s.target == target).expect("the call reached the upstream");
        let values = seen.all("traceparent");
        assert!(values.len() <= 1, "{values:?}");
        values.first().map(|v| v.split('-').map(str::to_string).collect())
    }
}

#[tokio::test]
async fn a_proxied_call_reaches_the_otlp_http_receiver_as_one_trace_and_its_traceparent_reaches_the_upstream()
{
    let t = Traced::exporting(300, false).await;
    let browser = t.stack.login_as(USER).await;
    t.echo_call(&browser, "/echo/notes/7", None).await;

    let (root, spans) = t.request_span("/echo/notes/7").await;
    assert_eq!(root.service, "cloakroom-bff");
    assert_eq!(root.parent_span_id, "", "a request without trusted context starts a trace");
    assert_eq!(root.attr("http.route"), Some("/echo"), "{:?}", root.attributes);
    assert_eq!(root.attr("outcome"), Some("ok"), "{:?}", root.attributes);
    assert_eq!(root.attr("http.status_code"), Some("200"), "{:?}", root.attributes);
    let upstream =
        spans.iter().find(|s| s.name == "upstream call" && s.parent_span_id == root.span_id).unwrap();
    assert_eq!(upstream.trace_id, root.trace_id);
    assert_eq!(upstream.attr("http.response.status_code"), Some("200"));
    let session_lookups: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "near cache lookup" || s.name == "store")
        .filter(|s| descends_from(&spans, s, &root))
        .collect();
    assert!(!session_lookups.is_empty(), "the session and token lookups are children of the request");
    assert!(session_lookups.iter().all(|s| s.trace_id == root.trace_id));

    let tp = t.upstream_traceparent("/notes/7").expect("the upstream got a traceparent");
    assert_eq!(tp[0], "00");
    assert_eq!(tp[1], root.trace_id, "the exported trace's id");
    assert_eq!(tp[2], upstream.span_id, "the upstream call's span is the upstream's parent");
}

#[tokio::test]
async fn a_refresh_exports_refresh_and_provider_call_spans_and_the_provider_gets_the_traceparent() {
    let t = Traced::exporting(2, false).await;
    let browser = t.stack.login_as(USER).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    t.echo_call(&browser, "/echo/after-expiry", None).await;

    let (root, spans) = t.request_span("/echo/after-expiry").await;
    let refresh = spans
        .iter()
        .find(|s| s.name == "token refresh" && descends_from(&spans, s, &root))
        .expect("a token refresh span under the request");
    assert_eq!(refresh.attr("outcome"), Some("ok"), "{:?}", refresh.attributes);
    let provider = spans
        .iter()
        .find(|s| s.name == "provider token request" && descends_from(&spans, s, refresh))
        .expect("the provider call under the refresh");
    assert_eq!(provider.attr("oauth.grant_type"), Some("refresh_token"));
    assert_eq!(provider.attr("http.response.status_code"), Some("200"));

    let to_token: Vec<String> =
        t.tap.traceparents().into_iter().filter(|(p, _)| p == "/token").map(|(_, v)| v).collect();
    let expected = format!("00-{}-{}-01", provider.trace_id, provider.span_id);
    assert!(to_token.contains(&expected), "{expected} not among {to_token:?}");
}

#[tokio::test]
async fn an_untrusted_incoming_traceparent_is_not_the_parent_and_is_never_forwarded() {
    let t = Traced::exporting(300, false).await;
    let browser = t.stack.login_as(USER).await;
    let incoming = format!("00-{BROWSER_TRACE}-{BROWSER_SPAN}-01");
    t.echo_call(&browser, "/echo/untrusted", Some(&incoming)).await;

    let (root, _) = t.request_span("/echo/untrusted").await;
    assert_ne!(root.trace_id, BROWSER_TRACE);
    assert_eq!(root.parent_span_id, "");
    let tp = t.upstream_traceparent("/untrusted").expect("the BFF's own traceparent");
    assert_eq!(tp[1], root.trace_id, "the BFF's trace, not the browser's");
    assert_ne!(tp[2], BROWSER_SPAN);
    assert_eq!(t.upstream_tracestate("/untrusted"), Vec::<String>::new(), "nor the browser's tracestate");
}

#[tokio::test]
async fn a_trusted_incoming_traceparent_is_the_parent_and_the_upstream_gets_the_bffs_child_context() {
    let t = Traced::exporting(300, true).await;
    let browser = t.stack.login_as(USER).await;
    let incoming = format!("00-{BROWSER_TRACE}-{BROWSER_SPAN}-01");
    t.echo_call(&browser, "/echo/trusted", Some(&incoming)).await;

    let (root, _) = t.request_span("/echo/trusted").await;
    assert_eq!(root.trace_id, BROWSER_TRACE);
    assert_eq!(root.parent_span_id, BROWSER_SPAN);
    let tp = t.upstream_traceparent("/trusted").expect("a traceparent");
    assert_eq!(tp[1], BROWSER_TRACE, "the same trace");
    assert_ne!(tp[2], BROWSER_SPAN, "a span of the BFF's, not the browser's header passed on");
    assert_eq!(
        t.upstream_tracestate("/trusted"),
        vec!["browser=1".to_string()],
        "W3C: the trace's state goes along"
    );
}

#[tokio::test]
async fn no_token_cookie_or_session_id_in_any_span_the_otlp_http_receiver_got() {
    let t = Traced::exporting(2, true).await;
    let browser = t.stack.login_as(USER).await;
    t.echo_call(&browser, "/echo/first", None).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    t.echo_call(&browser, "/echo/refreshed", None).await;
    let page = t.stack.api(&browser, reqwest::Method::GET, "/api/notes", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cookie = browser.session_cookie().expect("session cookie");
    let logout = browser
        .send(browser.request(reqwest::Method::POST, &t.stack.bff("/bff/logout")).header("X-CSRF", "1"))
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    let mut bff = t.bff;
    bff.signal(libc::SIGTERM);
    bff.wait_for_exit(Duration::from_secs(15)).expect("the BFF exits, flushing its spans");

    let mut secrets: Vec<(String, String)> = t.tap.secrets();
    assert!(
        secrets.iter().any(|(n, _)| n == "access_token") && secrets.iter().any(|(n, _)| n == "refresh_token")
    );
    secrets.push(("cookie".into(), cookie.clone()));
    // The cookie's value is the session id (with its signature); its parts are secrets too.
    for part in cookie.split(['.', '=', '/', '+']).filter(|p| p.len() >= 16) {
        secrets.push(("session id".into(), part.to_string()));
    }
    for seen in t.echo.seen() {
        for bearer in seen.all("authorization") {
            secrets.push(("bearer".into(), bearer.trim_start_matches("Bearer ").to_string()));
        }
    }
    let spans = t.receiver.spans();
    assert!(spans.iter().any(|s| s.name == "token refresh"), "the walk included a refresh");
    assert!(spans.iter().any(|s| s.name == "provider revocation"), "and a revocation");
    for span in &spans {
        let text = span.all_text();
        for (name, value) in &secrets {
            assert!(!text.contains(value.as_str()), "the {name} is in span {}: {text}", span.name);
        }
        assert!(!text.to_ascii_lowercase().contains("cookie"), "a cookie in span {}: {text}", span.name);
    }
}

#[tokio::test]
async fn with_telemetry_off_the_otlp_http_receiver_gets_nothing_and_no_traceparent_goes_upstream() {
    let t = Traced::start(300, |_| None).await;
    let browser = t.stack.login_as(USER).await;
    let incoming = format!("00-{BROWSER_TRACE}-{BROWSER_SPAN}-01");
    t.echo_call(&browser, "/echo/off", None).await;
    t.echo_call(&browser, "/echo/off-with-context", Some(&incoming)).await;

    assert_eq!(t.upstream_traceparent("/off"), None);
    assert_eq!(t.upstream_traceparent("/off-with-context"), None, "the browser's is never forwarded");
    assert_eq!(t.upstream_tracestate("/off-with-context"), Vec::<String>::new());
    assert!(t.tap.traceparents().is_empty(), "{:?}", t.tap.traceparents());
    let mut bff = t.bff;
    bff.signal(libc::SIGTERM);
    bff.wait_for_exit(Duration::from_secs(15)).expect("exits");
    assert_eq!(t.receiver.requests(), 0);
}
