"""The leaderboard site in a real browser: headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import orjson
import pytest

from blueprint.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.full,  # a browser: tens of seconds
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                                          "(apt-get install chromium); .ci/run installs it")]


@pytest.fixture(scope="module")
def site(small_dataset, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    for name, extra in (("majority", ["--no-bertscore"]), ("gbdt", []), ("random", []),
                        ("persona_prior", ["--no-bertscore"])):
        preds = root / f"{name}.jsonl"
        opts = ["--model", str(tiny_model)] if name == "gbdt" else []
        assert main(["-q", "baseline", name, "--dataset", str(small_dataset), "--config", "5_clusters",
                     "--out", str(preds), *opts]) == 0
        assert main(["-q", "score", str(preds), "--dataset", str(small_dataset), "--config", "5_clusters", "--out",
                     str(root / "results" / f"{name}.json"), "--model", str(tiny_model), "--bootstrap", "30",
                     *extra]) == 0
    assert main(["-q", "leaderboard", str(root / "results"), "--out", str(root / "site")]) == 0
    return root / "site"


def _artifacts(tmp_path: Path) -> Path:
    out = Path(os.environ.get("BLUEPRINT_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_the_site_in_a_browser(site, tmp_path):
    from playwright.sync_api import sync_playwright

    board = orjson.loads((site / "leaderboard.json").read_bytes())
    artifacts = _artifacts(tmp_path)
    errors, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith("file://") else None)
        page.goto((site / "index.html").as_uri())
        page.screenshot(path=str(artifacts / "index.png"), full_page=True)
        # every model is in the table, in rank order
        names = page.locator("#board tbody tr td:nth-child(2)").all_inner_texts()
        assert names == [r["model_name"] for r in board] and len(names) == 4
        # a click on a header sorts by it, another click reverses
        col = page.locator("#board thead th", has_text="accuracy").first
        idx = page.locator("#board thead th").all_inner_texts().index(col.inner_text())
        col.click()
        asc = [float(x) for x in page.locator(f"#board tbody tr td:nth-child({idx + 1})").evaluate_all(
            "tds => tds.map(td => td.getAttribute('data-sort'))")]
        assert asc == sorted(asc) and col.get_attribute("aria-sort") == "ascending"
        col.click()
        desc = [float(x) for x in page.locator(f"#board tbody tr td:nth-child({idx + 1})").evaluate_all(
            "tds => tds.map(td => td.getAttribute('data-sort'))")]
        assert desc == sorted(desc, reverse=True)
        page.screenshot(path=str(artifacts / "index-sorted.png"), full_page=True)
        assert page.locator("#chart svg rect").count() == 4  # the chart has one bar per model
        # a model page opens from its link and holds its tables and charts
        page.locator("#board tbody tr td:nth-child(2) a", has_text="gbdt").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "gbdt"
        assert page.locator("#clusters tbody tr").count() == 5
        assert page.locator("#per-action svg rect").count() >= 1
        assert page.locator("svg[aria-label^='Diagonality']").count() >= 1
        assert page.locator("svg[aria-label^='Action confusion']").count() == 1
        page.screenshot(path=str(artifacts / "model-gbdt.png"), full_page=True)
        # a model scored without BERTScore shows a dash in that column, the others a number
        page.goto((site / "index.html").as_uri())
        headers = page.locator("#board thead th").all_inner_texts()
        col = headers.index("bertscore_f1") + 1
        shown = dict(zip(page.locator("#board tbody tr td:nth-child(2)").all_inner_texts(),
                         page.locator(f"#board tbody tr td:nth-child({col})").all_inner_texts()))
        assert shown["majority"] == shown["persona_prior"] == "–", shown
        assert all(re.fullmatch(r"-?\d\.\d{4} ±\d\.\d{4}", shown[m]) for m in ("gbdt", "random")), shown
        browser.close()
    assert not errors, errors
    assert not outside, outside  # nothing leaves the file
    for shot in ("index.png", "index-sorted.png", "model-gbdt.png"):
        assert (artifacts / shot).read_bytes().startswith(b"\x89PNG")


def test_the_site_holds_no_external_reference(site):
    for page in [site / "index.html", *(site / "models").glob("*.html")]:
        text = page.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "<link" not in text and "src=" not in text


def test_a_wide_board_scrolls_in_its_frame_with_the_model_in_view(site):
    """On a narrow screen the page itself does not scroll sideways: the table does, inside its frame, and the
    rank and model columns stay where they were. The heat maps carry a colour scale that names their range."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 700, "height": 900})
        page.goto((site / "index.html").as_uri())
        frame = page.locator("#board").locator("xpath=..")
        sizes = frame.evaluate("f => [f.scrollWidth, f.clientWidth, getComputedStyle(f).overflowX]")
        assert sizes[0] > sizes[1] and sizes[2] == "auto", sizes  # the table is wider than its frame, which scrolls
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the page does not
        model = page.locator("#board tbody tr td:nth-child(2)").first
        metric = page.locator("#board tbody tr td:nth-child(8)").first
        before = (model.bounding_box()["x"], metric.bounding_box()["x"])
        frame.evaluate("f => { f.scrollLeft = 400; }")
        after = (model.bounding_box()["x"], metric.bounding_box()["x"])
        assert after[0] == pytest.approx(before[0], abs=1) and after[1] < before[1] - 300, (before, after)
        # the model page's heat maps: a colour scale from 0 to the largest value, as ticks
        page.goto((site / "models").glob("*gbdt*.html").__next__().as_uri())
        scale = page.locator("svg[aria-label^='Action confusion'] g.legend")
        assert scale.count() == 1
        ticks = scale.locator("text").evaluate_all("ts => ts.map(t => t.textContent)")
        assert ticks[0] == "0" and float(ticks[-1]) > 0 and len(ticks) == 3
        assert page.locator("svg[aria-label^='Diagonality'] g.legend").count() >= 1
        browser.close()
