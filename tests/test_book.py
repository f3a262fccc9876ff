"""The workbook's website (``make book``: Sphinx + myst-nb, ``book/``), built once into a
temporary folder from the committed notebooks (nothing executed) and checked two ways:

* on disk: the build is warning-free (``-W``), every numbered notebook has a page with all its
  figures, and every local link, image, script and stylesheet of every page resolves to a
  built file (and a link's ``#fragment`` to an id on that page);
* in headless Chromium (the system ``chromium``, as in ``test_browser.py``), served by a
  loopback ``http.server``, with every request outside the site aborted and counted: each
  notebook page loads (HTTP 200, its title), its figures load (``naturalWidth > 0``), its
  equations are typeset by the bundled MathJax (every math element holds MathJax output, no
  TeX errors, no ``$`` left in the prose), and the front page shows the quickstart, the
  learning path table linking every notebook and the notebooks in order in the sidebar.

The browser tests are skipped, saying so, only where no Chromium executable is found.
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import json
import posixpath
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
# Inline $...$ or display $$...$$ math in Markdown (not an escaped \$).
MATH = re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$|(?<![\\$])\$(?!\$)[^$\n]+?(?<!\\)\$", re.S)
# A Markdown link to another notebook: [text](07_lrp_rules_vgg16.ipynb) or (...ipynb#section)
NOTEBOOK_LINK = re.compile(r"\]\(([0-9][0-9]_[^)#\s]*)\.ipynb(#[^)\s]*)?\)")

pytestmark = pytest.mark.slow
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium executable on PATH "
                                    "(Debian: apt-get install chromium; .ci/run does this)")


class Notebook:
    """What a notebook's page must show, read from the committed notebook."""

    def __init__(self, path: Path):
        nb = json.loads(path.read_text(encoding="utf-8"))
        markdown = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
        self.name = path.stem
        self.page = f"notebooks/{self.name}.html"
        self.title = next(line[2:].strip() for text in markdown for line in text.splitlines()
                          if line.startswith("# "))
        self.figures = sum("image/png" in out.get("data", {})
                           for c in nb["cells"] for out in c.get("outputs", []))
        self.equations = sum(len(MATH.findall(text)) for text in markdown)
        self.links = {m.group(1) for text in markdown for m in NOTEBOOK_LINK.finditer(text)}

    def __repr__(self):
        return self.name


BOOKS = [Notebook(path) for path in NOTEBOOKS]


def test_the_workbook_is_what_the_checks_expect():
    """Guards the checks below against passing vacuously."""
    assert len(BOOKS) == 11, [nb.name for nb in BOOKS]
    by_name = {nb.name[:2]: nb for nb in BOOKS}
    for number in ("02", "05", "06"):
        assert by_name[number].equations >= 10, by_name[number]
    assert all(nb.figures >= 1 for nb in BOOKS), [(nb, nb.figures) for nb in BOOKS]


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """``book/`` built once, warnings as errors, into a temporary folder."""
    out = tmp_path_factory.mktemp("book")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-d", str(out / "doctrees"), str(BOOK), str(out / "html")]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        pytest.fail(f"the book's build failed ({' '.join(command)}):\n"
                    f"{run.stdout[-3000:]}\n{run.stderr[-6000:]}")
    return out / "html"


# -- on disk ----------------------------------------------------------------------------------------

