#!/usr/bin/env python3
"""A headless Chromium walk through a running cloakroom stack (docker-compose.yml or `cloakroom
demo`), driven over WebDriver with Debian's chromium + chromium-driver and Python's standard
library only:

  /app/ (the single-page app's files) → Log in → the auth server's form → back at /app/ as alice
  → add a note → no cookie visible to scripts (HttpOnly) → / (the notes pages through the BFF's
  frontend server) lists it → add a note through the page's form → Log out (BFF, then the
  provider's sign-out page) → / is signed out again.

    scripts/compose-browser.py [BFF_URL] [ISSUER_URL]
        (default http://localhost:8080 and http://auth.localhost:8081)

Exit 0 when every step passed. Chromium resolves *.localhost to the loopback address itself.
CHROMIUM and CHROMEDRIVER override /usr/bin/chromium and /usr/bin/chromedriver.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

WAIT = 30.0
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def log(msg):
    print(f"[compose-browser {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", flush=True)


class Failed(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, driver_url, profile):
        self.driver_url = driver_url
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-dev-shm-usage",
                            "--disable-gpu",
                            "--no-first-run",
                            "--disable-extensions",
                            f"--user-data-dir={profile}",
                        ],
                    },
                }
            }
        }
        self.base = driver_url
        self.session = self.call("POST", "/session", caps)["sessionId"]
        self.base = f"{driver_url}/session/{self.session}"

    def call(self, method, path, body=None):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return json.load(res)["value"]
        except urllib.error.HTTPError as e:
            raise Failed(f"WebDriver {method} {path}: {e.read().decode(errors='replace')[:500]}")

    def quit(self):
        try:
            self.call("DELETE", "")
        except Exception:
            pass

    def goto(self, url):
        self.call("POST", "/url", {"url": url})

    def url(self):
        return self.call("GET", "/url")

    def js(self, script):
        return self.call("POST", "/execute/sync", {"script": script, "args": []})

    def element(self, css):
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return self.call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]
            except Failed:
                if time.monotonic() > deadline:
                    raise Failed(f"no element `{css}` on {self.url()} within {WAIT}s")
                time.sleep(0.2)

    def click(self, css):
        self.call("POST", f"/element/{self.element(css)}/click")

    def type_into(self, css, text):
        self.call("POST", f"/element/{self.element(css)}/value", {"text": text})

    def wait_until(self, what, expr):
        deadline = time.monotonic() + WAIT
        script = f"try {{ return !!({expr}); }} catch (_) {{ return false; }}"
        while True:
            try:
                if self.js(script) is True:
                    return
            except Failed:
                pass  # a navigation in progress: not yet
            if time.monotonic() > deadline:
                raise Failed(f"timed out waiting for {what} (`{expr}`) on {self.url()}")
            time.sleep(0.2)

    def wait_for_url(self, prefix):
        deadline = time.monotonic() + WAIT
        while not self.url().startswith(prefix):
            if time.monotonic() > deadline:
                raise Failed(f"timed out waiting for a URL under {prefix}; at {self.url()}")
            time.sleep(0.2)


def text_has(needle):
    return f"document.body && document.body.innerText.includes({json.dumps(needle)})"


def walk(b, bff, issuer):
    note = f"browser note {os.getpid()} {int(time.time())}"
    form_note = f"browser form note {os.getpid()} {int(time.time())}"

    log(f"{bff}/app/: the single-page app, signed out")
    b.goto(f"{bff}/app/")
    b.wait_until("the signed-out section", "!document.getElementById('signed-out').hidden")
    b.click("#login")
    b.wait_for_url(f"{issuer}/authorize")
    log("the auth server's login form: alice")
    b.type_into("input[name=username]", "alice")
    b.type_into("input[name=password]", "alice-password")
    b.click("form[action='/login'] button[type=submit]")
    b.wait_for_url(f"{bff}/app/")
    b.wait_until("the app to show alice", "document.getElementById('name').textContent === 'alice'")

    log("add a note through the API; the session cookie is invisible to scripts")
    b.type_into("#text", note)
    b.click("#add button[type=submit]")
    b.wait_until("the note in the list", f"document.getElementById('notes').innerText.includes({json.dumps(note)})")
    cookies = b.js("return document.cookie")
    if cookies != "":
        raise Failed(f"document.cookie is {cookies!r}, expected no cookie visible to scripts")

    log(f"{bff}/: the notes pages through the BFF's frontend server")
    b.goto(f"{bff}/")
    b.wait_until("the notes page to name alice", text_has("Signed in as alice"))
    b.wait_until("the API's note on the page", text_has(note))
    b.type_into("form[action='/notes-form'] input[name=text]", form_note)
    b.click("form[action='/notes-form'] button[type=submit]")
    b.wait_until("the form's note on the page", text_has(form_note))

    log("log out from /app/: the BFF, then the provider's sign-out page")
    b.goto(f"{bff}/app/")
    b.wait_until("the app to show alice", "document.getElementById('name').textContent === 'alice'")
    b.click("#logout")
    b.wait_for_url(f"{issuer}/")
    b.click("form[action='/logout'] button[type=submit]")
    b.wait_for_url(f"{bff}/")
    b.goto(f"{bff}/")
    b.wait_until("the notes page to be signed out", text_has("You are not signed in."))


def main():
    bff = (sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8080").rstrip("/")
    issuer = (sys.argv[2] if len(sys.argv) > 2 else "http://auth.localhost:8081").rstrip("/")
    port = free_port()
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"), f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="cloakroom-compose-browser-")
    browser = None
    try:
        driver_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT
        while True:
            try:
                urllib.request.urlopen(f"{driver_url}/status", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed("chromedriver did not start")
                time.sleep(0.2)
        browser = Browser(driver_url, profile)
        walk(browser, bff, issuer)
        log("PASSED")
        return 0
    except Failed as e:
        print(f"[compose-browser] FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if browser:
            browser.quit()
        driver.terminate()
        driver.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
