//! `[[bff.frontends]]`: where the app's pages come from.

use super::types::{FrontendPath, PublicUrl};
use serde::Deserialize;

/// `[[bff.frontends]]`: the app's pages under `path`, either built files served from `dir` or
/// a frontend server (`upstream`: a dev server, a server-rendered app) the BFF proxies to.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawFrontend")]
pub struct FrontendConfig {
    /// Local prefix (default `/`).
    pub path: FrontendPath,
    /// Where the pages come from.
    pub source: FrontendSource,
    /// Whether a page needs a signed-in user.
    pub login: FrontendLogin,
    /// The `Content-Security-Policy` of its responses; unset: the BFF's strict default.
    pub csp: Option<String>,
    /// The directory (below `dir`) of fingerprinted files — names that change whenever the
    /// content does, like Vite's `assets/index-BXa1c2De.js` — served with a year-long
    /// `immutable` cache lifetime. Everything else is revalidated (`no-cache`).
    pub immutable_dir: String,
    /// Request headers forwarded to an `upstream` besides the defaults.
    pub forward_request_headers: Vec<String>,
}

/// `bff.frontends[].dir` or `bff.frontends[].upstream`.
#[derive(Debug, Clone)]
pub enum FrontendSource {
    /// The directory of built files (e.g. Vite's `dist/`), with an `index.html`.
    Dir(std::path::PathBuf),
    /// A frontend server's base URL, e.g. `http://localhost:5173`. It gets the whole request
    /// path (the prefix is not stripped), the user's access token when there is a session, and
    /// WebSocket upgrades (a dev server's hot reload).
    Upstream(PublicUrl),
}

/// `[[bff.frontends]]` as written; [`FrontendConfig`] once exactly one source is set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontend {
    #[serde(default)]
    path: FrontendPath,
    #[serde(default)]
    dir: Option<std::path::PathBuf>,
    #[serde(default)]
    upstream: Option<PublicUrl>,
    #[serde(default)]
    login: FrontendLogin,
    #[serde(default)]
    csp: Option<String>,
    #[serde(default)]
    immutable_dir: Option<String>,
    #[serde(default)]
    forward_request_headers: Vec<String>,
}

impl TryFrom<RawFrontend> for FrontendConfig {
    type Error = String;

    fn try_from(raw: RawFrontend) -> Result<Self, String> {
        let source = match (raw.dir, raw.upstream) {
            (Some(dir), None) => FrontendSource::Dir(dir),
            (None, Some(url)) => FrontendSource::Upstream(url),
            _ => {
                return Err(
                    "set exactly one of `dir` (built files) and `upstream` (a frontend server)".into()
                );
            }
        };
        let is_dir = matches!(source, FrontendSource::Dir(_));
        if !is_dir && raw.immutable_dir.is_some() {
            return Err("`immutable_dir` applies to `dir` only".into());
        }
        if is_dir && !raw.forward_request_headers.is_empty() {
            return Err("`forward_request_headers` applies to `upstream` only".into());
        }
        Ok(Self {
            path: raw.path,
            source,
            login: raw.login,
            csp: raw.csp,
            immutable_dir: raw.immutable_dir.unwrap_or_else(default_immutable_dir),
            forward_request_headers: raw.forward_request_headers,
        })
    }
}

impl FrontendConfig {
    /// The frontend server's URL, when it is one.
    pub fn upstream(&self) -> Option<&PublicUrl> {
        match &self.source {
            FrontendSource::Upstream(url) => Some(url),
            FrontendSource::Dir(_) => None,
        }
    }
}

fn default_immutable_dir() -> String {
    "assets".into()
}

/// `bff.frontends[].login`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontendLogin {
    /// Served to anyone; the app asks `/bff/user` who is signed in (default).
    #[default]
    Optional,
    /// Without a session a page navigation is redirected to `/bff/login?returnTo=<that page>`,
    /// and any other request gets 401 `unauthenticated`.
    Required,
}

/// The frontends, refused when two share a path.
pub(super) fn frontends<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<FrontendConfig>, D::Error> {
    unique_paths(Vec::<FrontendConfig>::deserialize(d)?, |f| f.path.as_str())
}

/// `items` when no two share a path (which one serves would be a guess), else the error naming
/// the path.
pub(super) fn unique_paths<T, E: serde::de::Error>(
    items: Vec<T>,
    path: impl Fn(&T) -> &str,
) -> Result<Vec<T>, E> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|o| path(o) == path(item)) {
            return Err(E::custom(format!("the path `{}` is configured twice", path(item))));
        }
    }
    Ok(items)
}