class _Page(html.parser.HTMLParser):
    """The ids of a page and the local addresses it uses (href/src of a, img, link, script)."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []     # (tag, address)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and tag in ("a", "img", "link", "script"):
                self.refs.append((tag, value))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _pages(site: Path) -> list[Path]:
    return [site / "index.html"] + [site / nb.page for nb in BOOKS]


def _local_target(site: Path, page: Path, address: str) -> tuple[Path, str] | None:
    """The built file and fragment a local address points to; None for other sites."""
    parts = urlsplit(address)
    if parts.scheme or parts.netloc:
        return None
    if not parts.path:
        return page, parts.fragment
    relative = posixpath.normpath(posixpath.join(page.parent.relative_to(site).as_posix(),
                                                 unquote(parts.path)))
    return site / relative, parts.fragment


def test_every_notebook_has_a_page_with_its_figures(site):
    for nb in BOOKS:
        page = site / nb.page
        assert page.is_file(), f"no page for {nb.name}"
        images = [a for tag, a in _parse(page).refs if tag == "img" and "_images/" in a]
        assert len(images) == nb.figures, (nb.name, images)
        for address in images:
            target, _ = _local_target(site, page, address)
            assert target.is_file() and target.stat().st_size > 0, (nb.name, address)


def test_every_local_link_resolves(site):
    broken, checked = [], 0
    for page in _pages(site):
        for tag, address in _parse(page).refs:
            target = _local_target(site, page, address)
            if target is None:
                continue
            path, fragment = target
            checked += 1
            name = f"{page.relative_to(site)}: <{tag}> {address}"
            if not path.resolve().is_relative_to(site.resolve()):
                broken.append(f"{name} (outside the site)")
            elif path.is_dir():
                if not (path / "index.html").is_file():
                    broken.append(f"{name} (a folder without index.html)")
            elif not path.is_file():
                broken.append(f"{name} (no such file)")
            elif fragment and path.suffix == ".html" and fragment not in _parse(path).ids:
                broken.append(f"{name} (no id {fragment!r} there)")
            if path.suffix == ".ipynb":
                broken.append(f"{name} (a notebook, not its page)")
    assert checked > 100, checked
    assert not broken, "\n".join(broken)


def test_links_between_notebooks_go_to_their_pages(site):
    """Every link to a notebook (learning path, notebooks) is a link to its built page."""
    index = [a for tag, a in _parse(site / "index.html").refs if tag == "a"]
    for nb in BOOKS:
        assert f"{nb.page}" in {urlsplit(a).path for a in index}, f"index does not link {nb.page}"
    for nb in BOOKS:
        hrefs = {urlsplit(a).path for tag, a in _parse(site / nb.page).refs if tag == "a"}
        for target in nb.links:
            assert f"{target}.html" in hrefs, f"{nb.name} links {target}.ipynb; page lacks it"


# -- in the browser ---------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    """The built site on a free loopback port; yields its base address."""
    handler = functools.partial(_Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class _Visit:
    """A page of the site with every request outside it aborted; records what went wrong."""

    def __init__(self, browser, base: str):
        self.base = base
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.route("**/*", self._route)
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.page.on("requestfailed", lambda r: r.url.startswith(base)
                     and self.failed.append(f"{r.failure} {r.url}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        url = route.request.url
        if url.startswith((self.base + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, path: str):
        response = self.page.goto(f"{self.base}/{path}", wait_until="load")
        assert response is not None and response.status == 200, (path, response and response.status)
        self.typeset()
        return response

    def typeset(self):
        """Wait for MathJax (a deferred script, on pages with math) to finish typesetting."""
        if self.page.locator("script[src*='mathjax']").count():
            self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                        timeout=30_000)
            self.page.evaluate("() => MathJax.startup.promise.then(() => true)")

    def check_clean(self):
        assert not self.outside, f"requests outside the site: {self.outside}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"JavaScript errors: {self.errors}"


@pytest.fixture()
def visit(browser, server, tmp_path):
    from playwright.sync_api import Error as PlaywrightError

    page = _Visit(browser, server)
    try:
        yield page
    except (AssertionError, PlaywrightError):
        page.page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        raise
    finally:
        page.page.close()


_MATH_STATE = """() => {
    const math = Array.from(document.querySelectorAll('article .math'));
    const prose = Array.from(document.querySelectorAll('article p, article li, article td, article th'))
        .filter(e => !e.closest('pre, code, .cell_output, .highlight'))
        .map(e => { const c = e.cloneNode(true);
                    c.querySelectorAll('mjx-container, code').forEach(m => m.remove());
                    return c.textContent; }).join('\\n');
    return {math: math.length,
            typeset: math.filter(m => m.querySelector('mjx-container')).length,
            errors: document.querySelectorAll('mjx-merror').length,
            dollars: (prose.match(/\\$[^$\\n]{1,60}/g) || []).slice(0, 5)};
}"""

_FIGURES = """() => Array.from(document.querySelectorAll('article .cell_output img'))
    .map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth}))"""
_FIGURES_LOADED = """() => { const a = Array.from(document.querySelectorAll('article .cell_output img'));
    return a.length > 0 && a.every(i => i.complete); }"""


@needs_chromium
@pytest.mark.parametrize("nb", BOOKS, ids=[nb.name for nb in BOOKS])
def test_notebook_page_shows_figures_and_typeset_equations(visit, nb):
    visit.open(nb.page)
    assert nb.title in visit.page.title(), (visit.page.title(), nb.title)
    assert visit.page.locator("article h1").first.inner_text().strip().startswith(nb.title[:2])

    visit.page.wait_for_function(_FIGURES_LOADED, timeout=30_000)
    figures = visit.page.evaluate(_FIGURES)
    assert len(figures) == nb.figures, figures
    assert all(f["width"] > 0 for f in figures), figures

    state = visit.page.evaluate(_MATH_STATE)
    if nb.equations:
        assert state["math"] >= nb.equations, (state, nb.equations)
    assert state["typeset"] == state["math"], state
    assert state["errors"] == 0, state
    assert not state["dollars"], f"untypeset $ in the prose: {state['dollars']}"
    visit.check_clean()


@needs_chromium
def test_front_page_quickstart_learning_path_and_order(visit):
    visit.open("index.html")
    article = visit.page.locator("article")
    assert visit.page.locator("article h1").first.inner_text().strip().startswith("xaikit")
    headings = [h.strip() for h in article.locator("h2").all_inner_texts()]
    assert any(h.startswith("Quickstart") for h in headings), headings
    assert any(h.startswith("The workbook") for h in headings), headings
    text = article.inner_text()
    assert "make lab" in text and "make test" in text

    rows = article.locator("table tbody tr")
    assert rows.count() == len(BOOKS)
    linked = [rows.nth(i).locator("a").first.get_attribute("href") for i in range(rows.count())]
    assert linked == [nb.page for nb in BOOKS], linked

    sidebar = visit.page.locator("nav.bd-docs-nav a.reference.internal")
    order = [urlsplit(a).path for a in sidebar.evaluate_all("l => l.map(a => a.getAttribute('href'))")]
    assert order == [nb.page for nb in BOOKS], order

    # follow the learning path's link to notebook 06: its page opens, equations typeset
    rows.nth(6).locator("a").first.click()
    visit.page.wait_for_url(f"**/{BOOKS[6].page}")
    visit.typeset()
    assert BOOKS[6].title in visit.page.title()
    assert visit.page.evaluate(_MATH_STATE)["typeset"] > 0
    visit.check_clean()
