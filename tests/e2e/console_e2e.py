#!/usr/bin/python3
"""The web console in a real browser (headless Chromium through chromedriver).

Run by tests/e2e/console_e2e_test.cpp, which starts the real coordinator and
agents and prepares the releases; this script only uses the console, as a
person would, and exits non-zero naming the first thing that was not as it
should be. Environment:
  FABU_CONSOLE_URL      https://127.0.0.1:PORT (the test's own CA: certificate
                        errors are ignored for that origin only by this browser)
  FABU_CONSOLE_USERS    JSON {"user": "token", ...}
  FABU_CONSOLE_RELEASE  the release the scenario works on
  FABU_CONSOLE_SHOTS    where screenshots go (one PNG per page seen)
Usage: console_e2e.py approve|rollout|preflight|viewer|zh-CN
"""
import json
import os
import pathlib
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL = os.environ["FABU_CONSOLE_URL"].rstrip("/")
USERS = json.loads(os.environ["FABU_CONSOLE_USERS"])
RELEASE = os.environ.get("FABU_CONSOLE_RELEASE", "")
SHOTS = pathlib.Path(os.environ["FABU_CONSOLE_SHOTS"])


class Failed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


class Browser:
    """One person's browser: its own profile (cookies), 1280x800."""

    def __init__(self, name, lang="en-US"):
        self.name = name
        self.profile = tempfile.TemporaryDirectory(prefix="fabu-console-")
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,800", "--ignore-certificate-errors", f"--lang={lang}",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    f"--user-data-dir={self.profile.name}"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_window_size(1280, 800)
        self.driver.set_script_timeout(30)
        # Console messages that are expected at this point (substrings).
        self.allowed = []
        self.problems = []

    def close(self):
        try:
            self.collect_logs()
        finally:
            self.driver.quit()
            self.profile.cleanup()

    def collect_logs(self):
        """Every console message of level WARNING or worse that was not expected."""
        for entry in self.driver.get_log("browser"):
            if entry["level"] not in ("SEVERE", "WARNING"):
                continue
            text = entry["message"]
            if any(a in text for a in self.allowed):
                continue
            self.problems.append(f"{self.name}: browser console: {entry['level']} {text}")
        check(not self.problems, "\n".join(self.problems))

    def open(self, route):
        self.driver.get(f"{URL}/#{route}")

    def go(self, route):
        """Follows a link inside the page: the hash changes, the page does not reload."""
        self.driver.execute_script("location.hash = arguments[0];", route)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    # Read through one script call, so a live page redrawn meanwhile never
    # leaves a stale element in our hands.
    def text(self, css="body"):
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)

    def attr(self, css, name):
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return e ? e.getAttribute(arguments[1]) : null;", css, name)

    def wait(self, what, condition, timeout=30.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except WebDriverException as e:
                last = e
            time.sleep(0.1)
        self.shot(f"FAILED-{self.name}")
        raise Failed(f"{self.name}: waited {timeout:.0f}s for {what}; page says:\n"
                     f"{self.text()[:3000]}\n{last or ''}")

    def wait_css(self, css, timeout=30.0):
        return self.wait(css, lambda: self.all(css), timeout)[0]

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))

    def page(self, name):
        """A page that finished loading: no horizontal scrolling at 1280x800, a
        screenshot, and no unexpected console message so far."""
        self.wait("the page to finish loading", lambda: not self.all("main > p.muted"))
        widths = self.driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")
        check(widths[0] <= widths[1], f"{self.name}: {name} scrolls sideways at 1280x800: {widths}")
        self.shot(name)
        self.collect_logs()

    def sign_in(self, user):
        # Before signing in, the console asks for the session and is told 401.
        self.allowed.append("/api/v1/session - Failed to load resource: the server responded with a status of 401")
        self.open("/releases")
        self.wait_css("#signin")
        self.shot(f"{self.name}-signin")
        self.find("#signin-user").send_keys(user)
        self.find("#signin-token").send_keys(USERS[user])
        self.find("#signin button[type=submit]").click()
        self.wait(f"{user} signed in", lambda: self.text("#who-name") == user)
        self.collect_logs()
        self.allowed.pop()

    def fetch(self, method, path, csrf="session", body="{}"):
        """A request made from the page's own origin with its cookie; csrf
        "session" sends the session's token, None sends none. Its status."""
        return self.driver.execute_async_script(
            """
            const [method, path, csrf, body, done] = arguments;
            (async () => {
              const headers = {'Content-Type': 'application/json'};
              if (csrf === 'session') {
                const s = await fetch('/api/v1/session', {credentials: 'same-origin'});
                headers['X-CSRF-Token'] = (await s.json()).csrf;
              }
              const r = await fetch(path, {method, headers, credentials: 'same-origin',
                                           body: method === 'GET' ? undefined : body});
              done(r.status);
            })().catch((e) => done(String(e)));
            """, method, path, csrf, body)

    def actions(self):
        return set(self.driver.execute_script(
            "return [...document.querySelectorAll('#actions button')].map((e) => e.dataset.action);"))

    def click(self, css, timeout=20.0):
        """Clicks an element of a page that may be redrawn meanwhile."""
        def attempt():
            try:
                self.wait_css(css, timeout).click()
                return True
            except StaleElementReferenceException:
                return False
        self.wait(f"a click on {css}", attempt, timeout)

    def act(self, action, text=None):
        """Clicks an action button, fills its dialog's text and confirms."""
        self.click(f"#actions button[data-action='{action}']")
        dialog = self.wait_css("#dialog[open]")
        if text is not None:
            dialog.find_element(By.CSS_SELECTOR, "textarea").send_keys(text)
        self.shot(f"{self.name}-dialog-{action}")
        dialog.find_element(By.CSS_SELECTOR, f"button[data-confirm='{action}']").click()
        self.wait(f"the {action} dialog to close", lambda: not self.all("#dialog[open]"))

    def state(self):
        return self.attr("#release-state [data-state]", "data-state") or ""


