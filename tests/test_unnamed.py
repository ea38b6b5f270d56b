"""Faces as first-class rows (issue 29): `enroll --unnamed` keeps every face of every photo of
a library, at any depth, with no name; each face keeps its box, landmarks, detection score and
quality; named people answer as before; re-embedding keeps every face."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from facesearch.gallery.engine import Gallery
from tests import planted
from tests.conftest import CROP_ENCODER


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """Three photos in nested albums: two, three and one faces, pasted apart on white."""
    root = tmp_path_factory.mktemp("library")
    face = lambda person, n: faces_dir / f"person_{person:04d}" / f"{n:04d}.jpg"  # noqa: E731
    (root / "album" / "trip").mkdir(parents=True)
    (root / "other").mkdir()
    planted.compose([(face(1, 0), (20, 40, 120)), (face(2, 0), (300, 60, 140))]).save(root / "album" / "a.jpg")
    planted.compose([(face(3, 1), (10, 10, 100)), (face(4, 1), (200, 150, 110)), (face(5, 1), (420, 30, 150))]).save(
        root / "album" / "trip" / "b.jpg")
    planted.compose([(face(6, 2), (200, 100, 180))]).save(root / "other" / "c.jpg")
    (root / ".hidden").mkdir()
    planted.compose([(face(7, 2), (200, 100, 180))]).save(root / ".hidden" / "d.jpg")
    return root


def rows(home: Path) -> list[dict]:
    with Gallery(home) as g, g.store.engine.connect() as conn:
        found = conn.execute(text("SELECT id, identity_id, source_path, face_number, box, landmarks, detection_score, quality "
                                  "FROM faces ORDER BY id")).mappings().all()
    return [dict(row) for row in found]


def test_every_face_of_every_photo_is_kept_without_a_name(home: Path, library: Path) -> None:
    with Gallery(home, detector="planted") as gallery:
        report = gallery.enroll(library, model=CROP_ENCODER, unnamed=True)
        assert (report.enrolled, report.unnamed, report.identities, report.faces) == (6, 6, 0, 6)
        assert report.to_dict()["unnamed"] == 6 and report.several_faces == []
        assert gallery.info()["unnamed"] == 6
        again = gallery.enroll(library, unnamed=True)
        assert (again.enrolled, again.skipped) == (0, 3)  # photos, by content: nothing twice
    stored = rows(home)
    assert [r["identity_id"] for r in stored] == [None] * 6
    per_photo = {}
    for r in stored:
        per_photo.setdefault(Path(r["source_path"]).name, []).append(r["face_number"])
    assert per_photo == {"a.jpg": [0, 1], "b.jpg": [0, 1, 2], "c.jpg": [0]}  # the hidden album is left out
    for r in stored:
        box, marks = json.loads(r["box"]), json.loads(r["landmarks"])
        assert len(box) == 4 and len(marks) == 5 and r["detection_score"] == pytest.approx(0.99)
        assert 0.0 < r["quality"] <= 1.0


def test_named_people_answer_as_before_beside_unnamed_faces(home: Path, library: Path, faces_dir: Path) -> None:
    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(library, model=CROP_ENCODER, unnamed=True)
    with Gallery(home, detector="none") as gallery:  # the named people's photos are face crops
        gallery.enroll(faces_dir)
        answer = gallery.query(faces_dir / "person_0003" / "0002.jpg", top_k=3)
        assert answer.identity == "person_0003" and all(m.identity for m in answer.matches)
        assert (gallery.info()["identities"], gallery.info()["faces"], gallery.info()["unnamed"]) == (8, 30, 6)
        assert gallery.estimate_threshold(0.1).estimated_from == 24  # unnamed faces are nobody's strangers


def test_re_embedding_keeps_every_face_of_a_photo(home: Path, library: Path) -> None:
    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(library, model=CROP_ENCODER, unnamed=True)
        before = {r["id"]: r["face_number"] for r in rows(home)}
        assert gallery.reembed(CROP_ENCODER, flip=True) == 6
    assert {r["id"]: r["face_number"] for r in rows(home)} == before


def test_an_empty_library_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    from facesearch.errors import InputError

    (tmp_path / "empty" / "album").mkdir(parents=True)
    with Gallery(home) as gallery, pytest.raises(InputError, match="no images found below it"):
        gallery.enroll(tmp_path / "empty", unnamed=True)


def test_faces_lists_and_remove_face_deletes_one_without_a_trace(home: Path, library: Path, faces_dir: Path) -> None:
    from tests.conftest import cli_json

    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(library, model=CROP_ENCODER, unnamed=True)
    with Gallery(home, detector="none") as gallery:
        gallery.enroll(faces_dir)
    listed = cli_json("faces")["faces"]
    assert len(listed) == 30 and set(listed[0]) == {"id", "person", "group", "path", "box", "quality"}
    unnamed = cli_json("faces", "--unnamed")["faces"]
    assert len(unnamed) == 6 and all(f["person"] is None and f["group"] is None for f in unnamed)
    ada = cli_json("faces", "--person", "person_0002")["faces"]
    assert len(ada) == 3 and {f["person"] for f in ada} == {"person_0002"}
    assert "no identity 'nobody'" in cli_json("faces", "--person", "nobody", code=1)["error"]
    assert "no group 7" in cli_json("faces", "--group", 7, code=1)["error"]

    victim, kept = unnamed[1]["id"], unnamed[2]["id"]
    with Gallery(home) as gallery:
        blob, other = (gallery.store.embeddings([i])[1].tobytes() for i in (victim, kept))
    assert cli_json("remove", "--face", victim) == {"removed_face": victim}
    assert victim not in [f["id"] for f in cli_json("faces")["faces"]]
    assert cli_json("info")["unnamed"] == 5
    raw = b"".join(path.read_bytes() for path in home.glob("gallery.db*"))
    assert other in raw and blob not in raw  # the check sees embeddings; the removed one is gone
    assert "no face 99999" in cli_json("remove", "--face", 99999, code=1)["error"]
    assert cli_json("remove", code=2)["usage"] is True


def test_cluster_groups_unnamed_faces_incrementally(home: Path, tmp_path: Path, faces_dir: Path) -> None:
    """Two albums of the same three people, enrolled and clustered one after the other: the
    second album's faces join the first album's groups, which keep their numbers."""
    from tests.conftest import cli_json

    people = [1, 2, 3]
    for album, sample in (("one", 0), ("two", 1)):
        (tmp_path / album).mkdir()
        for k, person in enumerate(people):
            planted.compose([(faces_dir / f"person_{person:04d}" / f"{sample:04d}.jpg", (40, 60, 150)),
                             (faces_dir / f"person_{(person % 3) + 4:04d}" / f"{sample:04d}.jpg", (350, 60, 150))]
                            ).save(tmp_path / album / f"{k}.jpg")
    nothing = cli_json("cluster")  # nothing unnamed yet: exit 0, no group
    assert (nothing["groups"], nothing["ungrouped"]) == ([], 0)
    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(tmp_path / "one", model=CROP_ENCODER, unnamed=True)
    first = cli_json("cluster", "--threshold", 0.5)
    assert set(first) == {"groups", "ungrouped", "seconds"}
    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(tmp_path / "two", unnamed=True)
    second = cli_json("cluster", "--threshold", 0.5)
    before = {g["id"]: g["faces"] for g in first["groups"]}
    after = {g["id"]: g["faces"] for g in second["groups"]}
    assert set(before) <= set(after)  # no group renumbered
    assert sum(after.values()) + second["ungrouped"] == 12
    listed = cli_json("faces", "--unnamed")["faces"]
    assert sorted(after.values()) == [2] * 6  # each person's two photos, one of each album, together
    for group_id in after:
        members = [f for f in listed if f["group"] == group_id]
        assert {Path(f["path"]).parent.name for f in members} == {"one", "two"}
        assert {Path(f["path"]).name for f in members} == {Path(members[0]["path"]).name}
        assert abs(members[0]["box"][0] - members[1]["box"][0]) < 20  # the same place: the same person
    for group_id in before:
        members = [f for f in listed if f["group"] == group_id]
        assert len(members) >= before[group_id]  # kept, maybe joined
    full = cli_json("cluster", "--full", "--threshold", 0.5)
    assert sum(g["faces"] for g in full["groups"]) + full["ungrouped"] == 12
    gated = cli_json("cluster", "--full", "--min-quality", 1.01)  # above every face's quality
    assert (gated["groups"], gated["ungrouped"]) == ([], 12)


def test_naming_a_group_once_makes_queries_answer_the_name(home: Path, tmp_path: Path, faces_dir: Path) -> None:
    from tests.conftest import cli_json

    for album, sample in (("one", 0), ("two", 1)):
        (tmp_path / album).mkdir()
        planted.compose([(faces_dir / "person_0007" / f"{sample:04d}.jpg", (40, 60, 150)),
                         (faces_dir / "person_0004" / f"{sample:04d}.jpg", (350, 60, 150))]).save(tmp_path / album / "x.jpg")
    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(tmp_path / "one", model=CROP_ENCODER, unnamed=True)
        gallery.enroll(tmp_path / "two", unnamed=True)
    grouped = cli_json("cluster", "--threshold", 0.5)["groups"]
    listed = cli_json("people")["people"]
    assert [set(row) for row in listed] == [{"person", "group", "faces", "face"}] * len(listed) and len(listed) == 2
    left = next(f["group"] for f in cli_json("faces", "--unnamed")["faces"] if f["box"][0] < 100)  # person_0007's place
    assert left in {g["id"] for g in grouped}
    probe = tmp_path / "probe"
    probe.mkdir()
    planted.compose([(faces_dir / "person_0007" / "0002.jpg", (200, 100, 160))]).save(probe / "p.jpg")
    with Gallery(home, detector="planted") as gallery:
        gallery.set_threshold(0.5)
        seen = gallery.query(probe / "p.jpg")
        assert seen.identity == "n000000" and seen.group == {"id": left, "photos": 2}  # seen before, nobody's name
        assert seen.to_dict()["group"] == seen.to_dict()["faces"][0]["group"] == {"id": left, "photos": 2}
    assert cli_json("name", left, "ada") == {"person": "ada", "faces": 2}
    with Gallery(home, detector="planted") as gallery:
        named = gallery.query(probe / "p.jpg")
        assert named.identity == "ada" and "group" not in named.to_dict()
    people = cli_json("people")["people"]
    assert {"person": "ada", "group": None, "faces": 2} == {k: people[0][k] for k in ("person", "group", "faces")}
    assert "no group" in cli_json("name", left, "bob", code=1)["error"]  # the group is gone
    other = next(row["group"] for row in people if row["group"] is not None)
    assert "reserved" in cli_json("name", other, "n000000", code=1)["error"]
    assert cli_json("name", other, "ada")["faces"] == 4  # an existing person gains the group


def test_rename_merges_and_move_needs_create(home: Path, faces_dir: Path) -> None:
    from tests.conftest import cli_json

    cli_json("enroll", faces_dir)
    assert cli_json("rename", "person_0001", "ada") == {"person": "ada", "faces": 3}
    assert cli_json("rename", "person_0002", "ada") == {"person": "ada", "faces": 6}  # a merge
    names = [row["identity"] for row in cli_json("identities")["identities"]]
    assert "ada" in names and "person_0001" not in names and "person_0002" not in names
    assert cli_json("query", faces_dir / "person_0002" / "0001.jpg")["identity"] == "ada"
    assert "no identity 'nobody'" in cli_json("rename", "nobody", "x", code=1)["error"]
    assert "reserved" in cli_json("rename", "ada", "n000000", code=1)["error"]
    face = cli_json("faces", "--person", "person_0003")["faces"][0]["id"]
    assert "--create" in cli_json("move", face, "zed", code=1)["error"]
    assert cli_json("move", face, "zed", "--create") == {"face": face, "person": "zed", "faces": 1}
    assert cli_json("move", face, "ada") == {"face": face, "person": "ada", "faces": 7}
    assert "no face 424242" in cli_json("move", 424242, "ada", code=1)["error"]


def test_split_takes_faces_into_a_new_group_and_a_face_has_a_picture(home: Path, library: Path) -> None:
    """Two people grouped as one are parted: the faces taken keep no tie to the old group;
    a bad split changes nothing. Each face's picture is cut from its photo, around its box."""
    import io

    from PIL import Image

    from facesearch.errors import UnknownFace
    from tests.conftest import cli_json

    with Gallery(home, detector="planted") as gallery:
        gallery.enroll(library, model=CROP_ENCODER, unnamed=True)
        faces = [f["id"] for f in gallery.faces(unnamed=True)]
    grouped = cli_json("cluster", "--threshold", -1.0)["groups"]  # everyone in one group
    assert [g["faces"] for g in grouped] == [len(faces)]
    group = grouped[0]["id"]
    assert "some, not all" in cli_json("split", group, *faces, code=1)["error"]
    assert "some, not all" in cli_json("split", group, 424242, code=1)["error"]
    assert "no group 999" in cli_json("split", 999, faces[0], code=1)["error"]
    assert cli_json("faces", "--group", group)["faces"].__len__() == len(faces)  # nothing changed
    parted = cli_json("split", group, faces[0], faces[1])
    assert parted["faces"] == 2 and parted["group"] != group
    assert [f["id"] for f in cli_json("faces", "--group", parted["group"])["faces"]] == faces[:2]
    assert len(cli_json("faces", "--group", group)["faces"]) == len(faces) - 2
    assert "no group 999" in cli_json("merge", parted["group"], 999, code=1)["error"]
    assert "into itself" in cli_json("merge", group, group, code=1)["error"]
    assert cli_json("merge", parted["group"], group) == {"group": group, "faces": len(faces)}  # one person again
    assert [g["group"] for g in cli_json("people")["people"]] == [group]
    parted = cli_json("split", group, faces[0], faces[1])
    with Gallery(home) as gallery:
        picture = Image.open(io.BytesIO(gallery.face_image(faces[2], side=64)))
        assert picture.format == "JPEG" and max(picture.size) == 64
        large = Image.open(io.BytesIO(gallery.face_image(faces[2], side=512)))
        left, top, right, bottom = gallery.faces(group=group)[0]["box"]
        assert max(large.size) <= 1.4 * max(right - left, bottom - top) + 2  # the box and its margin, not the photo
        with pytest.raises(UnknownFace):
            gallery.face_image(424242)
