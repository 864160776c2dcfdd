//! Which of the browser's request headers travel to an upstream: an allow-list. Upstreams
//! behind a BFF trust what it sends, so a header reaches them only when it is an end-to-end
//! header an API needs ([`DEFAULT_FORWARDED`]) or one a route names in
//! `bff.routes[].forward_request_headers`. Everything else stays behind — the credentials
//! (`Cookie`, `Authorization`), hop-by-hop headers, and the headers that proxies and frameworks
//! treat as trusted facts about the request (`X-Forwarded-*`, `X-Original-URL`,
//! `X-HTTP-Method-Override`, `True-Client-IP`…), including any not invented yet.
//!
//! A route's set is built once at start; the per-request check allocates nothing. Header names
//! arrive lower case from the HTTP parser; `X_Forwarded_For` stays `x_forwarded_for`, which no
//! allowed name spells (configured names may not contain `_`).

/// End-to-end request headers every route forwards, sorted (looked up by binary search).
/// `accept-encoding` is among them: the upstream's encoded body and its `Content-Encoding`
/// pass through unchanged, and the BFF never reads a body.
pub const DEFAULT_FORWARDED: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "pragma",
    "prefer",
    "range",
    "traceparent",
    "tracestate",
    "user-agent",
    "x-request-id",
];

/// Longest header name a route may add.
const MAX_NAME: usize = 64;

/// A configured header name that cannot be forwarded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderNameError {
    /// Not a lower-case name of letters, digits and dashes (at most 64).
    #[error("`{0}` is not a header name of 1-64 letters, digits and dashes")]
    Malformed(String),
    /// A credential, hop-by-hop, framing or forwarding header.
    #[error("`{0}` is never forwarded: the BFF sets it itself, or upstreams would trust it")]
    Forbidden(String),
}

/// True for the names no route may forward: credentials, the BFF's own CSRF header, framing
/// and hop-by-hop headers, and those that state facts about the client or the request line
/// which upstreams and frameworks trust (client address, original URL, method override).
pub fn never_forwarded(name: &str) -> bool {
    matches!(
        name,
        "cookie"
            | "authorization"
            | "x-csrf"
            | "host"
            | "content-length"
            | "expect"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
            | "via"
            | "forwarded"
            | "x-real-ip"
            | "x-client-ip"
            | "true-client-ip"
            | "client-ip"
            | "x-cluster-client-ip"
            | "cf-connecting-ip"
            | "fastly-client-ip"
            | "x-remote-ip"
            | "x-remote-addr"
            | "x-originating-ip"
            | "x-host"
            | "x-original-host"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-original-uri"
            | "x-original-method"
            | "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "x-middleware-subrequest"
    ) || ["x-forwarded-", "proxy-", "x-envoy-"].iter().any(|p| name.starts_with(p))
}

/// The request headers one route forwards: the defaults plus the route's own names.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaderPolicy {
    extra: Vec<Box<str>>,
}

impl RequestHeaderPolicy {
    /// The defaults alone.
    pub const DEFAULT: RequestHeaderPolicy = RequestHeaderPolicy { extra: Vec::new() };

    /// The defaults plus `names` (any case; stored lower case).
    pub fn with_names(names: &[String]) -> Result<Self, HeaderNameError> {
        let mut extra: Vec<Box<str>> = Vec::with_capacity(names.len());
        for name in names {
            let lower = name.to_ascii_lowercase();
            let well_formed = (1..=MAX_NAME).contains(&lower.len())
                && lower.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !well_formed {
                return Err(HeaderNameError::Malformed(name.clone()));
            }
            if never_forwarded(&lower) {
                return Err(HeaderNameError::Forbidden(name.clone()));
            }
            if !is_default(&lower) && !extra.iter().any(|e| **e == *lower) {
                extra.push(lower.into_boxed_str());
            }
        }
        Ok(Self { extra })
    }

    /// Whether a request header named `name` (lower case, as parsed) goes upstream.
    pub fn allows(&self, name: &str) -> bool {
        is_default(name) || self.extra.iter().any(|e| **e == *name)
    }
}

fn is_default(name: &str) -> bool {
    DEFAULT_FORWARDED.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_is_sorted_lower_case_and_forwardable() {
        assert!(DEFAULT_FORWARDED.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        for name in DEFAULT_FORWARDED {
            assert_eq!(name.to_ascii_lowercase(), *name);
            assert!(!never_forwarded(name), "{name}");
        }
    }

    #[test]
    fn only_allowed_end_to_end_headers_pass_by_default() {
        let policy = RequestHeaderPolicy::DEFAULT;
        for name in ["accept", "content-type", "if-none-match", "range", "traceparent", "x-request-id"] {
            assert!(policy.allows(name), "{name}");
        }
        for name in [
            "cookie",
            "authorization",
            "x-csrf",
            "host",
            "x-forwarded-for",
            "x_forwarded_for",
            "forwarded",
            "x-original-url",
            "x-rewrite-url",
            "x-http-method-override",
            "true-client-ip",
            "x-client-ip",
            "x-real-ip",
            "connection",
            "transfer-encoding",
            "proxy-authorization",
            "x-tenant",
            "x-anything-new",
        ] {
            assert!(!policy.allows(name), "{name}");
        }
    }

    #[test]
    fn a_route_adds_its_own_names_in_any_case() {
        let policy = RequestHeaderPolicy::with_names(&["X-Tenant".into(), "accept".into()]).unwrap();
        assert!(policy.allows("x-tenant"));
        assert!(policy.allows("accept"));
        assert!(!policy.allows("x_tenant"), "an underscore spelling is another name");
        assert!(!policy.allows("x-tenant-id"));
    }

    #[test]
    fn names_that_can_never_be_forwarded_or_are_malformed_are_refused() {
        for name in [
            "Cookie",
            "authorization",
            "Host",
            "X-Forwarded-Host",
            "forwarded",
            "Connection",
            "te",
            "Proxy-Foo",
            "x-original-url",
            "X-HTTP-Method-Override",
            "True-Client-IP",
            "x-client-ip",
            "x-csrf",
            "content-length",
        ] {
            assert_eq!(
                RequestHeaderPolicy::with_names(&[name.into()]).unwrap_err(),
                HeaderNameError::Forbidden(name.into())
            );
        }
        for name in ["", "x_tenant", "x tenant", "x-tenant:", "é", &"a".repeat(65)] {
            assert_eq!(
                RequestHeaderPolicy::with_names(&[name.into()]).unwrap_err(),
                HeaderNameError::Malformed(name.into())
            );
        }
    }
}
