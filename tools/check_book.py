"""Open the built book in headless Chromium and report what a reader would see broken.

    python tools/check_book.py _build/html --screenshots _build/screenshots

For every page: an execution error shown in an output, an image or other resource that did
not load, math that MathJax did not typeset (or typeset as an error), a figure output
without a caption, and an internal link to a missing page or anchor. Prints one line per
problem and exits 1 if there is any. Chromium is driven through Playwright with the system
browser (``apt-get install chromium``; Playwright's own browser download is not needed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# Evaluated in the page once MathJax has finished (or was never there).
MATHJAX_STARTED_JS = """() => !document.querySelector('script[src*="mathjax" i]')
    || Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise)"""

PAGE_PROBLEMS_JS = """() => {
  const problems = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push('image did not load: ' + img.getAttribute('src'));
  }
  for (const el of document.querySelectorAll('.math')) {
    if (!el.querySelector('mjx-container') && el.tagName !== 'MJX-CONTAINER')
      problems.push('math not typeset: ' + el.textContent.trim().slice(0, 60));
  }
  for (const el of document.querySelectorAll('mjx-merror'))
    problems.push('math error: ' + (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80));
  for (const el of document.querySelectorAll('.output.traceback, .output.error')) {
    const lines = (el.querySelector('pre') || el).textContent.trim().split('\\n');
    problems.push('execution error shown: ' + lines[lines.length - 1].slice(0, 120));
  }
  for (const img of document.querySelectorAll('.cell_output img')) {
    if (!img.closest('figure') || !img.closest('figure').querySelector('figcaption'))
      problems.push('figure without caption: ' + (img.closest('.cell') || img).id);
  }
  return problems;
}"""


def find_chromium() -> str | None:
    """Path of a Chromium executable on PATH, or None."""
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class _LinksAndIds(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])


def broken_links(html_dir: Path, pages: list[Path]) -> list[str]:
    """Internal links of ``pages`` whose target file or ``#anchor`` does not exist."""
    parsed: dict[Path, _LinksAndIds] = {}

    def parse(path: Path) -> _LinksAndIds:
        if path not in parsed:
            parsed[path] = _LinksAndIds()
            parsed[path].feed(path.read_text(errors="replace"))
        return parsed[path]

    problems = []
    for page in pages:
        for href in parse(page).links:
            url = urlsplit(href)
            if url.scheme or url.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            name = f"{page.relative_to(html_dir)}: link {href}"
            if not target.exists():
                problems.append(f"{name} -> missing file")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in parse(target).ids:
                problems.append(f"{name} -> missing anchor")
    return problems


def check_book(html_dir: Path, screenshots: Path | None = None, chromium: str | None = None,
               math_timeout_ms: int = 20_000) -> list[str]:
    """Every problem found on the HTML pages of ``html_dir`` (empty when the book is fine)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    html_dir = html_dir.resolve()
    pages = sorted(p for p in html_dir.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts
                   and p.name not in {"genindex.html", "search.html"})
    if not pages:
        return [f"{html_dir}: no HTML pages"]
    problems = broken_links(html_dir, pages)
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium or find_chromium(),
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        for path in pages:
            name = str(path.relative_to(html_dir))
            failed.clear()
            page.goto(path.as_uri(), wait_until="load")
            try:  # MathJax 3 resolves startup.promise once the page is typeset
                # Wait on the script tag, not on window.MathJax: the configuration defines
                # window.MathJax before the (deferred) library has added `startup` to it.
                page.wait_for_function(MATHJAX_STARTED_JS, timeout=math_timeout_ms)
                page.evaluate("() => window.MathJax?.startup ? MathJax.startup.promise.then(() => true) : true")
            except PlaywrightTimeout:
                problems.append(f"{name}: MathJax did not finish in {math_timeout_ms} ms")
            problems += [f"{name}: {p}" for p in page.evaluate(PAGE_PROBLEMS_JS)]
            problems += [f"{name}: did not load {url}" for url in failed]
            if screenshots is not None:
                stem = name.removesuffix(".html").replace("/", "__")
                page.screenshot(path=str(screenshots / f"{stem}.png"))
                page.screenshot(path=str(screenshots / f"{stem}-full.jpg"), full_page=True, quality=50)
        browser.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, help="save a screenshot of every page here")
    args = parser.parse_args()
    if find_chromium() is None:
        sys.exit("no Chromium on PATH: apt-get install chromium")
    problems = check_book(args.html, args.screenshots)
    print("\n".join(problems) or f"{args.html}: no problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
