//! Frontends: the app's own built pages (a Vite `dist/`, say) served from the BFF's origin, so
//! the single-page app and `/bff/*` share one origin and the session cookie needs no CORS.
//!
//! Files go through actix-files' `NamedFile` (content types, `ETag`/`Last-Modified` and 304,
//! single byte ranges). Around it: the path is resolved below the frontend's root and refused
//! when a symbolic link leads out of it ([`path`]); a navigation to a path with no file gets
//! `index.html` (the app's client-side routes), any other missing file a 404; a `.br` or `.gz`
//! file beside the requested one is served when the browser accepts that encoding;
//! `index.html` and other unfingerprinted files are `no-cache`, files below `immutable_dir`
//! are cached for a year as `immutable`; each frontend has its own `Content-Security-Policy`.
//! Which requests reach a frontend, and with what session rule, is the route policy's business.

mod path;

use crate::config::{BffConfig, ConfigError, FrontendSource};
use crate::web::{ApiError, ErrorCode};
use actix_files::NamedFile;
use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use std::path::{Path, PathBuf};

/// One frontend, resolved at start.
#[derive(Debug)]
struct Site {
    /// `bff.frontends[].path`.
    prefix: String,
    /// The canonical root directory.
    root: PathBuf,
    /// `root/immutable_dir`.
    immutable: PathBuf,
    /// Its `Content-Security-Policy`.
    csp: Option<HeaderValue>,
}

/// Every configured frontend, in app data.
#[derive(Debug, Default)]
pub struct Frontends {
    /// In `bff.frontends` order; `None` for a frontend server (the proxy serves those).
    sites: Vec<Option<Site>>,
}

/// A request the route policy matched to frontend `0` (an index into `bff.frontends`).
#[derive(Debug, Clone, Copy)]
pub struct FrontendRequest(pub usize);

impl Frontends {
    /// Resolves `bff.frontends`: each `dir` must be a directory holding `index.html`; a CSP must
    /// be a valid header value; no frontend may share a route's path (the route would always
    /// win). Errors name the key.
    pub fn from_config(config: &BffConfig) -> Result<Self, ConfigError> {
        let mut sites = Vec::new();
        for (i, f) in config.frontends.iter().enumerate() {
            let key = |k: &str| format!("bff.frontends.{i}.{k}");
            if config.routes.iter().any(|r| r.path.as_str() == f.path.as_str()) {
                return Err(ConfigError::new(key("path"), "is a route's path too"));
            }
            let csp = csp_of(f.csp.as_deref(), || key("csp"))?;
            let FrontendSource::Dir(dir) = &f.source else {
                sites.push(None);
                continue;
            };
            let root = std::fs::canonicalize(dir)
                .ok()
                .filter(|root| root.join("index.html").is_file())
                .ok_or_else(|| ConfigError::new(key("dir"), "must be a directory holding index.html"))?;
            let immutable = root.join(&f.immutable_dir);
            sites.push(Some(Site { prefix: f.path.as_str().to_owned(), root, immutable, csp }));
        }
        Ok(Self { sites })
    }
}

/// A frontend's `csp` as a header value; an invalid one is an error naming `key`.
pub fn csp_of(csp: Option<&str>, key: impl FnOnce() -> String) -> Result<Option<HeaderValue>, ConfigError> {
    csp.map(|v| HeaderValue::from_str(v).map_err(|_| ConfigError::new(key(), "is not a valid header value")))
        .transpose()
}

/// For the frontends' resource guard: true when the route policy matched this request to a
/// frontend.
pub fn is_frontend_request(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.req_data().contains::<FrontendRequest>()
}

fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(ErrorCode::NotFound, "no such resource"))
}

