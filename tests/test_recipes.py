"""Training recipes (`facesearch train --config FILE`): TrainConfig's options in a TOML file,
flags winning over it, the settings used recorded in the report; bad recipes refused with one
line and exit 2; and the train command's flags made from TrainConfig's fields."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from facesearch.synthetic import write_dataset
from facesearch.training.config import TrainConfig
from tests.conftest import cli, cli_json

QUICK = """
epochs = 1
arcface-epochs = 0
batch_size = 12
lr = 0.05
holdout = 0.0
workers = 0
augment = "none"
backbone = "mobilenet_v3_small"
embedding_dim = 32
steps_per_epoch = 2
"""


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recipes") / "people"
    write_dataset(root, identities=4, images_per_identity=4, seed=6)
    return root


def test_every_option_of_trainconfig_is_a_flag_of_train() -> None:
    """One vocabulary: the command is built from the config, so none can be missing."""
    text = cli("train", "--help").stdout
    for field in fields(TrainConfig):
        if field.name != "data":
            assert f"--{field.name.replace('_', '-')}" in text, field.name
    assert "--config" in text and "DATA" in text


def test_a_recipe_runs_and_a_flag_wins_over_it(people: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "quick.toml"
    recipe.write_text(QUICK + f'data = "{people}"\nout = "{tmp_path / "from-file.pt"}"\n')
    report = cli_json("train", "--config", recipe, "--lr", 0.02, "--out", tmp_path / "flag.pt")
    used = report["config"]
    assert used["lr"] == 0.02 and used["epochs"] == 1 and used["arcface_epochs"] == 0  # flag, file, file
    assert used["embedding_dim"] == 32 and used["augment"]["hflip"] is False
    assert report["model"] == str(tmp_path / "flag.pt") and (tmp_path / "flag.pt").is_file()
    assert not (tmp_path / "from-file.pt").exists()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lr_max = 0.1\n", "unknown key 'lr_max'"),
        ('epochs = "ten"\n', "epochs must be an integer"),
        ("lr = true\n", "lr must be a number"),
        ("holdout = 0.95\n", "holdout must be between 0.0 and 0.9"),
        ("unlabelled = 3\n", "unlabelled must be a list of strings"),
        ("epochs = \n", "not a TOML recipe"),
    ],
)
def test_a_bad_recipe_is_one_line_and_exit_2(tmp_path: Path, text: str, says: str) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    result = cli("train", "d", "--out", tmp_path / "m.pt", "--config", recipe)
    assert result.exit_code == 2 and says in result.stderr and str(recipe) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and not (tmp_path / "m.pt").exists()
    payload = cli_json("train", "d", "--out", tmp_path / "m.pt", "--config", recipe, code=2)
    assert says in payload["error"] and payload["usage"] is True


def test_a_missing_recipe_or_data_is_named(tmp_path: Path) -> None:
    missing = cli_json("train", "d", "--out", tmp_path / "m.pt", "--config", tmp_path / "nowhere.toml", code=2)
    assert "nowhere.toml: no such recipe file" in missing["error"]
    recipe = tmp_path / "no-data.toml"
    recipe.write_text(QUICK)
    assert "DATA" in cli_json("train", "--config", recipe, "--out", tmp_path / "m.pt", code=2)["error"]


def test_a_recipe_of_stages_runs_each_from_the_one_before_and_resumes(people: Path, tmp_path: Path) -> None:
    """Two stages: the second starts from the first's model file; --out names the last one's;
    --resume after both finished runs no epoch again."""
    recipe = tmp_path / "chain.toml"
    recipe.write_text(QUICK + f'data = "{people}"\n\n[[stage]]\nout = "{tmp_path / "first.pt"}"\n\n'
                      f'[[stage]]\nout = "{tmp_path / "second.pt"}"\nlr = 0.01\n')
    report = cli_json("train", "--config", recipe, "--out", tmp_path / "final.pt")
    assert [stage["model"] for stage in report["stages"]] == [str(tmp_path / "first.pt"), str(tmp_path / "final.pt")]
    assert Path(report["config"]["init"]).name == "first.pt" and report["config"]["lr"] == 0.01
    assert (tmp_path / "first.pt").is_file() and (tmp_path / "final.pt").is_file() and not (tmp_path / "second.pt").exists()
    again = cli("train", "--config", recipe, "--out", tmp_path / "final.pt", "--resume")
    assert again.exit_code == 0 and "epoch 1" not in again.stderr and "stage 2 of 2" in again.stderr and "(resumed)" in again.stderr


@pytest.mark.parametrize(("text", "says"), [
    ('[[stage]]\nepochs = 1\n', "stage 1: every stage names its out"),
    ('[[stage]]\nout = "a.pt"\nlr_max = 1\n', "stage 1: unknown key 'lr_max'"),
    ('stage = 3\n', "one or more [[stage]] tables"),
])
def test_a_bad_stage_is_named(tmp_path: Path, text: str, says: str) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text(text)
    assert says in cli_json("train", "d", "--config", recipe, code=2)["error"]


def test_the_shipped_recipes_are_valid() -> None:
    """Every recipe in recipes/ reads as TrainConfig options, each stage of a chain too (its
    paths need not exist here)."""
    from facesearch.training.recipes import read_stages

    root = Path(__file__).resolve().parents[1] / "recipes"
    for recipe in sorted(root.glob("*.toml")):
        for values in read_stages(recipe):
            assert "data" in values and "out" in values, recipe.name
