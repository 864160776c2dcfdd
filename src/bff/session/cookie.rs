//! The session cookie's name and its strict reading: what the guard ([`super::guard`]) decides
//! about a request's `Cookie` headers before actix-session sees them. Pure functions over header
//! bytes, so they can be fuzzed against actix-web's own cookie parser (`fuzz/`).

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-cloakroom";

/// Longest session cookie value considered at all.
const MAX_COOKIE_VALUE: usize = 200;

/// True when `v` (as sent, not decoded) can be a session cookie value at all: 1 to 200 bytes
/// of base64/URL-safe characters (and `%`, for values a client still sends percent-encoded).
pub fn well_formed_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_COOKIE_VALUE
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_+/=%".contains(&b))
}

/// What the guard does with a request's session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieVerdict {
    /// No session cookie, or exactly one with the exact name and a well-formed value.
    Fine,
    /// More than one cookie that reads as the session cookie: 400.
    Duplicate,
    /// One that reads as the session cookie but is malformed or misspelled: drop it from the
    /// request, so it is never looked up.
    Strip,
}

/// A `Cookie` header as the cookie parser behind this guard reads it (actix-web's
/// `cookies()`): any UTF-8, not only visible ASCII. A header that is not UTF-8 makes that
/// parser drop every cookie, so it can carry no session either.
pub(super) fn header_text(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value).ok()
}

/// True when `raw_name` reads as the session cookie's name once trimmed and percent-decoded,
/// as the cookie parser reads names. Only the exact name counts as the session cookie; an
/// encoded one (`%5F_Host-cloakroom`, settable from a sibling domain, unlike a `__Host-`
/// cookie) must never stand in for it.
pub(super) fn reads_as_session_name(raw_name: &str) -> bool {
    percent_encoding::percent_decode_str(raw_name.trim()).decode_utf8().is_ok_and(|n| n == SESSION_COOKIE)
}

pub(super) fn pairs(s: &str) -> impl Iterator<Item = (&str, &str)> {
    s.split(';').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// The guard's decision on a request's `Cookie` header values (pure, so it can be fuzzed).
pub fn inspect_cookie_headers<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> CookieVerdict {
    let mut count = 0;
    let mut malformed = false;
    for s in cookie_headers.into_iter().filter_map(header_text) {
        for (name, v) in pairs(s) {
            if reads_as_session_name(name) {
                count += 1;
                malformed |= name != SESSION_COOKIE || !well_formed_value(v);
            }
        }
    }
    match (count, malformed) {
        (c, _) if c > 1 => CookieVerdict::Duplicate,
        (_, true) => CookieVerdict::Strip,
        _ => CookieVerdict::Fine,
    }
}

/// One `Cookie` header value with every cookie of `cookie_headers` except those that read as
/// the session cookie (`None` when nothing is left). Headers that are not UTF-8 are dropped.
pub fn without_session_cookie<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut kept = Vec::new();
    for s in cookie_headers.into_iter().filter_map(header_text) {
        kept.extend(
            s.split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty() && !reads_as_session_name(p.split('=').next().unwrap_or(p))),
        );
    }
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(headers: &[&str]) -> CookieVerdict {
        inspect_cookie_headers(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn session_cookies_spelled_as_the_cookie_parser_reads_them_count_as_duplicates() {
        assert_eq!(verdict(&["__Host-cloakroom=a; __Host-cloakroom =b"]), CookieVerdict::Duplicate);
        assert_eq!(verdict(&["__Host-cloakroo%6D=a", "__Host-cloakroom=b"]), CookieVerdict::Duplicate);
        assert_eq!(verdict(&["x=1; __Host-cloakroom=abc"]), CookieVerdict::Fine);
        assert_eq!(verdict(&["__Host-cloakroomx=abc; __Host-cloakroom=abc"]), CookieVerdict::Fine);
    }

    #[test]
    fn a_misspelled_or_malformed_single_session_cookie_is_stripped_and_every_other_cookie_kept() {
        let headers = ["theme=dark; __Host-cloakroom=not valid!", "lang=é"];
        let raw = || headers.iter().map(|h| h.as_bytes());

        assert_eq!(inspect_cookie_headers(raw()), CookieVerdict::Strip);
        assert_eq!(without_session_cookie(raw()).as_deref(), Some("theme=dark; lang=é"));
        assert_eq!(verdict(&["%5F_Host-cloakroom=abc"]), CookieVerdict::Strip);
    }
}