def release_rows(b):
    return {r.get_attribute("data-release"): r for r in b.all("#releases tbody tr[data-release]")}


def scenario_approve():
    """An approver signs in and approves a submitted release with a comment."""
    b = Browser("approver")
    try:
        b.sign_in("wang.approver")
        b.wait("the release list", lambda: RELEASE in release_rows(b))
        row = release_rows(b)[RELEASE]
        check("in_review" == row.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute("data-state"),
              f"{RELEASE} is listed in review: {row.text}")
        check("1" in b.text("#state-counts [data-state='in_review']"), b.text("#state-counts"))
        b.page("releases")
        row.find_element(By.CSS_SELECTOR, "a").click()
        b.wait_css("#release-id")
        check(b.state() == "in_review", f"state {b.state()}")
        sections = b.all("#plan dd[data-section]")
        check(len(sections) == 9, f"the plan's nine parts: {len(sections)}")
        check("Ship the console test release" in b.text("#plan"), b.text("#plan"))
        actions = b.actions()
        check(actions == {"approve", "reject", "preflight"},
              f"an approver reviewing sees approve, reject and pre-flight again: {actions}")
        b.page("release-in-review")

        # The session's cookie alone is not enough to change anything.
        b.allowed.append(f"/api/v1/releases/{RELEASE}/approve - Failed to load resource: the server responded with a status of 403")
        status = b.fetch("POST", f"/api/v1/releases/{RELEASE}/approve", csrf=None, body='{"comment":"forged"}')
        check(status == 403, f"an approve without the CSRF token: {status}")
        b.collect_logs()
        b.allowed.pop()

        b.act("approve", "Plan reviewed: rollback tested on staging.")
        b.wait("the release approved", lambda: b.state() == "approved")
        review = b.text("#review")
        check("Plan reviewed: rollback tested on staging." in review, f"the comment in the review: {review}")
        check("wang.approver" in review, review)
        rows = b.all("#history tr[data-action='approve']")
        check(rows and "wang.approver" in rows[-1].text, f"the timeline names the approver: {b.text('#history')}")
        check(not b.all("#actions button[data-action='approve']"), "no approve button once approved")
        b.page("release-approved")

        b.go(f"/audit?release={RELEASE}")
        b.wait("the audit trail", lambda: b.all("#audit tbody tr[data-action]"))
        approvals = [r for r in b.all("#audit tbody tr[data-action]")
                     if "approve" in r.get_attribute("data-action")
                     and r.get_attribute("data-actor") == "wang.approver"]
        check(approvals, f"the audit trail shows wang.approver's approval: {b.text('#audit')[:2000]}")
        b.wait("the coordinator's own check", lambda: b.all("#watch-result"))
        check(b.attr("#watch-result", "data-intact") == "true", b.text("#watch"))
        b.click("#verify-button")
        b.wait("audit verify", lambda: b.all("#verify-result"))
        check(b.attr("#verify-result", "data-intact") == "true", b.text("#verify"))
        b.page("audit")
    finally:
        b.close()


