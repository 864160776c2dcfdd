//! What the BFF remembers about the client of a session, coarse on purpose: the user-agent
//! family (not the full string) and the network range (IPv4 /24, IPv6 /48), never the address.

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Longest user-agent family kept (records stay small).
const MAX_FAMILY_LEN: usize = 32;

/// The coarse description of a client, stored in the session record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// User-agent family, e.g. `Firefox`, `Chrome`, `curl`, or `other`.
    #[serde(default, rename = "ua")]
    pub ua_family: String,
    /// Network range, e.g. `203.0.113.0/24`; empty when unknown.
    #[serde(default)]
    pub ip_range: String,
}

impl ClientInfo {
    /// The coarse client of `req`: the TCP peer (forwarding headers are not trusted) and the
    /// `User-Agent` family.
    pub fn of(req: &HttpRequest) -> Self {
        let ua = req.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        Self {
            ua_family: ua_family(ua.unwrap_or("")),
            ip_range: req.peer_addr().map(|a| coarse_ip(a.ip())).unwrap_or_default(),
        }
    }

    /// True when nothing is known (records written before this was kept).
    pub fn is_unknown(&self) -> bool {
        self.ua_family.is_empty() && self.ip_range.is_empty()
    }
}

/// The network range of `ip`: /24 for IPv4 (and IPv4-mapped IPv6), /48 for IPv6.
pub fn coarse_ip(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// The family of a `User-Agent` string: the browser or tool name, version dropped.
pub fn ua_family(ua: &str) -> String {
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    const KNOWN: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("reqwest", "reqwest"),
    ];
    if ua.trim().is_empty() {
        return "unknown".into();
    }
    if let Some((_, family)) = KNOWN.iter().find(|(needle, _)| ua.contains(needle)) {
        return (*family).into();
    }
    // Otherwise the first product token, without its version.
    let first = ua.split(['/', ' ']).next().unwrap_or("");
    let family: String = first
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(MAX_FAMILY_LEN)
        .collect();
    if family.is_empty() { "other".into() } else { family }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_range() {
        assert_eq!(coarse_ip("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(coarse_ip("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.0/24");
        assert_eq!(coarse_ip("2001:db8:abcd:12::1".parse().unwrap()), "2001:db8:abcd::/48");
    }

    #[test]
    fn user_agents_are_reduced_to_their_family() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        assert_eq!(ua_family(chrome), "Chrome");
        assert_eq!(ua_family("Mozilla/5.0 (X11; rv:121.0) Gecko/20100101 Firefox/121.0"), "Firefox");
        assert_eq!(ua_family(&format!("{chrome} Edg/120.0")), "Edge");
        assert_eq!(ua_family("curl/8.5.0"), "curl");
        assert_eq!(ua_family(""), "unknown");
        assert_eq!(ua_family("MyTool/1.0 (\r\n evil)"), "MyTool");
        assert_eq!(ua_family(&"x".repeat(500)).len(), MAX_FAMILY_LEN);
    }
}
