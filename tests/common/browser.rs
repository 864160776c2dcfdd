//! A scripted browser-like HTTP client: a cookie jar, no automatic redirects (tests follow
//! them on purpose), and every response captured whole so it can be scanned.

use cloakroom::bff::session::SESSION_COOKIE;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Page {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text (lossy).
    pub body: String,
    /// The URL that was requested.
    pub url: String,
}

impl Page {
    /// The `Location` header, resolved against the request URL.
    pub fn location(&self) -> Option<String> {
        let loc = self.headers.get(LOCATION)?.to_str().ok()?;
        let base = url::Url::parse(&self.url).ok()?;
        base.join(loc).ok().map(|u| u.to_string())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
    }

    /// The `Set-Cookie` header for the session cookie, setting or removing it.
    pub fn session_set_cookie(&self) -> Option<String> {
        self.set_cookies().into_iter().find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Name/value pairs of every `<input>` in the body (hidden fields of a form).
    pub fn inputs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for tag in self.body.split("<input").skip(1) {
            let tag = tag.split('>').next().unwrap_or("");
            let attr = |name: &str| {
                let needle = format!("{name}=\"");
                tag.find(&needle).map(|i| {
                    let rest = &tag[i + needle.len()..];
                    html_unescape(&rest[..rest.find('"').unwrap_or(rest.len())])
                })
            };
            if let Some(name) = attr("name") {
                out.push((name, attr("value").unwrap_or_default()));
            }
        }
        out
    }

    /// The `action` of the first `<form>` in the body, resolved against the request URL.
    pub fn form_action(&self) -> Option<String> {
        let tag = self.body.split("<form").nth(1)?.split('>').next()?;
        let i = tag.find("action=\"")?;
        let rest = &tag[i + 8..];
        let action = html_unescape(&rest[..rest.find('"')?]);
        url::Url::parse(&self.url).ok()?.join(&action).ok().map(|u| u.to_string())
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// A browser: one cookie jar shared by every host it talks to (like cookies on `localhost`,
/// which browsers do not separate by port). Secure cookies are kept on http://127.0.0.1, as
/// browsers treat loopback as a secure context.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Mutex<BTreeMap<String, String>>>,
    /// Every response this browser received, in order (for "no token ever reached the browser").
    pub history: Arc<Mutex<Vec<Page>>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty jar.
    pub fn new() -> Self {
        // Idle connections are dropped before the servers' keep-alive (actix: 5 s) closes them:
        // a browser retries a request that met a connection closing under it, reqwest does not,
        // and a test that waits a few seconds between two requests would meet that race.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(3))
            .build()
            .expect("http client");
        Self { http, jar: Arc::default(), history: Arc::default() }
    }

    /// The current value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    /// The current value of the BFF's session cookie.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookie(SESSION_COOKIE)
    }

    /// Names of all cookies in the jar.
    pub fn cookie_names(&self) -> Vec<String> {
        self.jar.lock().unwrap().keys().cloned().collect()
    }

    /// Plants (or replaces) a cookie, as an attacker or a stale tab would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().unwrap().insert(name.to_string(), value.to_string());
    }

    /// Removes a cookie.
    pub fn remove_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    /// A request builder for `method url` (cookies are added by [`Browser::send`]).
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `req` with the jar's cookies, stores the cookies it sets, and reads it whole.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.build().expect("request");
        let cookie_header = {
            let jar = self.jar.lock().unwrap();
            jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        };
        if !cookie_header.is_empty() && !req.headers().contains_key(COOKIE) {
            req.headers_mut().insert(COOKIE, HeaderValue::from_str(&cookie_header).expect("cookie header"));
        }
        let url = req.url().to_string();
        let res = self.http.execute(req).await.unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = res.status();
        let headers = res.headers().clone();
        let body = String::from_utf8_lossy(&res.bytes().await.unwrap_or_default()).into_owned();
        let page = Page { status, headers, body, url };
        self.absorb_cookies(&page);
        self.history.lock().unwrap().push(page.clone());
        page
    }

    fn absorb_cookies(&self, page: &Page) {
        let mut jar = self.jar.lock().unwrap();
        for raw in page.set_cookies() {
            let Ok(c) = cookie::Cookie::parse(raw) else { continue };
            let expired = c.max_age().is_some_and(|d| d.whole_seconds() <= 0)
                || c.expires()
                    .and_then(|e| e.datetime())
                    .is_some_and(|t| t < time::OffsetDateTime::now_utc());
            if expired || c.value().is_empty() {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_string(), c.value().to_string());
            }
        }
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Page {
        self.send(self.request(Method::GET, url)).await
    }

    /// POST a form to `url`.
    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Page {
        self.send(self.request(Method::POST, url).form(fields)).await
    }

    /// Follows redirects from `page` (at most 10), returning the first non-redirect answer.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..10 {
            if !page.status.is_redirection() {
                return page;
            }
            let next =
                page.location().unwrap_or_else(|| panic!("redirect without Location from {}", page.url));
            page = self.get(&next).await;
        }
        panic!("too many redirects");
    }

    /// Follows redirects from `page` until one points at `prefix` and returns that URL without
    /// requesting it (e.g. to capture the callback URL with its `code`).
    pub async fn follow_until(&self, mut page: Page, prefix: &str) -> String {
        for _ in 0..10 {
            let next = page.location().unwrap_or_else(|| {
                panic!(
                    "expected a redirect towards {prefix}, got {} from {}: {}",
                    page.status, page.url, page.body
                )
            });
            if next.starts_with(prefix) {
                return next;
            }
            page = self.get(&next).await;
        }
        panic!("too many redirects");
    }
}

/// `method url` with `X-CSRF: 1`, as the SPA sends its calls to the BFF.
pub async fn call_with(browser: &Browser, method: Method, url: &str) -> Page {
    browser.send(browser.request(method, url).header("X-CSRF", "1")).await
}

/// `GET {base}{path}` as the SPA sends it (see [`call_with`]).
pub async fn call(browser: &Browser, base: &str, path: &str) -> Page {
    call_with(browser, Method::GET, &format!("{base}{path}")).await
}

/// `count` concurrent SPA calls of `path`, spread in turn over the instances at `bases`;
/// the answers in the order the calls were made.
pub async fn call_spread(browser: &Browser, bases: &[&str], count: usize, path: &str) -> Vec<Page> {
    let calls = (0..count).map(|i| call(browser, bases[i % bases.len()], path));
    futures_util::future::join_all(calls).await
}

/// Asserts that `page` neither set nor removed the session cookie.
pub fn assert_session_cookie_untouched(page: &Page) {
    let touched: Vec<String> =
        page.set_cookies().into_iter().filter(|c| c.starts_with(&format!("{SESSION_COOKIE}="))).collect();
    assert!(touched.is_empty(), "{} touched the session cookie: {touched:?}", page.url);
}

/// Asserts the BFF's JSON error answer: `status` and `{"error": code}`.
pub fn assert_error_code(page: &Page, status: u16, code: &str) {
    assert_eq!(page.status.as_u16(), status, "{}: {}", page.url, page.body);
    assert_eq!(page.json()["error"], code, "{}", page.body);
}