/// Serves a file of the frontend the policy matched (only `GET` and `HEAD` get here).
pub async fn serve(req: HttpRequest, frontends: web::Data<Frontends>) -> HttpResponse {
    let matched = req.extensions().get::<FrontendRequest>().copied();
    let Some(site) = matched.and_then(|FrontendRequest(i)| frontends.sites.get(i)?.as_ref()) else {
        return not_found();
    };
    let rest =
        if site.prefix == "/" { req.path() } else { req.path().get(site.prefix.len()..).unwrap_or("") };
    let found = path::relative_file(rest).and_then(|rel| contained_file(&site.root, &site.root.join(rel)));
    let (file, fallback) = match found {
        Some(file) => (file, false),
        None if is_navigation(&req) => (site.root.join("index.html"), true),
        None => return not_found(),
    };
    let mut res = respond_with_file(&req, site, &file);
    if fallback {
        // The app's own route: the same index.html whatever the path.
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res
}

/// `candidate`'s real path when it is a file inside `root` (after symbolic links).
fn contained_file(root: &Path, candidate: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(candidate).ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

/// A page navigation: `Sec-Fetch-Mode: navigate`, or, from a client that sends no fetch
/// metadata, a `GET` that accepts HTML.
pub fn is_navigation(req: &HttpRequest) -> bool {
    match req.headers().get("sec-fetch-mode") {
        Some(mode) => mode.as_bytes().eq_ignore_ascii_case(b"navigate"),
        None => {
            req.method() == actix_web::http::Method::GET
                && req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
        }
    }
}

/// Files smaller than this are read on the worker thread instead of actix-files' blocking pool:
/// a built app's files are small and in the page cache, where a read takes microseconds and the
/// hand-off to the pool and back costs more than the read (bench/run.sh, the static asset row).
const SYNC_READ_BELOW_BYTES: u64 = 64 * 1024;

/// `file` (or its precompressed variant) as the response, with the frontend's cache policy,
/// `Vary` and CSP.
fn respond_with_file(req: &HttpRequest, site: &Site, file: &Path) -> HttpResponse {
    let variant = precompressed(req, &site.root, file);
    let opened = match &variant {
        Some((path, encoding)) => NamedFile::open(path).map(|f| {
            let mime = actix_files::file_extension_to_mime(
                file.extension().and_then(|e| e.to_str()).unwrap_or_default(),
            );
            f.set_content_type(mime).set_content_encoding(*encoding)
        }),
        None => NamedFile::open(file),
    };
    let Ok(named) = opened else { return not_found() };
    let mut res =
        named.disable_content_disposition().read_mode_threshold(SYNC_READ_BELOW_BYTES).into_response(req);
    let headers = res.headers_mut();
    let cache =
        if file.starts_with(&site.immutable) { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if has_variants(&site.root, file) {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(csp) = &site.csp {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    }
    res
}

/// The `.br` (preferred) or `.gz` file beside `file`, inside `root`, when the request accepts
/// that encoding.
fn precompressed(req: &HttpRequest, root: &Path, file: &Path) -> Option<(PathBuf, ContentEncoding)> {
    let accepted = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    [("br", ContentEncoding::Brotli), ("gzip", ContentEncoding::Gzip)].into_iter().find_map(
        |(name, encoding)| {
            if !accepts(accepted, name) {
                return None;
            }
            let suffix = if name == "br" { "br" } else { "gz" };
            contained_file(root, &with_suffix(file, suffix)).map(|p| (p, encoding))
        },
    )
}

/// True when `file` has a `.br` or `.gz` sibling (its answer then depends on `Accept-Encoding`).
fn has_variants(root: &Path, file: &Path) -> bool {
    ["br", "gz"].iter().any(|s| contained_file(root, &with_suffix(file, s)).is_some())
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// True when an `Accept-Encoding` value accepts `coding` (listed without `q=0`).
fn accepts(accept_encoding: &str, coding: &str) -> bool {
    accept_encoding.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().map(|q| q <= 0.0).unwrap_or(true))
        });
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoding_counts_as_accepted_unless_it_is_absent_or_weighted_zero() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("br;q=0.5", "br"));
        assert!(!accepts("br;q=0", "br"));
        assert!(!accepts("br;q=0.0, gzip", "br"));
        assert!(!accepts("gzip", "br"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("br;q=oops", "br"));
    }
}
