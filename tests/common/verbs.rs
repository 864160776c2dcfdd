//! What a test does to a running [`Stack`]'s BFF, as a user and their SPA would: log in through
//! the real login form, call the API with the SPA's `X-CSRF` header, read `/bff/user`, log out.
//! Each verb takes the [`Browser`] it acts in, so a test can hold several users at once.
//! Calls to another BFF instance of the stack use [`super::browser::call`].

use super::oidc_flow::bff_login;
use super::{Browser, Page, Stack};
use reqwest::Method;
use serde_json::Value;

impl Stack {
    /// `bff_url + path`.
    pub fn bff(&self, path: &str) -> String {
        format!("{}{path}", self.bff_url)
    }

    /// A new browser logged in to the BFF as `user` through the provider's login form
    /// (`/bff/login` → login form → callback, whose 302 is asserted).
    pub async fn login_as(&self, user: (&str, &str)) -> Browser {
        let browser = Browser::new();
        let page = bff_login(&browser, self, user, "/app/").await;
        assert_eq!(page.status, 302, "login failed: {}", page.body);
        browser
    }

    /// `method path` at the BFF with `X-CSRF: 1` (and a JSON body when given), as the SPA sends it.
    pub async fn api(&self, browser: &Browser, method: Method, path: &str, body: Option<Value>) -> Page {
        let mut req = browser.request(method, &self.bff(path)).header("X-CSRF", "1");
        if let Some(b) = body {
            req = req.json(&b);
        }
        browser.send(req).await
    }

    /// `GET path` at the BFF, as the SPA sends it.
    pub async fn api_get(&self, browser: &Browser, path: &str) -> Page {
        self.api(browser, Method::GET, path, None).await
    }

    /// `POST path` at the BFF with a JSON body, as the SPA sends it.
    pub async fn api_post_json(&self, browser: &Browser, path: &str, body: Value) -> Page {
        self.api(browser, Method::POST, path, Some(body)).await
    }

    /// `GET /bff/user`: who the browser's session belongs to (200) or why there is none.
    pub async fn user(&self, browser: &Browser) -> Page {
        self.api_get(browser, "/bff/user").await
    }

    /// The subject of the browser's session (`/bff/user` must answer 200).
    pub async fn sub_of(&self, browser: &Browser) -> String {
        let page = self.user(browser).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.json()["sub"].as_str().expect("sub").to_string()
    }

    /// `POST /bff/logout` as the SPA sends it.
    pub async fn logout(&self, browser: &Browser) -> Page {
        self.api(browser, Method::POST, "/bff/logout", None).await
    }

    /// The CSRF token of the forms on the BFF's start page (the notes pages), as a same-origin
    /// page holds it.
    pub async fn form_token(&self, browser: &Browser) -> String {
        let page = browser.get(&self.bff("/")).await;
        page.inputs().into_iter().find(|(n, _)| n == "csrf_token").expect("a csrf_token field").1
    }

    /// Asserts the browser's session is still alive (`/bff/user` answers 200).
    pub async fn assert_session_alive(&self, browser: &Browser) {
        let page = self.user(browser).await;
        assert_eq!(page.status, 200, "the session must have survived: {}", page.body);
    }
}