def scenario_rollout():
    """A release manager starts a release with a gate, follows wave 1 live,
    confirms the gate and sees a failing host's reason and the rollback."""
    b = Browser("release-manager")
    try:
        b.sign_in("zhang.rm")
        b.open(f"/releases/{RELEASE}")
        b.wait_css("#release-id")
        check(b.state() == "scheduled", f"state {b.state()}")
        b.page("release-scheduled")
        b.act("start")
        b.wait("the rollout link", lambda: b.all("#rollout-link"))
        b.click("#rollout-link")
        b.wait_css("#waves")
        # From here on nothing may reload the page: a marker on the window would go.
        # And how late the page shows wave 1's end: the time the API first says
        # so (asked every 100 ms beside the page) against the time the page does.
        b.driver.execute_script("""
            window.__stillTheSamePage = 'yes';
            window.__seen = {};
            const id = arguments[0];
            (async () => {
              for (let i = 0; i < 1500 && !window.__seen.api; ++i) {
                const s = await (await fetch(`/api/v1/releases/${id}/status`, {credentials: 'same-origin'})).json();
                if (s.waves && s.waves[0] && s.waves[0].state === 'succeeded') window.__seen.api = performance.now();
                else await new Promise((done) => setTimeout(done, 100));
              }
            })();
            const look = () => {
              const wave = document.querySelector("#waves [data-wave='1']");
              if (!window.__seen.dom && wave && wave.dataset.state === 'succeeded') window.__seen.dom = performance.now();
            };
            new MutationObserver(look).observe(document.getElementById('main'), {subtree: true, childList: true});
            look();
            """, RELEASE)
        wave1 = "#waves [data-wave='1']"
        b.wait("wave 1 to finish, live", lambda: b.attr(wave1, "data-state") == "succeeded", 90)
        seen = b.wait("both times", lambda: (lambda x: x if x.get("api") and x.get("dom") else None)(
            b.driver.execute_script("return window.__seen;")))
        late = seen["dom"] - seen["api"]
        print(f"the page showed wave 1's end {late:.0f} ms after the API first said so")
        # Live means at the change, not at a reload or at the long poll's 25 s
        # deadline. How soon (the goal is within a second) is a figure of
        # `scripts/bench console`, not a pass mark here: under the sanitizers on
        # a busy machine the coordinator itself is several times slower.
        check(late < 10000, f"the page showed wave 1's end {late:.0f} ms after the API did: not live")
        b.wait("the control point", lambda: "control point" in b.text("#waiting"), 30)
        check("1" in b.text(f"{wave1} [data-count='succeeded']"), b.text(wave1))
        check(b.attr("#waves [data-wave='2']", "data-state") == "pending", b.text("#waves"))
        check("2" in b.text("#waves [data-wave='2'] [data-count='pending']"), b.text("#waves"))
        # A large release lists one page of its hosts, or those in one state.
        rows = lambda: sorted(r.get_attribute("data-host") for r in b.all("#rollout-hosts tr[data-host]"))
        b.click("#host-pager button[data-filter='pending']")
        b.wait("the pending hosts only", lambda: rows() == ["web-2", "web-3"])
        check("1–2 / 2" in b.text("#host-range"), b.text("#host-pager"))
        check(b.attr("#waves [data-wave='1']", "data-state") == "succeeded", b.text("#waves"))
        b.click("#host-pager button[data-filter='all']")
        b.wait("every host again", lambda: rows() == ["web-1", "web-2", "web-3"])
        b.page("rollout-gate")
        b.act("gate", "wave 1 healthy")
        b.wait("the rollback to end", lambda: b.state() == "rolled_back", 120)
        # (Counted once changes have answered some: a poll still waiting is in no
        # resource timing.)
        long_polls = b.driver.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
            ".filter((n) => n.includes('/status?') && n.includes('wait=25') && n.includes('revision=')).length;")
        check(long_polls > 0, "the rollout page follows the release by long poll (status?wait=&revision=)")
        check(b.driver.execute_script("return window.__stillTheSamePage;") == "yes",
              "the page was reloaded while following the rollout")
        b.wait("web-3's failure, with the step it failed at",
               lambda: "health_checking" in b.text("#rollout-hosts tr[data-host='web-3'] .reason"))
        row = b.text("#rollout-hosts tr[data-host='web-3']")
        check("database unreachable" in row, f"web-3's hook output: {row}")
        check(b.attr("#waves [data-wave='2']", "data-state") == "failed", b.text("#waves"))
        web2 = b.text("#rollout-hosts tr[data-host='web-2']")
        check("Rollback" in web2, f"web-2 moved and was rolled back: {web2}")
        b.page("rollout-rolled-back")
        actions = b.actions()
        check("close" in actions and "start" not in actions, f"after the rollback: {actions}")
        b.go(f"/releases/{RELEASE}")
        b.wait("the timeline", lambda: b.all("#history tr[data-action='gate']"))
        check("zhang.rm" in b.text("#history tr[data-action='gate']"), b.text("#history"))
        check(b.all("#history tr[data-action='rollback']"), b.text("#history"))
        b.page("release-rolled-back")
    finally:
        b.close()


