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
        with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
            page.click("#people tr:has-text('person_0003') button")
        assert deleted.value.ok, page.inner_text("#status")  # said on the page if the server refused
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


FOUR_SIDE_BY_SIDE = """async () => {
  const photo = document.createElement("canvas"); photo.width = 640; photo.height = 220;
  const c = photo.getContext("2d"); c.fillStyle = "#c8b8a8"; c.fillRect(0, 0, 640, 220);
  const image = new Image(); image.src = photo.toDataURL(); await image.decode();
  const names = ["Amar'e_Stoudemire", "n000000", "Jennifer_Lopez-Muniz", "Bartholomew_Longname"];
  const faces = names.map((name, i) => ({ box: [20 + i * 150, 40, 150 + i * 150, 200], identity: name,
    score: 0.61 - i * 0.05, matches: [] }));
  faces.push({ box: [600, 5, 640, 45], identity: "Edge_Person", score: 0.7, matches: [] });  // at the corner
  draw(image, faces);
  const canvas = document.querySelector("#canvas");
  return { labels: JSON.parse(canvas.dataset.labels), width: canvas.width, height: canvas.height };
}"""


@pytest.mark.parametrize("viewport", [{"width": 1100, "height": 800}, {"width": 375, "height": 740}])
def test_labels_of_faces_close_together_never_overlap_nor_leave_the_photo(browser, home: Path, faces_dir: Path, viewport: dict) -> None:  # noqa: ANN001
    """Four people side by side and one in the corner: every face's label is drawn, beside
    its own box, inside the canvas, and no two labels cross; at phone width too, where the
    page must not scroll sideways."""
    with Gallery(home) as g:
        g.enroll(faces_dir)
    with served(home) as base:
        page = browser.new_page(viewport=viewport)
        page.goto(base)
        drawn = page.evaluate(FOUR_SIDE_BY_SIDE)
        labels, width, height = drawn["labels"], drawn["width"], drawn["height"]
        assert sorted(label["n"] for label in labels) == [1, 2, 3, 4, 5]
        for label in labels:
            assert 0 <= label["x"] and label["x"] + label["w"] <= width and 0 <= label["y"] and label["y"] + label["h"] <= height
        for a in labels:
            for b in labels:
                if a is not b:
                    assert a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"] or b["y"] + b["h"] <= a["y"], (a, b)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"labels-{viewport['width']}.png"), full_page=True)


@pytest.fixture
def grouped(home: Path, tmp_path: Path, faces_dir: Path) -> list[int]:
    """A library of five faces of five people, enrolled unnamed and grouped as one person
    (a threshold nobody would choose, so the page has a wrong group to split): its faces."""
    from tests import planted
    from tests.conftest import CROP_ENCODER

    face = lambda person: faces_dir / f"person_{person:04d}" / "0000.jpg"  # noqa: E731
    (tmp_path / "library").mkdir()
    planted.compose([(face(1), (20, 40, 120)), (face(2), (300, 60, 140))]).save(tmp_path / "library" / "a.jpg")
    planted.compose([(face(3), (10, 10, 100)), (face(4), (200, 150, 110)), (face(5), (420, 30, 150))]).save(
        tmp_path / "library" / "b.jpg")
    with Gallery(home, detector="planted") as g:
        g.enroll(tmp_path / "library", model=CROP_ENCODER, unnamed=True)
        assert [group["faces"] for group in g.cluster(threshold=-1.0)["groups"]] == [5]
        return [f["id"] for f in g.faces(unnamed=True)]


@pytest.mark.parametrize("viewport", [{"width": 1100, "height": 900}, {"width": 375, "height": 740}])
def test_the_people_view_shows_groups_as_faces_to_split_and_name(browser, home: Path, grouped: list[int], viewport: dict) -> None:  # noqa: ANN001
    """The group's five faces are shown as pictures; two of them are split off into a group of
    their own, which is then named; the gallery says so after each step."""
    with served(home) as base:
        page = browser.new_page(viewport=viewport)
        page.goto(base)
        page.fill("#token", TOKEN)
        page.dispatch_event("#token", "change")
        page.wait_for_function("() => [...document.querySelectorAll('#groups .thumbs img')].filter(i => i.naturalWidth > 0).length === 5")
        assert page.inner_text("#groups .group .name") == "Group 1: 5 faces"
        page.click(f"#groups img[data-face='{grouped[0]}']")
        page.click(f"#groups img[data-face='{grouped[1]}']")
        page.click("#groups .group .split")
        page.wait_for_function("() => document.querySelectorAll('#groups .group').length === 2")
        groups = httpx.get(f"{base}/v1/people", headers=AUTH).json()["people"]
        assert sorted(row["faces"] for row in groups) == [2, 3]
        new = next(row["group"] for row in groups if row["faces"] == 2)
        card = f"#groups .group[data-group='{new}']"
        page.wait_for_function(f"() => [...document.querySelectorAll(\"{card} img\")].filter(i => i.naturalWidth > 0).length === 2")
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"people-{viewport['width']}.png"), full_page=True)
        old = next(row["group"] for row in groups if row["faces"] == 3)
        page.select_option(f"#groups .group[data-group='{new}'] .merge", str(old))  # one person grouped twice: merged
        page.wait_for_function("() => document.querySelectorAll('#groups .group').length === 1")
        merged = httpx.get(f"{base}/v1/people", headers=AUTH).json()["people"]
        assert [(row["group"], row["faces"]) for row in merged] == [(old, 5)]
        page.wait_for_function("() => [...document.querySelectorAll('#groups img')].filter(i => i.naturalWidth > 0).length === 5")
        page.click(f"#groups img[data-face='{grouped[0]}']")  # and split again
        page.click(f"#groups img[data-face='{grouped[1]}']")
        page.click("#groups .group .split")
        page.wait_for_function("() => document.querySelectorAll('#groups .group').length === 2")
        new = next(row["group"] for row in httpx.get(f"{base}/v1/people", headers=AUTH).json()["people"] if row["faces"] == 2)
        card = f"#groups .group[data-group='{new}']"
        page.wait_for_function(f"() => [...document.querySelectorAll(\"{card} img\")].filter(i => i.naturalWidth > 0).length === 2")
        page.fill(f"{card} .group-name", "ada")
        page.click(f"{card} .give-name")
        page.wait_for_selector("#people tr >> text=ada")
        page.wait_for_function("() => document.querySelectorAll('#groups .group').length === 1")
        faces = httpx.get(f"{base}/v1/faces", params={"person": "ada"}, headers=AUTH).json()["faces"]
        assert sorted(f["id"] for f in faces) == sorted(grouped[:2])
        page.fill("#groups .group .group-name", "n000000")  # refused, and said
        page.click("#groups .group .give-name")
        page.wait_for_function("() => document.querySelector('#people-status').innerText.includes('reserved')")
        page.click("#cluster")  # incremental: nothing new to group
        page.wait_for_function("() => document.querySelector('#clustered').innerText.startsWith('1 groups')")
