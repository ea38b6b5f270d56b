"""The search page in a real headless Chromium (Debian's package, driven by Playwright with
``executable_path``): a photo of an enrolled person is uploaded and the page shows their
name; removing someone from the page removes them from the gallery. Skips without Chromium.
The screenshot is kept in ``test-artifacts/`` (not committed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from facesearch.gallery.engine import Gallery
from tests.serving import AUTH, TOKEN, served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian: apt-get install chromium)")


@pytest.fixture
def browser():  # noqa: ANN201
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, base: str, token: str):  # noqa: ANN001, ANN201
    page = browser.new_page()
    page.goto(base)
    page.fill("#token", token)
    page.dispatch_event("#token", "change")  # the page keeps it and lists the people again
    return page


def test_the_page_names_the_person_in_an_uploaded_photo(browser, home: Path, faces_dir: Path) -> None:  # noqa: ANN001
    with Gallery(home) as g:
        g.enroll(faces_dir)
    with served(home) as base:
        page = open_page(browser, base, TOKEN)
        page.wait_for_selector("#people tr >> text=person_0003")
        page.set_input_files("#file", str(faces_dir / "person_0006" / "0001.jpg"))
        page.wait_for_selector("#answers .name")
        assert page.inner_text("#answers .name") == "person_0006"
        assert "score" in page.inner_text("#answers")
        assert page.eval_on_selector("#canvas", "c => c.height") > 10  # the photo is drawn, face boxed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search-page.png"), full_page=True)

        page.on("dialog", lambda dialog: dialog.accept())
        page.click("#people tr:has-text('person_0003') button")
        page.wait_for_function("() => !document.querySelector('#people').innerText.includes('person_0003')")
        listed = httpx.get(f"{base}/v1/identities", headers=AUTH).json()["identities"]
        assert "person_0003" not in {row["identity"] for row in listed} and len(listed) == 7


def test_the_page_says_when_the_token_is_wrong(browser, home: Path, faces_dir: Path) -> None:  # noqa: ANN001
    with Gallery(home) as g:
        g.enroll(faces_dir)
    with served(home) as base:
        page = open_page(browser, base, "wrong")
        page.set_input_files("#file", str(faces_dir / "person_0006" / "0001.jpg"))
        page.wait_for_function("() => document.querySelector('#status').innerText.length > 0")
        assert "bearer token" in page.inner_text("#status")