def scenario_preflight():
    """An approver reviewing a release sees its pre-flight: one host would
    fail (it does not trust the publisher key), named first with why; the
    other is ready. The approver overrides the round with a reason."""
    b = Browser("approver")
    try:
        b.sign_in("wang.approver")
        b.open(f"/releases/{RELEASE}")
        b.wait_css("#release-id")
        # The page follows a round whose answers are still coming.
        b.wait("every host's answer", lambda: b.text("#preflight [data-count='waiting']").endswith(" 0")
               and len(b.all("#preflight-hosts tr[data-host]")) == 2, 60)
        rows = b.all("#preflight-hosts tr[data-host]")
        states = [(r.get_attribute("data-host"), r.get_attribute("data-state")) for r in rows]
        check(states == [("web-2", "would_fail"), ("web-1", "ready")],
              f"the host that would fail first, then the ready one: {states}")
        web2 = b.text("#preflight-hosts tr[data-host='web-2']")
        check("does not trust" in web2, f"why web-2 would fail: {web2}")
        check("1" in b.text("#preflight [data-count='would_fail']"), b.text("#preflight"))
        actions = b.actions()
        check({"preflight", "preflight-override"} <= actions, f"an approver's pre-flight buttons: {actions}")
        b.page("release-preflight")
        b.act("preflight-override", "web-2 gets the key at the window; excluded if not")
        b.wait("the override", lambda: "wang.approver" in b.text("#preflight-override"))
        check("excluded if not" in b.text("#preflight-override"), b.text("#preflight"))
        check("preflight-override" not in b.actions(), f"no second override: {b.actions()}")
        b.page("release-preflight-overridden")
    finally:
        b.close()


