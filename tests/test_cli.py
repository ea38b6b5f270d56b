"""The command contract of docs/design.md: JSON keys, one JSON object on stdout, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesearch import UNKNOWN
from tests import badfiles
from tests.conftest import cli, cli_json
from tests.postgres import PostgresServer


def test_full_cycle_with_contract_keys(home: Path, faces_dir: Path) -> None:
    out = cli_json("enroll", faces_dir)
    assert {"enrolled", "skipped", "failed", "identities", "faces"} <= set(out)
    assert set(out["timings"]) >= {"hash", "decode", "embed", "database", "index", "total"}
    assert (out["enrolled"], out["identities"], out["faces"]) == (24, 8, 24)
    assert cli_json("enroll", faces_dir)["skipped"] == 24

    image = faces_dir / "person_0005" / "0002.jpg"
    q = cli_json("query", image, "--top-k", 3)
    assert set(q) == {"identity", "score", "threshold", "matches", "faces"}
    assert q["identity"] == "person_0005" and abs(q["score"] - 1.0) < 1e-4
    assert len(q["matches"]) == 3 and set(q["matches"][0]) == {"identity", "score", "image"}
    # a crop encoder without a detector: the one face is the whole photo
    [face] = q["faces"]
    assert set(face) == {"box", "landmarks", "detection_score", "identity", "score", "matches"}
    assert face["box"] == [0.0, 0.0, 112.0, 112.0] and face["landmarks"] is None
    assert (face["identity"], face["score"], face["matches"]) == (q["identity"], q["score"], q["matches"])

    ids = cli_json("identities")["identities"]
    assert {"identity": "person_0005", "faces": 3} in ids and len(ids) == 8

    info = cli_json("info")
    assert {"model", "identities", "faces", "threshold", "index", "device"} <= set(info)
    assert (info["identities"], info["faces"], info["device"]) == (8, 24, "cpu")

    shown = cli_json("threshold")  # the crop encoder states no calibration: the gallery's own estimate
    assert shown["threshold_source"] == "fpir" and -1.0 < shown["threshold"] < 1.0
    assert cli_json("threshold", "1.0").items() >= {"threshold": 1.0, "threshold_source": "manual", "estimated_fpir": 0.0}.items()
    assert cli_json("threshold")["threshold"] == 1.0

    assert cli_json("remove", "person_0005") == {"removed": "person_0005", "faces": 3}
    q = cli_json("query", image, "--top-k", 10)
    assert q["identity"] == UNKNOWN or q["identity"] != "person_0005"
    assert "person_0005" not in [m["identity"] for m in q["matches"]]


def test_home_option_overrides_environment(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "explicit"
    cli_json("enroll", faces_dir, "--home", other)
    assert (other / "gallery.db").exists() and not (home / "gallery.db").exists()
    assert cli_json("info", "--home", other)["faces"] == 24


def test_human_output_is_plain_text(home: Path, faces_dir: Path) -> None:
    result = cli("enroll", faces_dir)
    assert result.exit_code == 0 and "enrolled 24" in result.stdout
    result = cli("query", faces_dir / "person_0001" / "0000.jpg")
    assert result.exit_code == 0 and result.stdout.startswith("person_0001")


@pytest.mark.parametrize(
    "args",
    [
        ("enroll", "/no/such/folder"),
        ("query", "/no/such/image.jpg"),
        ("remove", "nobody"),
    ],
)
def test_failures_exit_1_with_one_line_and_a_json_error(home: Path, faces_dir: Path, args: tuple) -> None:
    cli_json("enroll", faces_dir)
    out = cli_json(*args, code=1)
    assert set(out) == {"error"}
    result = cli(*args)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error:") and result.stdout == ""


def test_query_of_a_bad_image_names_the_file(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    cli_json("enroll", faces_dir)
    bad = badfiles.truncated_jpeg(tmp_path / "half.jpg")
    out = cli_json("query", bad, code=1)
    assert str(bad) in out["error"] and "truncated" in out["error"]


def test_query_on_an_empty_gallery_fails_cleanly(home: Path, faces_dir: Path) -> None:
    out = cli_json("query", faces_dir / "person_0000" / "0000.jpg", code=1)
    assert "empty" in out["error"]


def test_enroll_where_every_file_fails_exits_1(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "junk" / "someone"
    src.mkdir(parents=True)
    badfiles.not_an_image(src / "a.jpg")
    out = cli_json("enroll", src.parent, code=1)
    assert out["enrolled"] == 0 and out["failed"][0]["path"].endswith("a.jpg")


def test_strict_enroll_exits_1_on_any_failure(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    badfiles.truncated_jpeg(tmp_path / "x.jpg")
    src = tmp_path / "mixed"
    (src / "p").mkdir(parents=True)
    badfiles.png_named_jpg(src / "p" / "good.jpg")
    badfiles.truncated_jpeg(src / "p" / "bad.jpg")
    assert cli_json("enroll", src, "--strict", code=1)["enrolled"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("query",),
        ("query", "x.jpg", "--top-k", "0"),
        ("threshold", "3"),
        ("enroll", "x", "--no-such-option"),
        ("frobnicate",),
    ],
)
def test_bad_usage_exits_2(home: Path, args: tuple) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and result.stdout == ""  # without --json, nothing on stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (("query",), "Missing argument"),
        (("query", "x.jpg", "--top-k", "0"), "--top-k"),
        (("threshold", "3"), "less than or equal to 1"),
        (("enroll", "x", "--no-such-option"), "No such option"),
        (("frobnicate",), "No such command"),
        (("train", "d", "--out", "m.pt", "--augment", "sepia"), "sepia"),
    ],
)
def test_bad_usage_with_json_prints_one_json_error(home: Path, args: tuple, says: str) -> None:
    """The contract: with --json, exactly one JSON object on stdout, whatever the outcome."""
    payload = cli_json(*args, code=2)
    assert says in payload["error"] and payload["usage"] is True


def test_synth_writes_the_gallery_layout(tmp_path: Path) -> None:
    out = cli_json("synth", tmp_path / "s", "--identities", 3, "--images", 2)
    assert out["images"] == 6 and len(list((tmp_path / "s").glob("*/*.jpg"))) == 6


def test_enroll_reembed(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    from facesearch.models import EncoderConfig, build_encoder, save_encoder

    cli_json("enroll", faces_dir)
    other = tmp_path / "m.pt"
    save_encoder(build_encoder(EncoderConfig(seed=77)), other)
    assert "--reembed" in cli_json("enroll", faces_dir, "--model", other, code=1)["error"]
    out = cli_json("enroll", faces_dir, "--model", other, "--reembed")
    assert (out["reembedded"], out["skipped"], out["faces"]) == (24, 24, 24)
    assert cli("enroll", faces_dir, "--reembed").exit_code == 2


def test_synth_probe_and_pairs_layouts(tmp_path: Path) -> None:
    out = cli_json("synth", tmp_path / "p", "--identities", 3, "--images", 2, "--probes", 2)
    rows = (tmp_path / "p" / "verification_dev.csv").read_text().split()
    assert out["images"] == 6 and len(list((tmp_path / "p" / "unknown_dev").glob("*.jpg"))) == 6
    assert rows[0] == "id,label" and rows[1] == "000000.jpg,person_0000" and rows[-1] == "000005.jpg,n000000"
    cli_json("synth", tmp_path / "l", "--identities", 3, "--images", 2, "--pairs", 2)
    assert (tmp_path / "l" / "pairs.txt").read_text().startswith("10\t2\n")
    assert cli("synth", tmp_path / "x", "--pairs", 2, "--probes", 1).exit_code == 2


def test_index_kind_from_enroll_and_the_index_command(home: Path, faces_dir: Path) -> None:
    assert cli_json("enroll", faces_dir, "--index", "hnsw")["faces"] == 24
    assert cli_json("index")["index"]["kind"] == "hnsw"
    shown = cli_json("index", "ivf", "--nprobe", "4")["index"]
    assert (shown["kind"], shown["params"], shown["up_to_date"]) == ("ivf", {"nprobe": 4}, True)
    assert cli_json("index", "--nprobe", "8")["index"]["params"] == {"nprobe": 8}  # kind kept
    assert cli_json("query", faces_dir / "person_0001" / "0002.jpg")["identity"] == "person_0001"
    assert cli_json("info")["index"]["kind"] == "ivf"
    assert cli("index", "annoy").exit_code == 2
    assert cli("index", "--nprobe", "0").exit_code == 2
    refused = cli("index", "--rerank", "256")  # a setting of the compressed kinds only
    assert refused.exit_code == 1 and "--rerank is for the ivf-sq8" in refused.stderr
    assert cli_json("enroll", faces_dir, "--index", "flat")["skipped"] == 24
    assert cli_json("index")["index"] | {"path": None} == {
        "path": None, "kind": "flat", "params": {}, "exists": True, "up_to_date": True, "gpu": False
    }


def test_flip_tta_binds_the_gallery_to_the_flip_variant(home: Path, faces_dir: Path, tmp_path: Path) -> None:
    from facesearch.models import build_encoder, save_encoder

    model = tmp_path / "m.pt"
    save_encoder(build_encoder(), model)
    assert cli_json("enroll", faces_dir, "--model", model, "--flip")["faces"] == 24
    info = cli_json("info")["model"]
    assert info["flip"] is True
    photo = faces_dir / "person_0004" / "0001.jpg"
    assert cli_json("query", photo)["identity"] == "person_0004"
    assert cli_json("query", photo, "--model", model)["identity"] == "person_0004"  # the gallery's flip applies
    assert "not the one this gallery" in cli_json("enroll", faces_dir, "--no-flip", code=1)["error"]
    assert cli_json("enroll", faces_dir, "--model", model, "--flip")["skipped"] == 24
    pairs = tmp_path / "pairs"
    cli_json("synth", pairs, "--pairs", "20", "--identities", "6")
    on = cli_json("bench", "--pairs", pairs / "pairs.txt", "--images", pairs / "images")
    off = cli_json("bench", "--pairs", pairs / "pairs.txt", "--images", pairs / "images", "--no-flip")
    assert on["flip"] is True and off["flip"] is False and on["pairs"] == off["pairs"]
    assert cli("bench", faces_dir, "--flip").exit_code == 2


def test_a_home_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("mine")
    out = cli_json("info", "--home", not_a_folder, code=1)
    assert "not a folder" in out["error"] and str(not_a_folder) in out["error"]
    assert not_a_folder.read_text() == "mine"


def test_a_home_and_every_file_in_it_are_private_whatever_the_umask(home: Path, faces_dir: Path) -> None:
    """A face gallery is biometric data: the home 0700, every file in it 0600 (database, its
    WAL and shared memory while open, the lock, the index, model copies), even under umask 0."""
    import os
    import stat

    from facesearch.gallery.engine import Gallery

    old = os.umask(0)
    try:
        cli_json("enroll", faces_dir)
        cli_json("index", "flat")
        with Gallery(home) as gallery:
            gallery.query(next(faces_dir.rglob("*.jpg")))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.rglob("*") if p.is_file()}
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert {"gallery.db", "gallery.db-wal", "gallery.lock", "index.faiss"} <= set(modes)
    assert any(name.endswith(".pt") for name in modes)
    assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}
    assert cli_json("info")["warnings"] == []
    os.chmod(home / "gallery.db", 0o644)
    warnings = cli_json("info")["warnings"]
    assert "gallery.db is readable by others" in warnings[0]  # (and its WAL and shared memory, now open)
    assert all("readable by others" in w for w in warnings)


def test_database_url_option_puts_the_gallery_on_postgresql(
    home: Path, faces_dir: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.url()
    assert cli_json("enroll", faces_dir, "--database-url", url)["enrolled"] == 24
    assert not (home / "gallery.db").exists()  # the home keeps only the index, lock and models
    assert cli_json("info", "--database-url", url)["database"] == url
    answer = cli_json("query", faces_dir / "person_0005" / "0002.jpg", "--database-url", url)
    assert answer["identity"] == "person_0005"
    assert cli_json("remove", "person_0005", "--database-url", url) == {"removed": "person_0005", "faces": 3}
    assert cli_json("info")["faces"] == 0  # without the option: the home's own (new, empty) SQLite
