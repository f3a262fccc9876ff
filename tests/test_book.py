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
# A Markdown link to another notebook: [text](08_lrp_rules_vgg16.ipynb) or (...ipynb#section)
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
        heading = next(line[2:] for text in markdown for line in text.splitlines() if line.startswith("# "))
        self.title = re.sub(r"[`*]", "", heading).strip()
        self.figures = sum(any(mime.startswith("image/") for mime in out.get("data", {}))
                           for c in nb["cells"] for out in c.get("outputs", []))
        self.equations = sum(len(MATH.findall(text)) for text in markdown)
        self.links = {m.group(1) for text in markdown for m in NOTEBOOK_LINK.finditer(text)}

    def __repr__(self):
        return self.name


PAGES = [Notebook(path) for path in NOTEBOOKS]


def test_the_workbook_is_what_the_checks_expect():
    """Guards the checks below against passing vacuously."""
    assert len(PAGES) >= 11, [nb.name for nb in PAGES]
    by_name = {nb.name[:2]: nb for nb in PAGES}
    for number in ("02", "05", "06"):
        assert by_name[number].equations >= 10, by_name[number]
    assert all(nb.figures >= 1 for nb in PAGES), [(nb, nb.figures) for nb in PAGES]


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
    """The front page and every notebook's page that was built (a missing one fails below)."""
    return [page for page in [site / "index.html"] + [site / nb.page for nb in PAGES] if page.is_file()]


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
    for nb in PAGES:
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
    for nb in PAGES:
        assert f"{nb.page}" in {urlsplit(a).path for a in index}, f"index does not link {nb.page}"
    for nb in PAGES:
        hrefs = {urlsplit(a).path for tag, a in _parse(site / nb.page).refs if tag == "a"}
        for target in nb.links:
            assert f"{target}.html" in hrefs, f"{nb.name} links {target}.ipynb; page lacks it"


def _notebook(markdown: str, code: str) -> str:
    cell = {"cell_type": "code", "id": "code", "execution_count": 1, "source": code, "outputs": [],
            "metadata": {"jupyter": {"source_hidden": True}, "tags": ["solution"]}}
    text = {"cell_type": "markdown", "id": "text", "metadata": {}, "source": markdown}
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python", "pygments_lexer": "ipython3"}}
    return json.dumps({"cells": [text, cell], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


def test_links_written_in_notebooks_resolve(tmp_path):
    """The link forms a notebook may use, in a two-notebook workbook built with book/'s setup:
    to another notebook, to a section of one, to the learning path (the front page); and a
    cell saved collapsed stays collapsed."""
    shutil.copytree(BOOK, tmp_path / "book", ignore=shutil.ignore_patterns("_build", "notebooks"))
    (tmp_path / "README.md").write_text("# toy\n\n## Quickstart\n\n`make lab`\n\n## The workbook\n")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "README.md").write_text("# The workbook\n\n| notebook |\n| --- |\n"
                                         "| [00_a](00_a.ipynb) |\n| [01_b](01_b.ipynb) |\n")
    (notebooks / "00_a.ipynb").write_text(_notebook(
        "# 00 · A\n\n## Part one\n\nSee [notebook 01](01_b.ipynb), [its part two](01_b.ipynb#part-two)"
        " and [the learning path](README.md).", "answer = 42"))
    (notebooks / "01_b.ipynb").write_text(_notebook("# 01 · B\n\n## Part two\n\nBack to "
                                                    "[part one](00_a.ipynb#part-one).", "x = 1"))
    out = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          str(tmp_path / "book"), str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    a = _parse(out / "notebooks" / "00_a.html")
    hrefs = [address for tag, address in a.refs if tag == "a"]
    for expected in ("01_b.html", "01_b.html#part-two", "../index.html"):
        assert expected in hrefs, (expected, hrefs)
    assert "00_a.html#part-one" in [address for tag, address in _parse(out / "notebooks" / "01_b.html").refs]
    assert "part-two" in _parse(out / "notebooks" / "01_b.html").ids
    page = (out / "notebooks" / "00_a.html").read_text(encoding="utf-8")
    assert re.search(r'<details class="[^"]*hide[^"]*above-input', page), "the collapsed cell is shown"
    front = [address for tag, address in _parse(out / "index.html").refs if tag == "a"]
    assert {"notebooks/00_a.html", "notebooks/01_b.html"} <= set(front), front


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
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        if not self.page.locator("script[src*='mathjax']").count():
            return
        try:
            self.page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                        timeout=20_000)
        except PlaywrightTimeout:
            raise AssertionError(f"MathJax did not start on {self.page.url}; requests outside the "
                                 f"site: {self.outside}; failed: {self.failed}") from None
        self.page.evaluate("() => MathJax.startup.promise.then(() => true)")

    def check_clean(self):
        assert not self.outside, f"requests outside the site: {self.outside}"
        assert not self.failed, f"failed requests: {self.failed}"
        assert not self.errors, f"JavaScript errors: {self.errors}"


@pytest.fixture()
def visit(browser, server, request, tmp_path):
    """A fresh browser page; after a failed test, a screenshot of it (path on stderr)."""
    failed = request.session.testsfailed
    page = _Visit(browser, server)
    yield page
    try:
        if request.session.testsfailed > failed:      # the call's report comes before teardown
            page.page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"screenshot: {tmp_path / 'failure.png'}", file=sys.stderr)
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
@pytest.mark.parametrize("nb", PAGES, ids=[nb.name for nb in PAGES])
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
    assert rows.count() == len(PAGES)
    linked = [rows.nth(i).locator("a").first.get_attribute("href") for i in range(rows.count())]
    assert linked == [nb.page for nb in PAGES], linked

    sidebar = visit.page.locator("nav.bd-docs-nav a.reference.internal")
    order = [urlsplit(a).path for a in sidebar.evaluate_all("l => l.map(a => a.getAttribute('href'))")]
    assert order == [nb.page for nb in PAGES], order

    # follow the learning path's link to notebook 07: its page opens, equations typeset
    rows.nth(6).locator("a").first.click()
    visit.page.wait_for_url(f"**/{PAGES[6].page}")
    visit.typeset()
    assert PAGES[6].title in visit.page.title()
    assert visit.page.evaluate(_MATH_STATE)["typeset"] > 0
    visit.check_clean()
