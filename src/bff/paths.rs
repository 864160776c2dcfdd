//! Untrusted paths become typed values here: the login's `returnTo` and the path of a proxied
//! request.

use percent_encoding::percent_decode_str;

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Not a local path (scheme, `//`, backslash, control character…).
    #[error("not a local path")]
    NotLocal,
    /// A dot segment, an encoded separator or an empty segment.
    #[error("path is not in normal form")]
    NotNormal,
}

fn has_forbidden_char(s: &str) -> bool {
    s.chars().any(|c| c == '\\' || c.is_control())
}

/// A `returnTo` target: a local absolute path (`/…`), checked as given and after one
/// percent-decoding. Non-ASCII characters are kept percent-encoded, so the `Location` it ends
/// up in is a valid URI reference of visible ASCII (raw UTF-8 there is read differently by
/// different clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Parses a candidate; `None` gives `/`.
    pub fn parse(raw: Option<&str>) -> Result<Self, PathError> {
        let Some(raw) = raw else { return Ok(Self("/".into())) };
        let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| PathError::NotLocal)?;
        for candidate in [raw, decoded.as_ref()] {
            let local = candidate.starts_with('/')
                && !candidate.starts_with("//")
                && !has_forbidden_char(candidate)
                && candidate.len() <= 2048;
            if !local {
                return Err(PathError::NotLocal);
            }
        }
        Ok(Self(percent_encoding::utf8_percent_encode(raw, percent_encoding::CONTROLS).to_string()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The part of a request path after a route prefix, checked for traversal: after one
/// percent-decoding it has no `.`/`..` segment, no empty segment, no backslash or control
/// character, and no remaining encoded dot, slash or backslash. The raw form is what is sent
/// upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamPath(String);

impl UpstreamPath {
    /// Checks `raw_rest` (`""` or `/…`, still percent-encoded).
    pub fn parse(raw_rest: &str) -> Result<Self, PathError> {
        if raw_rest.is_empty() {
            return Ok(Self("/".into()));
        }
        if !raw_rest.starts_with('/') {
            return Err(PathError::NotNormal);
        }
        let decoded = percent_decode_str(raw_rest).decode_utf8().map_err(|_| PathError::NotNormal)?;
        if has_forbidden_char(&decoded)
            || decoded.contains("//")
            || ["%2e", "%2f", "%5c"].iter().any(|e| contains_ignore_case(&decoded, e))
            || ["%2f", "%5c"].iter().any(|e| contains_ignore_case(raw_rest, e))
        {
            return Err(PathError::NotNormal);
        }
        let mut segments = decoded[1..].split('/').peekable();
        while let Some(seg) = segments.next() {
            // Servlet containers (Tomcat, Jetty) drop `;params` before resolving dot segments,
            // so `..;` climbs out of the route's base just like `..` does.
            let name = seg.split(';').next().unwrap_or(seg);
            if name == "." || name == ".." || (seg.is_empty() && segments.peek().is_some()) {
                return Err(PathError::NotNormal);
            }
        }
        Ok(Self(raw_rest.to_string()))
    }

    /// The path to append to the upstream base.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `haystack` contains `needle`, ASCII case ignored (without lower-casing a copy).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_accepted_as_return_targets() {
        for ok in ["/", "/app/", "/notes?x=1", "/a%20b"] {
            assert!(ReturnTo::parse(Some(ok)).is_ok(), "{ok}");
        }
        assert_eq!(ReturnTo::parse(None).unwrap().as_str(), "/");
        assert_eq!(
            ReturnTo::parse(Some("/caf\u{e9}?q=\u{2215}")).unwrap().as_str(),
            "/caf%C3%A9?q=%E2%88%95"
        );
    }

    #[test]
    fn open_redirect_tricks_are_refused_as_return_targets() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "\\/evil",
            "https://evil.example",
            "evil",
            "/%2f%2fevil",
            "/%5cevil",
            "/%09/evil",
            "/\t/evil",
            "/x\r\nSet-Cookie:a",
            "%2f%2fevil",
            "javascript:alert(1)",
        ] {
            assert!(ReturnTo::parse(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn traversal_and_encoded_separators_are_refused_in_proxied_paths() {
        for bad in [
            "/../admin",
            "/a/./b",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/a%2fb",
            "/a%5cb",
            "//x",
            "/a//b",
            "/a\\b",
            "/%252e%252e/x",
            "/..",
            "/a/%2e",
            "/..;/admin",
            "/.;x/admin",
            "/%2e%2e;jsessionid=1/x",
        ] {
            assert_eq!(UpstreamPath::parse(bad), Err(PathError::NotNormal), "{bad}");
        }
        for ok in ["", "/", "/notes", "/notes/7", "/notes/", "/a%20b", "/notes;v=1", "/...;x"] {
            assert!(UpstreamPath::parse(ok).is_ok(), "{ok}");
        }
    }
}
