"""Read the built book as a reader would: in headless Chromium, with no network.

Every page loads without console errors, every image on it loads, every internal link resolves,
and every chapter shows at least one figure or table produced by code. A screenshot of each
chapter (the whole page) is saved under ``_build/screenshots/``.

At two widths (a 1280 px desktop and a 390 px phone) every page is also read for the defect
classes a build check cannot see: visible warning text or local paths, "nan", doubled figure
prefixes (the rules of ``book/_ext/page_checks.py``, applied to the text the browser renders),
and tables whose columns are clipped: a table wider than its box must sit in a box that scrolls
horizontally, and its first (key) column must start inside the visible page.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"

pytestmark = pytest.mark.book

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    """A local server that does not print a traceback when the browser drops a connection it
    no longer needs (a page left mid-transfer): that is no error of the book's."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 (socketserver API)
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server(built_book) -> Iterator[str]:
    assert built_book.returncode == 0, "the book did not build"
    port = _free_port()
    handler = functools.partial(_Quiet, directory=str(HTML))
    httpd = _QuietServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(
            f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt: chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _pages() -> list[str]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    pages = [
        p.relative_to(HTML).as_posix()
        for p in HTML.rglob("*.html")
        if "_static" not in p.parts and "_sources" not in p.parts and p.name not in skip
    ]
    return sorted(pages)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


WIDTHS = (1280, 390)
"""Desktop and phone widths (CSS pixels) at which pages are read for layout defects."""

#: for each table: is it clipped? (wider than its box and no scrolling ancestor before the
#: article, or its key column starts left of the visible page)
CLIPPED_TABLES_JS = """
const out = [];
const article = document.querySelector('article') || document.body;
const view = document.documentElement.clientWidth;
for (const table of article.querySelectorAll('table')) {
  if (!table.offsetParent) continue;  // hidden (e.g. inside a closed toggle)
  const box = table.getBoundingClientRect();
  let node = table.parentElement, scrolls = false, limit = article.getBoundingClientRect().right;
  while (node && node !== article.parentElement) {
    const style = getComputedStyle(node);
    if (['auto', 'scroll'].includes(style.overflowX)) { scrolls = true; break; }
    node = node.parentElement;
  }
  const first = table.querySelector('tr > *');
  const firstLeft = first ? first.getBoundingClientRect().left : box.left;
  const label = (table.innerText || '').trim().slice(0, 40).replace(/\\s+/g, ' ');
  if (!scrolls && box.right > Math.min(limit, view) + 2) out.push('wider than the page, no scroll: ' + label);
  if (firstLeft < -2) out.push('key column off-screen to the left: ' + label);
}
return out;
"""


def _settle(driver) -> None:
    driver.execute_script("return document.readyState")
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const imgs = Array.from(document.images);"
        "Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => {i.onload = i.onerror = r;})))"
        ".then(() => setTimeout(done, 300));"
    )


def test_pages_have_no_defects_at_two_widths(server: str, driver) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import page_checks

    problems: list[str] = []
    for width in WIDTHS:
        driver.set_window_size(width, 1600)
        for page in _pages():
            driver.get(f"{server}/{page}")
            _settle(driver)
            html = driver.execute_script("return document.documentElement.outerHTML;")
            problems += [f"[{width}px] {p}" for p in page_checks.problems(page, html)]
            problems += [
                f"[{width}px] {page}: table {p}" for p in driver.execute_script(CLIPPED_TABLES_JS)
            ]
    driver.set_window_size(1280, 2000)
    assert not problems, "\n".join(problems[:40])


def test_clipped_table_detector_can_fail(server: str, driver) -> None:
    """The clipping check flags a wide table with no scrolling box (so it can fail)."""
    driver.set_window_size(390, 1600)
    driver.get(f"{server}/{_pages()[0]}")
    _settle(driver)
    driver.execute_script(
        "const t = document.createElement('table');"
        "t.innerHTML = '<tr><td style=\\'white-space:nowrap\\'>' + 'wide '.repeat(200) + '</td></tr>';"
        "const a = document.querySelector('article') || document.body;"
        "const d = document.createElement('div'); d.style.overflowX = 'visible';"
        "d.appendChild(t); a.appendChild(d);"
        "for (let n = d; n; n = n.parentElement) { if (n.style) n.style.overflowX = 'visible'; }"
    )
    found = driver.execute_script(CLIPPED_TABLES_JS)
    driver.set_window_size(1280, 2000)
    assert any("wider than the page" in f for f in found), found


def test_pages_in_browser(server: str, driver, chapters) -> None:
    pages = _pages()
    assert any(p.startswith("book/") for p in pages), f"no chapter pages under {HTML}"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    links: set[str] = set()
    host = urllib.parse.urlparse(server).netloc
    for page in pages:
        url = f"{server}/{page}"
        driver.get(url)
        driver.execute_script("return document.readyState")
        # MathJax and images may still be loading: wait until every image has settled.
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const imgs = Array.from(document.images);"
            "Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => {i.onload = i.onerror = r;})))"
            ".then(() => setTimeout(done, 300));"
        )
        for entry in driver.get_log("browser"):
            if entry.get("level") == "SEVERE":
                problems.append(f"{page}: console error: {entry.get('message')}")
        broken = driver.execute_script(
            "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src);"
        )
        problems += [f"{page}: image did not load: {src}" for src in broken]
        hrefs = driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"
        )
        for href in hrefs:
            parsed = urllib.parse.urlparse(href)
            if parsed.netloc == host and parsed.scheme.startswith("http"):
                links.add(parsed._replace(fragment="", query="").geturl())
        stem = Path(page).stem
        # chapters only (book/<stem>.html), not the API pages of the same stem (book/api/...)
        if Path(page).parent.as_posix() == "book" and stem in chapters:
            produced = driver.execute_script(
                "return document.querySelectorAll("
                "'.cell_output img, .cell_output table, figure img[src*=\"_images\"]').length;"
            )
            if not produced:
                problems.append(f"{page}: no figure or table produced by code")
            # whole page: grow the window to the page's height (capped) for the screenshot
            height = driver.execute_script("return document.documentElement.scrollHeight;")
            driver.set_window_size(1280, min(int(height) + 100, 20000))
            driver.save_screenshot(str(shots / f"{stem}.png"))
            driver.set_window_size(1280, 2000)
    for link in sorted(links):
        code = _status(link)
        if code != 200:
            problems.append(f"internal link {link} returned {code}")
    assert not problems, "\n".join(problems[:40])


def test_site_root_serves_a_favicon(server: str) -> None:
    """Browsers ask for ``/favicon.ico`` on pages with no icon link (the root redirect page
    Jupyter Book writes has none); a 404 there is a console error on the reader's first page."""
    assert _status(f"{server}/favicon.ico") == 200
    assert (HTML / "favicon.ico").read_bytes()[:4] == b"\x00\x00\x01\x00", (
        "favicon.ico is not an ICO file"
    )
