//! Route matching and the proxied path (`cloakroom::bff::policy::PolicyTable` and
//! `cloakroom::bff::paths::UpstreamPath`), as the proxy uses them: a request target is matched
//! against the configured routes (longest prefix first, whole segments only) and the rest below
//! the prefix must be in normal form. What is forwarded is
//! the prefix's upstream plus the rest; it must stay under the upstream's base path, and as
//! given, decoded once (a correct upstream) or twice (an upstream that decodes again) it never
//! shows a `.`/`..` segment, `//` or a backslash (nor a control character once decoded).
//!
//! Input: an HTTP request target (origin-form or absolute-form), parsed as actix parses it.
#![no_main]

use actix_web::http::{Method, Uri};
use cloakroom::bff::paths::UpstreamPath;
use cloakroom::bff::policy::{PolicyTable, Target};
use cloakroom::config::{BffConfig, ConfigSource};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use std::sync::OnceLock;

/// Route prefixes, deliberately one a string prefix of another path (`/api` vs `/apiary`).
const ROUTES: [(&str, &str); 3] = [
    ("/api/v2", "http://rs2.example/v2"),
    ("/api", "http://rs.example/base"),
    ("/files", "http://files.example"),
];

/// The policy table of a BFF configured with [`ROUTES`], built once.
fn table() -> &'static PolicyTable {
    static TABLE: OnceLock<PolicyTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut toml = String::from(
            "[bff]\npublic_url = \"https://app.example\"\n[bff.oidc]\nissuer = \"https://id.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        );
        for (path, upstream) in ROUTES {
            toml.push_str(&format!("[[bff.routes]]\npath = \"{path}\"\nupstream = \"{upstream}\"\n"));
        }
        let config: BffConfig = ConfigSource::from_toml_str(&toml).section("bff").expect("a valid configuration");
        PolicyTable::new(&config, "https://app.example")
    })
}

fn normal(path: &str, decodings: usize) {
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//") && !path.contains('\\'), "{path:?}");
    // A control character after a second decoding is only text to a correct upstream.
    assert!(decodings > 1 || !path.chars().any(char::is_control), "{path:?}");
    for seg in path[1..].split('/') {
        // Servlet containers drop `;params` before resolving dot segments (`..;` is `..`); the
        // BFF promises that for the path as given and as decoded once.
        let name = if decodings <= 1 { seg.split(';').next().unwrap_or(seg) } else { seg };
        assert!(name != "." && name != "..", "dot segment in {path:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = Uri::try_from(data) else { return };
    let raw_path = uri.path();
    let Some(resolved) = table().resolve(&Method::GET, raw_path) else { return };
    let Target::Route(i) = resolved.target else { return };
    let (prefix, upstream) = ROUTES[i];
    // The longest matching prefix wins.
    let longer = ROUTES.iter().filter(|(p, _)| p.len() > prefix.len());
    for (p, _) in longer {
        let taken = raw_path.strip_prefix(p).is_some_and(|r| r.is_empty() || r.starts_with('/'));
        assert!(!taken, "{raw_path:?} matched {prefix} although {p} matches too");
    }
    let rest = &raw_path[resolved.below..];
    assert_eq!(format!("{prefix}{rest}"), raw_path);
    assert!(rest.is_empty() || rest.starts_with('/'), "{prefix} matched {raw_path:?} inside a segment");

    let Ok(path) = UpstreamPath::parse(rest) else { return };
    let path = path.as_str();
    // Neither a correct upstream nor one that decodes twice sees a traversal.
    let mut current = path.to_string();
    for decodings in 0..3 {
        normal(&current, decodings);
        let Ok(next) = percent_decode_str(&current).decode_utf8() else { break };
        if next == current {
            break;
        }
        current = next.into_owned();
    }
    let base = url::Url::parse(upstream).expect("upstream");
    let target = url::Url::parse(&format!("{upstream}{path}")).expect("forwarded URL parses");
    assert_eq!(target.origin(), base.origin());
    let base_path = base.path().trim_end_matches('/');
    assert!(target.path().starts_with(&format!("{base_path}/")), "{target} escapes {upstream}");
});