def scenario_viewer():
    """A viewer sees every page but no button to act; a forged request from
    their session is refused; signing out ends the session."""
    b = Browser("viewer")
    try:
        b.sign_in("zhao.viewer")
        b.open(f"/releases/{RELEASE}")
        b.wait_css("#release-id")
        b.wait_css("#history")
        check(not b.all("#actions") and not b.all("button[data-action]"),
              f"a viewer sees no action buttons: {b.text('#actions')}")
        b.click("button[data-doc='plan']")  # a download: the page stays, the console stays clean
        b.page("viewer-release")
        b.allowed.append(f"/api/v1/releases/{RELEASE}/approve - Failed to load resource: the server responded with a status of 403")
        status = b.fetch("POST", f"/api/v1/releases/{RELEASE}/approve", body='{"comment":"forged"}')
        check(status == 403, f"a viewer's approve with the CSRF token: {status}")
        status = b.fetch("POST", f"/api/v1/releases/{RELEASE}/approve", csrf=None, body='{"comment":"forged"}')
        check(status == 403, f"a viewer's approve without the CSRF token: {status}")
        b.collect_logs()
        b.allowed.pop()
        b.driver.refresh()
        b.wait_css("#release-id")
        check(b.state() == "in_review", f"the forged approvals changed nothing: {b.state()}")

        # Every other page, with what it must show.
        b.go("/hosts")
        b.wait("the hosts", lambda: b.all("#hosts tr[data-host='web-1']"))
        check("env=production" in b.text("#hosts"), b.text("#hosts"))
        b.page("hosts")
        b.find("#hosts tr[data-host='web-1'] a").click()
        b.wait("the host", lambda: b.text("#host-name") == "web-1")
        check("c3m-video" in b.text("main"), b.text("main"))
        b.page("host")
        b.go("/outbox")
        b.wait_css("#outbox")
        b.page("outbox")
        b.go("/freezes")
        b.wait_css("#calendar")
        check(len(b.all("#calendar tbody td")) == 42, "six weeks of days")
        check("year-end change freeze" in b.text("#freezes"), b.text("#freezes"))
        check(b.all("#calendar .chip.freeze"), "the freeze is on the calendar")
        check(not b.all("#freeze-form"), "a viewer cannot add a freeze")
        b.page("freezes")
        b.go("/audit")
        b.wait_css("#watch-result")
        b.wait("the audit trail", lambda: b.all("#audit tbody tr[data-action='session.start']"))
        b.page("viewer-audit")
        b.go("/records")
        b.wait_css("#kpis")
        check(b.all("#report-exports button[data-format='html']"), b.text("main"))
        b.page("records")
        b.go("/releases")
        b.wait("the list", lambda: RELEASE in release_rows(b))
        b.page("viewer-releases")

        cookie = b.driver.get_cookie("fabu_session")
        check(cookie is not None, "the session cookie is set")
        check(cookie.get("httpOnly") and cookie.get("secure"), f"the cookie is HttpOnly and Secure: {cookie}")
        b.find("#signout").click()
        b.wait_css("#signin")
        check(b.driver.get_cookie("fabu_session") is None, "signing out clears the cookie")
        # The old cookie, put back, no longer works.
        b.driver.add_cookie({k: cookie[k] for k in ("name", "value", "path", "secure", "httpOnly") if k in cookie})
        b.allowed.append("Failed to load resource: the server responded with a status of 401")
        status = b.fetch("GET", "/api/v1/releases", csrf=None)
        check(status == 401, f"the ended session's cookie: {status}")
        b.collect_logs()
    finally:
        b.close()


def scenario_zh():
    """A person switches to Chinese; the console speaks the procedure's terms,
    and remembers the choice in another browser."""
    b = Browser("zh")
    try:
        b.sign_in("li.approver")
        b.wait("the list", lambda: RELEASE in release_rows(b))
        check("Releases" in b.text("#nav"), f"English first (the browser's language): {b.text('#nav')}")
        from selenium.webdriver.support.ui import Select
        Select(b.find("#lang")).select_by_value("zh-CN")
        b.wait("Chinese labels", lambda: "发布" in b.text("#nav") and "审计记录" in b.text("#nav"))
        b.wait("the list again", lambda: RELEASE in release_rows(b))
        check("评审中" in b.text("#releases"), f"states in the procedure's terms: {b.text('#releases')}")
        check("发布负责人" in b.text("#releases thead"), b.text("#releases thead"))
        b.page("zh-CN-releases")
        b.go(f"/releases/{RELEASE}")
        b.wait_css("#history")
        body = b.text("main")
        for term in ("发布方案", "发布的目的和背景", "发布失败情况下的退回方案", "上线方案", "发布过程记录", "评审中", "提交评审"):
            check(term in body, f"'{term}' on the release page in zh-CN:\n{body[:2000]}")
        check(b.driver.execute_script("return document.documentElement.lang") == "zh-CN", "html lang")
        b.page("zh-CN-release")
    finally:
        b.close()
    # Another browser, English by its own settings: the person's choice follows them.
    other = Browser("zh-other-browser", lang="en-US")
    try:
        other.sign_in("li.approver")
        other.wait("Chinese, remembered", lambda: "审计记录" in other.text("#nav"))
        other.page("zh-CN-remembered")
    finally:
        other.close()


SCENARIOS = {"approve": scenario_approve, "rollout": scenario_rollout, "preflight": scenario_preflight,
             "viewer": scenario_viewer, "zh-CN": scenario_zh}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        SCENARIOS[sys.argv[1]]()
    except Failed as e:
        print(f"FAILED {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"passed {sys.argv[1]}")
