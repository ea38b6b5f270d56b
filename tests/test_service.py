"""`facesearch serve`: the HTTP API answers as the CLI does, refuses what it must (token,
size, bad images, bad names) with the CLI's messages, and never shows a stack trace."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from facesearch.gallery.engine import Gallery
from facesearch.gallery.locking import GalleryLock
from facesearch.serving.app import create_app
from facesearch.synthetic import write_dataset
from tests import badfiles
from tests.conftest import cli, cli_json
from tests.serving import AUTH, TOKEN, cli_env, served


@pytest.fixture
def gallery(home: Path, faces_dir: Path) -> Gallery:
    with Gallery(home) as g:
        g.enroll(faces_dir)
        yield g


@pytest.fixture
def client(gallery: Gallery) -> TestClient:
    return TestClient(create_app(gallery, TOKEN, max_upload_mb=1), raise_server_exceptions=False)


def photo(path: Path) -> dict:
    return {"file": (path.name, path.read_bytes(), "image/jpeg")}


def test_query_answers_as_the_cli_does(client: TestClient, faces_dir: Path) -> None:
    probe = faces_dir / "person_0004" / "0001.jpg"
    response = client.post("/v1/query?top_k=3", files=photo(probe), headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body == cli_json("query", probe, "--top-k", "3")
    assert body["identity"] == "person_0004" and len(body["faces"]) == 1 and len(body["matches"]) == 3


def test_identities_info_and_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "faces": 24}  # no token needed
    listed = client.get("/v1/identities", headers=AUTH).json()
    assert listed == cli_json("identities")
    info = client.get("/v1/info", headers=AUTH).json()
    assert info["faces"] == 24 and info["model"]["alignment"] == "crop"
    assert client.get("/v1/threshold", headers=AUTH).json() == cli_json("threshold")
    assert "/v1/query" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_enroll_keeps_the_photos_in_the_home_and_remove_deletes_them(client: TestClient, faces_dir: Path, home: Path) -> None:
    files = [("file", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted((faces_dir / "person_0001").glob("*.jpg"))]
    first = client.post("/v1/enroll", data={"identity": "Ada Lovelace"}, files=files, headers=AUTH)
    assert first.status_code == 200, first.text
    conflicts = first.json()["conflicts"]  # the same photos (by content) under another name
    assert first.json()["enrolled"] == 0 and len(conflicts) == 3 and conflicts[0]["enrolled_as"] == "person_0001"
    assert conflicts[0]["paths"] == ["0000.jpg"] and not (home / "uploads" / "Ada Lovelace").exists()
    new = [("file", ("new.png", badfiles.face_jpeg_bytes(identity=77, sample=1), "image/jpeg")),
           ("file", ("notes.jpg", b"not an image at all", "image/jpeg"))]
    report = client.post("/v1/enroll", data={"identity": "Ada Lovelace"}, files=new, headers=AUTH).json()
    assert report["enrolled"] == 1 and [f["path"] for f in report["failed"]] == ["notes.jpg"]
    kept = list((home / "uploads" / "Ada Lovelace").iterdir())
    assert len(kept) == 1 and kept[0].stat().st_mode & 0o777 == 0o600  # the bad upload is not kept
    assert {"identity": "Ada Lovelace", "faces": 1} in client.get("/v1/identities", headers=AUTH).json()["identities"]
    gone = client.delete("/v1/identities/Ada Lovelace", headers=AUTH)
    assert gone.json() == {"removed": "Ada Lovelace", "faces": 1}
    assert not (home / "uploads" / "Ada Lovelace").exists()
    missing = client.delete("/v1/identities/Ada Lovelace", headers=AUTH)
    assert missing.status_code == 404 and "no identity 'Ada Lovelace'" in missing.json()["error"]


def test_every_v1_call_needs_the_token(client: TestClient, faces_dir: Path) -> None:
    probe = faces_dir / "person_0004" / "0001.jpg"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        assert client.post("/v1/query", files=photo(probe), headers=headers).status_code == 401
        assert client.get("/v1/identities", headers=headers).status_code == 401
        assert client.get("/v1/info", headers=headers).status_code == 401
        refused = client.delete("/v1/identities/person_0001", headers=headers)
        assert refused.status_code == 401 and "bearer token" in refused.json()["error"]
        assert client.post("/v1/enroll", data={"identity": "x"}, files=photo(probe), headers=headers).status_code == 401
    assert client.get("/v1/identities", headers=AUTH).json()["identities"][0]["faces"] == 3  # nothing removed


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (badfiles.not_an_image, "not an image"),
        (badfiles.truncated_jpeg, "truncated"),
        (badfiles.empty_file, "empty"),
        (badfiles.tiny_png, "too small"),
    ],
)
def test_a_bad_image_gets_400_with_the_clis_message(client: TestClient, tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    path = make(tmp_path / "bad.jpg")
    response = client.post("/v1/query", files={"file": ("bad.jpg", path.read_bytes(), "image/jpeg")}, headers=AUTH)
    assert response.status_code == 400 and message in response.json()["error"]
    assert "Traceback" not in response.text and str(tmp_path) not in response.text


def test_a_decompression_bomb_is_refused(gallery: Gallery, tmp_path: Path) -> None:
    client = TestClient(create_app(gallery, TOKEN, max_upload_mb=10), raise_server_exceptions=False)
    bomb = badfiles.png_bomb(tmp_path / "bomb.png")
    response = client.post("/v1/query", files={"file": ("bomb.png", bomb.read_bytes(), "image/png")}, headers=AUTH)
    assert response.status_code == 400 and "decompression bomb" in response.json()["error"]


def test_uploads_over_the_limit_get_413_before_they_are_read(client: TestClient) -> None:
    big = b"\xff\xd8" + b"\0" * (2 * 2**20)  # 2 MB against a 1 MB limit
    response = client.post("/v1/query", files={"file": ("big.jpg", big, "image/jpeg")}, headers=AUTH)
    assert response.status_code == 413 and "over the limit of 1 MB" in response.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        for _ in range(40):
            yield b"x" * 65536

    streamed = client.post("/v1/query", content=chunks(), headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413


def test_a_body_without_a_file_and_bad_parameters(client: TestClient, faces_dir: Path) -> None:
    response = client.post("/v1/query", data={"nothing": "here"}, headers=AUTH)
    assert response.status_code == 400 and "multipart field 'file'" in response.json()["error"]
    probe = faces_dir / "person_0004" / "0001.jpg"
    response = client.post("/v1/query?top_k=0", files=photo(probe), headers=AUTH)
    assert response.status_code == 400 and "top_k" in response.json()["error"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "tab\there", "new\nline", "n000000", "", "x" * 201])
def test_identity_names_that_are_not_plain_are_refused(client: TestClient, faces_dir: Path, home: Path, name: str) -> None:
    response = client.post("/v1/enroll", data={"identity": name}, files=photo(faces_dir / "person_0001" / "0000.jpg"), headers=AUTH)
    assert response.status_code == 400 and "identity" in response.json()["error"]
    assert not (home / "uploads").exists() or not any((home / "uploads").iterdir())


def test_an_empty_gallery_answers_409(home: Path, faces_dir: Path) -> None:
    with Gallery(home) as g:
        client = TestClient(create_app(g, None), raise_server_exceptions=False)
        response = client.post("/v1/query", files=photo(faces_dir / "person_0001" / "0000.jpg"))
        assert response.status_code == 409 and "empty" in response.json()["error"]


def test_a_bug_is_a_bare_500_without_a_trace(gallery: Gallery, faces_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(create_app(gallery, TOKEN), raise_server_exceptions=False)
    monkeypatch.setattr(Gallery, "identities", lambda self: 1 / 0)
    response = client.get("/v1/identities", headers=AUTH)
    assert response.status_code == 500 and response.json() == {"error": "internal error (the server has logged it)"}


def test_the_page_is_one_offline_file(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere


def test_serve_refuses_another_host_without_a_token(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACESEARCH_TOKEN", raising=False)
    result = cli("serve", "--host", "0.0.0.0")
    assert result.exit_code == 1 and "set FACESEARCH_TOKEN" in result.stderr and "Traceback" not in result.stderr


def test_serve_over_real_http_while_the_cli_enrolls(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    """uvicorn on loopback: queries and an API enroll while a CLI enroll runs on the same
    home; every request answers and the final counts are exact."""
    with Gallery(home) as g:
        g.enroll(faces_dir)
    more = tmp_path / "more"
    write_dataset(more, identities=6, images_per_identity=3, seed=9, first_identity=100)
    env = cli_env(home)
    with served(home) as base:
        enroller = subprocess.Popen([sys.executable, "-m", "facesearch.cli.main", "enroll", str(more), "--commit-every", "2"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        answers = []

        def ask() -> None:
            probe = faces_dir / "person_0002" / "0001.jpg"
            for _ in range(10):
                answers.append(httpx.post(f"{base}/v1/query", files=photo(probe), headers=AUTH, timeout=60))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        api = httpx.post(f"{base}/v1/enroll", data={"identity": "via_api"}, headers=AUTH, timeout=120,
                         files={"file": ("a.jpg", badfiles.face_jpeg_bytes(identity=300), "image/jpeg")})
        for t in threads:
            t.join()
        assert enroller.wait(timeout=300) == 0
        assert api.status_code == 200 and api.json()["enrolled"] == 1
        assert all(a.status_code == 200 and a.json()["identity"] == "person_0002" for a in answers)
        info = httpx.get(f"{base}/v1/info", headers=AUTH, timeout=30).json()
        assert info["faces"] == 24 + 18 + 1 and info["identities"] == 8 + 6 + 1
    after = subprocess.run([sys.executable, "-m", "facesearch.cli.main", "info", "--json"], env=env, capture_output=True, text=True)
    assert json.loads(after.stdout)["faces"] == 43


def test_a_30_mb_upload_gets_413_under_the_default_limit(gallery: Gallery) -> None:
    client = TestClient(create_app(gallery, TOKEN), raise_server_exceptions=False)  # 10 MB
    response = client.post("/v1/query", files={"file": ("big.jpg", b"\xff" * (30 * 2**20), "image/jpeg")}, headers=AUTH)
    assert response.status_code == 413 and "10 MB" in response.json()["error"]


def test_a_write_while_another_process_holds_the_gallery_waits_then_answers_503(home: Path, faces_dir: Path) -> None:
    from facesearch.gallery.locking import GalleryLock

    with Gallery(home, lock_timeout=0.5) as g:
        g.enroll(faces_dir)
        client = TestClient(create_app(g, TOKEN), raise_server_exceptions=False)
        other = GalleryLock(home / "gallery.lock")  # a long CLI enroll, say
        other.acquire()
        try:
            busy = client.delete("/v1/identities/person_0001", headers=AUTH)
            assert busy.status_code == 503 and "held" in busy.json()["error"]
            probe = faces_dir / "person_0004" / "0001.jpg"
            assert client.post("/v1/query", files=photo(probe), headers=AUTH).json()["identity"] == "person_0004"
        finally:
            other.release()
        assert client.delete("/v1/identities/person_0001", headers=AUTH).json() == {"removed": "person_0001", "faces": 3}
        assert g.counts() == (7, 21)


def test_a_new_server_deletes_uploads_that_no_face_comes_from(home: Path, faces_dir: Path) -> None:
    """A server killed between keeping uploads and enrolling them leaves a person's photos
    behind; the next one to start on the home deletes them (and keeps every enrolled one)."""
    with Gallery(home) as gallery:
        client = TestClient(create_app(gallery))
        photo = faces_dir / "person_0001" / "0000.jpg"
        assert client.post("/v1/enroll", data={"identity": "kept"}, files=[("file", ("a.jpg", photo.read_bytes()))]).json()["enrolled"] == 1
        orphan = gallery.home.upload_folder("killed") / "0123abcd.jpg"
        orphan.parent.mkdir(parents=True)
        orphan.write_bytes(photo.read_bytes())
        kept = [p for p in gallery.home.uploads.glob("kept/*")]
        writer = GalleryLock(gallery.home.lock)  # another writer (a long CLI enroll) holds the gallery:
        writer.acquire()
        try:
            assert gallery.sweep_uploads() == 0 and orphan.exists()  # the server starts, sweeps later
        finally:
            writer.release()
        assert gallery.sweep_uploads() == 1
        assert not orphan.parent.exists() and all(p.exists() for p in kept) and len(kept) == 1
        create_app(gallery)  # what a new server does on start: nothing more to delete
        assert [p for p in gallery.home.uploads.glob("*/*")] == kept


def test_faces_people_and_one_to_one_over_http(client: TestClient, faces_dir: Path) -> None:
    """Issue 29's operations under /v1, with the CLI's keys; an unknown face is 404."""
    listed = client.get("/v1/faces", headers=AUTH).json()["faces"]
    assert len(listed) == 24 and set(listed[0]) == {"id", "person", "group", "path", "box", "quality"}
    assert client.get("/v1/faces?person=person_0002", headers=AUTH).json()["faces"][0]["person"] == "person_0002"
    assert client.post("/v1/cluster", headers=AUTH).json()["groups"] == []  # nothing unnamed
    people = client.get("/v1/people", headers=AUTH).json()["people"]
    assert len(people) == 8 and {row["faces"] for row in people} == {3}
    renamed = client.post("/v1/identities/person_0001/rename", data={"new": "ada"}, headers=AUTH)
    assert renamed.json() == {"person": "ada", "faces": 3}
    face = listed[-1]["id"]
    moved = client.post(f"/v1/faces/{face}/move", data={"person": "ada"}, headers=AUTH).json()
    assert moved == {"face": face, "person": "ada", "faces": 4}
    assert client.delete(f"/v1/faces/{face}", headers=AUTH).json() == {"removed_face": face}
    missing = client.delete(f"/v1/faces/{face}", headers=AUTH)
    assert missing.status_code == 404 and "no face" in missing.json()["error"]
    same = faces_dir / "person_0004" / "0000.jpg", faces_dir / "person_0004" / "0001.jpg"
    verdict = client.post("/v1/verify", files={"first": (same[0].name, same[0].read_bytes(), "image/jpeg"),
                                               "second": (same[1].name, same[1].read_bytes(), "image/jpeg")}, headers=AUTH)
    assert verdict.status_code == 200 and {"same", "score", "threshold"} <= set(verdict.json())
    embedded = client.post("/v1/embed", files=photo(same[0]), headers=AUTH).json()
    assert len(embedded["faces"][0]["embedding"]) == 512 and len(embedded["model"]["fingerprint"]) == 64
    assert client.get("/v1/people").status_code == 401  # the token, as every /v1 call


def test_verify_over_http_names_a_bad_upload_as_sent(client: TestClient, faces_dir: Path) -> None:
    good = faces_dir / "person_0004" / "0000.jpg"
    answer = client.post("/v1/verify", files={"first": ("holiday.jpg", b"not an image", "image/jpeg"),
                                              "second": (good.name, good.read_bytes(), "image/jpeg")}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"].startswith("holiday.jpg:")
