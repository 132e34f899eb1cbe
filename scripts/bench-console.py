#!/usr/bin/python3
"""The web console's figures in headless Chromium (scripts/bench console).

Signs in as the given person, then loads each page of the console afresh
(browser cache cleared, a full navigation) and measures, with Chromium's own
clocks (performance.now(), relative to the navigation's start):
  - ready_ms: until the page shows its data (its "loading" line gone and its
    marker element present);
  - bytes: every byte the page fetched (navigation and resources);
and, as the baseline of the same run, the navigation to one small file of
the console (/ui/favicon.svg): what the browser, TLS and the server cost
before any page of ours runs. Prints one line per page:
  page NAME ready_ms BYTES REQUESTS
and `baseline ready_ms`, `assets raw_bytes gzip_bytes`.
Usage: bench-console.py URL USER TOKEN RELEASE ASSETS_DIR [RUNS]
"""
import gzip
import pathlib
import statistics
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, user, token, release, assets = sys.argv[1:6]
runs = int(sys.argv[6]) if len(sys.argv) > 6 else 5
url = url.rstrip("/")

# Each page and what shows it has its data.
PAGES = [
    ("releases", "/releases", "#releases tbody tr[data-release]"),
    ("release", f"/releases/{release}", "#release-state [data-state]"),
    ("rollout", f"/releases/{release}/rollout", "#rollout .wave, #rollout table"),
    ("hosts", "/hosts", "main table tbody tr"),
    ("freezes", "/freezes", "main h1, main h2"),
    ("audit", "/audit", "main table tbody tr"),
]

profile = tempfile.TemporaryDirectory(prefix="fabu-bench-console-")
options = Options()
options.binary_location = "/usr/bin/chromium"
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,800", "--ignore-certificate-errors", "--no-first-run",
            "--disable-extensions", "--disable-background-networking",
            f"--user-data-dir={profile.name}"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_window_size(1280, 800)


def wait(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"bench-console: waited {timeout:.0f} s for {what}; page says: "
                     + driver.execute_script("return document.body.innerText")[:500])


def fresh(path):
    """A full navigation with an empty cache; the cookie stays."""
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get("about:blank")
    driver.get(path)


READY = """
const [css] = arguments;
const loading = document.querySelector('main > p.muted');
return (!loading && document.querySelector(css)) ? performance.now() : null;
"""
WEIGHT = """
const all = [...performance.getEntriesByType('navigation'),
             ...performance.getEntriesByType('resource')];
return [all.reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0), all.length];
"""

try:
    driver.get(f"{url}/#/releases")
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#signin"), "the sign-in form")
    driver.find_element(By.CSS_SELECTOR, "#signin-user").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "#signin-token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    wait(lambda: driver.execute_script(
        "const e = document.querySelector('#who-name'); return e && e.innerText;") == user,
        f"{user} signed in")

    base = []
    for _ in range(runs):
        fresh(f"{url}/ui/favicon.svg")
        base.append(driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.responseEnd;"))
    print(f"baseline {statistics.median(base):.1f}")

    for name, route, marker in PAGES:
        ready, weight = [], None
        for _ in range(runs):
            fresh(f"{url}/#{route}")
            ready.append(wait(lambda: driver.execute_script(READY, marker), f"page {name}"))
            weight = driver.execute_script(WEIGHT)
        print(f"page {name} {statistics.median(ready):.1f} {weight[0]} {weight[1]}")

    raw = packed = 0
    for f in sorted(pathlib.Path(assets).iterdir()):
        data = f.read_bytes()
        raw += len(data)
        packed += len(gzip.compress(data, 9))
    print(f"assets {raw} {packed}")
finally:
    driver.quit()
    profile.cleanup()
