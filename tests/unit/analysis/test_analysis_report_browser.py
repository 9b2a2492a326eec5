"""report.html in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
scripts/setup.sh installs) driven by selenium (pinned in the dev dependencies).

The report is made from the repository's twin capture (data/twin-gso-retransmission) with the lab
model recorded in its manifest, as the playbooks record it. The page must load with its title and
heading, every figure must load (each <img> complete with a natural width; an inline <svg> drawn),
and every link and source that is not a data: URI must be a file beside the report. A machine
without the browser fails this test with what to install: it is never skipped.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from mvpn_lab.cli import main as lab_main
from mvpn_lab.collection import filter_plugin

TWIN = Path(__file__).parent / "data" / "twin-gso-retransmission" / "run"
INSTALL = "apt-get install chromium chromium-driver (scripts/setup.sh does), and pip install -e '.[dev]'"
TIMEOUT_S = 60


def _browser() -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.fail(f"the report's browser test needs selenium ({exc}): {INSTALL}", pytrace=False)
    binary = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        missing = " and ".join(n for n, p in (("chromium", binary), ("chromedriver", driver)) if not p)
        pytest.fail(f"the report's browser test needs headless Chromium: no {missing} on PATH; {INSTALL}",
                    pytrace=False)  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(TIMEOUT_S)
    browser.set_script_timeout(TIMEOUT_S)
    return browser


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(TWIN, run_dir)
    lab_model = filter_plugin("lab_model")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["inventory"] = {"model": lab_model.lab_model(lab_model.topology_defaults())}
    manifest["profile"] = "wlan"
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    assert lab_main(["report", str(run_dir), "-q"]) == 0
    return run_dir / "report.html"


# every <img>: loaded? every element's href and src, as written in the page
_PAGE_FACTS = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
Promise.all(images.map(i => i.decode().catch(() => null))).then(() => done({
  title: document.title,
  h1: Array.from(document.querySelectorAll('h1')).map(h => h.textContent),
  images: images.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                            height: i.naturalHeight, scheme: i.src.split(':')[0]})),
  inline_svgs: document.querySelectorAll('svg').length,
  links: Array.from(document.querySelectorAll('[href], [src]'))
           .map(e => e.getAttribute('href') ?? e.getAttribute('src')),
  ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
}));
"""


def _check_link(link: str, base: Path, ids: set[str]) -> str | None:
    """Why ``link`` is broken, or None: data: URIs load (the images say so), a #fragment names an
    element of the page, anything else must be a file beside the report (nothing is fetched)."""
    if link.startswith("data:"):
        return None
    if link.startswith("#"):
        return None if link[1:] in ids else "no element with that id"
    parts = urlsplit(link)
    if parts.scheme and parts.scheme != "file":
        return "not a local file (the report must be self-contained)"
    target = Path(unquote(parts.path)) if parts.scheme else base / unquote(parts.path)
    return None if target.exists() else f"{target} does not exist"


def test_the_report_renders_in_headless_chromium(report: Path) -> None:
    run_dir = report.parent
    figures = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert "topology.svg" in figures and any(n.endswith(".png") for n in figures)
    browser = _browser()
    try:
        browser.get(report.as_uri())
        facts = browser.execute_async_script(_PAGE_FACTS)
        console = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        browser.quit()

    assert facts["title"] == "Handover analysis: test2_wlan / 20261126T221957Z"
    assert facts["h1"] == [facts["title"]]
    # every figure of figures/ is in the page, and every one of them loaded
    assert len(facts["images"]) == len(figures), (facts["images"], figures)
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["scheme"] == "data", image
    assert any(i["alt"].startswith("The lab of this run (fig5") for i in facts["images"])
    assert facts["inline_svgs"] == 0  # the SVG is an <img> too, checked above
    # no broken link: every href/src that is not embedded resolves to a file beside the report
    broken = {link: why for link in facts["links"] if (why := _check_link(link, run_dir, set(facts["ids"])))}
    assert not broken, broken
    assert console == [], console


def test_the_markdown_reports_links_exist(report: Path) -> None:
    """report.md, the same report, points at figures/: each of its links is a file."""
    md = report.with_name("report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert "figures/topology.svg" in links
    broken = [link for link in links if _check_link(link, report.parent, set())]
    assert not broken, broken
