"""Render a report page in headless Chromium: what a reader's browser shows, checked and screenshot.

Used by the report test (does the page really render: images decoded, tables
laid out) and by ``docs/make_browse_screenshots.py``.
"""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

# Appended to a copy of the page: once everything has loaded, the browser writes what it
# actually rendered into the DOM, which --dump-dom then prints.
_PROBE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (i) {
    return {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight};
  });
  var tables = Array.prototype.map.call(document.querySelectorAll('table'), function (t) {
    return {rows: t.rows.length, width: t.getBoundingClientRect().width};
  });
  var probe = document.createElement('pre');
  probe.id = 'gandl-probe';
  probe.textContent = JSON.stringify({images: images, tables: tables, title: document.title});
  document.body.appendChild(probe);
});
</script>"""


def find_browser() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _run(browser: str, args: list[str], timeout: float) -> str:
    # --no-sandbox: Chromium refuses to start as root (CI containers) with its sandbox on
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(browser).name} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout


def rendered(page: Path, browser: str | None = None, timeout: float = 60) -> dict:
    """Open ``page`` in headless Chromium and return what it rendered after loading.

    ``{"images": [{"alt", "complete", "width", "height"}], "tables": [{"rows", "width"}], "title"}``:
    an image that did not decode has width 0.
    """
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no browser found (looked for {', '.join(BROWSERS)})")
    page = Path(page)
    html = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name  # the report is self-contained (images inlined)
        probe.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
        dom = _run(browser, ["--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri()], timeout)
    found = re.search(r'<pre id="gandl-probe">(.*?)</pre>', dom, re.S)
    if found is None:
        raise RuntimeError(f"{page}: the page never finished loading in the browser")
    return json.loads(html_module.unescape(found.group(1)))


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 1600, browser: str | None = None,
               timeout: float = 60) -> Path:
    """Save a PNG of the top ``width`` x ``height`` pixels of ``page`` as Chromium draws it."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no browser found (looked for {', '.join(BROWSERS)})")
    out = Path(out).resolve()
    _run(browser, [f"--window-size={width},{height}", "--virtual-time-budget=5000", f"--screenshot={out}",
                   Path(page).resolve().as_uri()], timeout)
    return out
