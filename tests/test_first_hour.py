"""A new user's first hour: no lost originals, help that shows its defaults (issue 17). In-process (CliRunner)."""

import numpy as np
from conftest import photo_like, write_image
from typer.testing import CliRunner

from autoenc_cli.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env={"COLUMNS": "300"})


def test_a_default_output_name_never_replaces_the_users_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = write_image(tmp_path / "house.png", photo_like(np.random.default_rng(1)), format="PNG").read_bytes()
    assert invoke("encode", "house.png").exit_code == 0 and (tmp_path / "house.npy").is_file()
    result = invoke("decode", "house.npy")
    assert result.exit_code == 0 and (tmp_path / "house.rec.png").is_file()
    assert (tmp_path / "house.png").read_bytes() == original  # the user's picture is untouched
    again = invoke("decode", "house.npy")  # house.rec.png exists now, and the user did not name it
    assert again.exit_code == 1 and "house.rec.png: exists; not replacing a file you did not name" in again.output
    assert invoke("decode", "house.npy", "-o", "house.rec.png").exit_code == 0  # named: replaced whole
    assert invoke("encode", "house.png").exit_code == 1  # house.npy exists


def test_help_shows_defaults_that_hold_brackets_and_the_fine_tuning_ones():
    text = " ".join(invoke("train", "--help").output.split())
    assert "(default: 10; on --resume: the run's)" in text
    assert "(default: 0.002; with --init: 0.0003)" in text
    assert "NAME.rec.png" in " ".join(invoke("decode", "--help").output.split())
