"""A new user's first hour: no lost originals, help that shows its defaults (issue 17). In-process (CliRunner)."""

from dataclasses import asdict

import numpy as np
import pytest
from conftest import photo_like, write_image
from typer.testing import CliRunner

from autoenc_cli.cli.app import app
from autoenc_cli.training.config import TrainConfig, resumed_config

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
    assert ("(default: 0.002, less below a batch of 32; with --init: 0.001; both x sqrt(B / 32) for the global batch "
            "B, the from-scratch one at most 0.002)") in text
    assert "(default: 32; on a GPU: 512)" in text
    assert "NAME.rec.png" in " ".join(invoke("decode", "--help").output.split())


def test_ctrl_c_under_a_pipe_whose_reader_has_gone_still_saves(tiny_imagenet, tmp_path):
    """`autoenc train DATA 2>&1 | tee log` and Ctrl-C: tee dies too; the next write must not stop the save."""
    import os
    import signal
    import subprocess

    from conftest import autoenc_command
    run = tmp_path / "run"
    proc = subprocess.Popen(autoenc_command() + ["train", str(tiny_imagenet), "--out", str(run), "--epochs", "100000",
                                                 "--batch-size", "4", "--save-every", "100000", "--save-minutes", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, COLUMNS="200"))
    for line in proc.stdout:  # wait until training runs
        if b"training on" in line:
            break
    proc.stdout.close()  # the reader goes away, as tee does on Ctrl-C
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert (run / "state.safetensors").is_file()  # saved although every write after the signal failed


def test_resume_says_which_options_it_applied_and_which_it_kept_and_when_a_run_is_finished(tiny_imagenet, tmp_path):
    run = tmp_path / "run"
    assert invoke("train", tiny_imagenet, "--out", run, "--max-steps", 3, "--batch-size", 4).exit_code == 0
    result = invoke("train", tiny_imagenet, "--out", run, "--resume", "--max-steps", 5, "--batch-size", 8, "--lr", 0.01)
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "resuming: applied --max-steps 5" in text
    kept_lr = 0.002 * (4 / 32) ** 0.5  # the recipe's rate for batch 32, scaled to the run's batch 4
    assert f"kept the run's settings over --batch-size (the run's: 4), --lr (the run's: {kept_lr})" in text
    finished = invoke("train", tiny_imagenet, "--out", run, "--resume")
    text = " ".join(finished.output.split())
    assert finished.exit_code == 0 and "this run has finished (5 of 5 steps)" in text and "nan" not in text


def test_a_leak_on_plain_relu_init_weights_is_warned_about(tiny_imagenet, tmp_path):
    leaky = invoke("train", tiny_imagenet, "--out", tmp_path / "a", "--init", "default", "--relu-leak", 0.1, "--max-steps", 1,
                   "--batch-size", 4)
    assert leaky.exit_code == 0 and "measured to break" in " ".join(leaky.output.split())
    plain = invoke("train", tiny_imagenet, "--out", tmp_path / "b", "--init", "default", "--max-steps", 1, "--batch-size", 4)
    assert plain.exit_code == 0 and "measured to break" not in " ".join(plain.output.split())


def test_a_run_saved_before_the_rename_resumes_with_its_channel_multiplier():
    saved = asdict(TrainConfig(data="d", channel_multiplier=2))
    saved["width"] = saved.pop("channel_multiplier")  # how runs saved before the rename name it
    cfg, _ = resumed_config(TrainConfig(data="d"), saved)
    assert cfg.channel_multiplier == 2


def test_messages_that_point_the_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = invoke("train", "tiny-imagenet-200", "--out", "run")
    assert missing.exit_code == 1 and "autoenc download" in missing.output
    assert not (tmp_path / "run").exists()  # a failed train leaves no empty --out behind
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    nothing = " ".join(invoke("eval", "empty", "--worst-png", "w.png").output.split())
    assert "no images found (looked for .bmp, .gif" in nothing


def test_barely_trained_weights_are_flagged_by_encode_and_info(tmp_path):
    from conftest import make_tiny_imagenet
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=4, val=2, corrupt=False)
    assert invoke("train", data, "--out", tmp_path / "run", "--max-steps", 2, "--batch-size", 4).exit_code == 0
    weights = tmp_path / "run" / "model.safetensors"
    img = write_image(tmp_path / "a.png", photo_like(np.random.default_rng(2)), format="PNG")
    encoded = " ".join(invoke("encode", img, "-o", tmp_path / "a.npy", "-w", weights).output.split())
    assert "barely trained, expect blurred or flat pictures" in encoded
    assert "barely trained" in " ".join(invoke("info", weights).output.split())
    bundled = invoke("encode", img, "-o", tmp_path / "b.npy")
    assert bundled.exit_code == 0 and "barely trained" not in bundled.output


def test_decoding_a_sidecar_points_to_its_latent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "photo.png", photo_like(np.random.default_rng(3)), format="PNG")
    assert invoke("encode", "photo.png").exit_code == 0
    result = invoke("decode", "photo.npy.json", "-o", "out.png")
    assert result.exit_code == 1 and "give the latent itself, photo.npy" in " ".join(result.output.split())


def test_info_says_which_weights_decode_a_latent(tmp_path):
    np.save(tmp_path / "odd.npy", np.zeros((100, 4, 4), np.float32))
    np.save(tmp_path / "wide.npy", np.zeros((256, 4, 4), np.float32))
    np.save(tmp_path / "plain.npy", np.zeros((128, 4, 4), np.float32))
    assert "nothing: not decodable (100 channels" in " ".join(invoke("info", tmp_path / "odd.npy").output.split())
    assert "weights of channel multiplier 2 only" in " ".join(invoke("info", tmp_path / "wide.npy").output.split())
    assert "weights of channel multiplier 1, such as the bundled ones" in " ".join(invoke("info", tmp_path / "plain.npy").output.split())


def test_help_names_arguments_and_leaves_flags_without_a_type():
    encode = invoke("encode", "--help").output
    assert "IMAGE..." in encode and "<list[Path]>" not in encode and "{IMAGE}" not in encode
    train = invoke("train", "--help").output
    assert "train [OPTIONS] DATA" in " ".join(train.split()) and "<bool>" not in train
    assert "-h" in invoke("train", "-h").output


def test_auto_resume_starts_afresh_then_continues_with_the_same_command(tiny_imagenet, tmp_path):
    from autoenc_cli.training.checkpoint import read_log
    run = tmp_path / "run"
    command = ["train", tiny_imagenet, "--out", run, "--batch-size", 4, "--auto-resume"]
    first = invoke(*command, "--max-steps", 3)
    assert first.exit_code == 0 and "auto-resume: no saved run in" in " ".join(first.output.split())
    again = invoke(*command, "--max-steps", 6)  # the same line, as a scheduler's retry would run it
    assert again.exit_code == 0 and f"continuing the run in {run} from step 3" in " ".join(again.output.split())
    assert int(read_log(run / "log.csv")[-1]["step"]) == 6


# issue 37: the first hour, again

def test_the_default_warm_up_is_a_part_of_the_run_and_an_explicit_one_leaves_half_of_it_to_decay():
    from autoenc_cli.training.config import WARMUP_CAP
    assert TrainConfig(data="d").warmup_within(200) == (10, "")  # 5% of a first, short run
    assert TrainConfig(data="d").warmup_within(1_000_000) == (WARMUP_CAP, "")
    assert TrainConfig(data="d", warmup_steps=30).warmup_within(200) == (30, "")
    steps, said = TrainConfig(data="d", warmup_steps=500).warmup_within(200)
    assert steps == 100 and "--warmup-steps 500 is more than half of this run's 200 steps: warming up for 100" in said
    text = " ".join(invoke("train", "--help").output.split())
    assert "warm-up steps (default: 5% of the run's steps, at most 200; at most half of the run)" in text


def test_the_start_lines_name_their_units_and_fit_80_columns(tiny_imagenet, tmp_path):
    result = invoke("train", tiny_imagenet, "--out", tmp_path / "run", "--max-steps", 1, "--batch-size", 4, "--precision", "fp32")
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("training on"))
    assert lines[start] == "training on 18 images (tiny-imagenet), validating on 4 images"
    assert lines[start + 1] == "cpu fp32, batch 4: 1 step (4 per epoch), warm-up 0"
    assert all(len(line) <= 80 for line in lines[start:start + 2])


def test_encode_takes_a_folders_pictures(tmp_path):
    for i in range(3):
        write_image(tmp_path / "in" / f"p{i}.png", photo_like(np.random.default_rng(i)), format="PNG")
    result = invoke("encode", tmp_path / "in", "-o", f"{tmp_path / 'out'}/")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.npy")) == ["p0.npy", "p1.npy", "p2.npy"]


def test_decoding_a_picture_says_it_is_not_a_latent_before_anything_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "photo.jpg", photo_like(np.random.default_rng(4)), format="JPEG")
    (tmp_path / "photo.rec.png").write_bytes(b"the user's own file")
    result = invoke("decode", "photo.jpg")
    assert result.exit_code == 1 and "photo.jpg: not a .npy file (a latent that autoenc encode writes)" in result.output
    assert "exists" not in result.output


def test_info_reads_a_stack_its_sidecar_and_the_bundled_weights(tmp_path):
    for i in range(3):
        write_image(tmp_path / "in" / f"p{i}.png", photo_like(np.random.default_rng(i)), format="PNG")
    stack = tmp_path / "feats.npy"
    assert invoke("encode", tmp_path / "in", "--stack", stack).exit_code == 0
    for target in (stack, tmp_path / "feats.npy.json"):
        result = invoke("info", target)
        text = " ".join(result.output.split())
        assert result.exit_code == 0, text
        assert "the latents of 3 pictures" in text and "(3, 128, 4, 4) (pictures, channels, height, width)" in text
        assert "listed in feats.npy.json" in text and "the bundled default" in text
    np.save(tmp_path / "bare.npy", np.zeros((5, 128, 4, 4), np.float32))  # a stack without its sidecar
    assert "not listed: no sidecar bare.npy.json" in " ".join(invoke("info", tmp_path / "bare.npy").output.split())
    bundled = invoke("info", "default")
    assert bundled.exit_code == 0 and "the bundled default" in bundled.output and "600,131 parameters" in bundled.output


def test_info_prints_values_for_people_not_python_literals(tmp_path):
    import torch

    from autoenc_cli.model.autoencoder import Autoencoder
    from autoenc_cli.model.weights import save_weights
    weights = tmp_path / "model.safetensors"
    save_weights(Autoencoder(1), weights, {"init": None, "rotate": False, "parent": {"file": "a.safetensors",
                                                                                       "sha256": "ab" * 32}, "lr": 0.002})
    text = invoke("info", weights).output
    assert "None" not in text and "{" not in text and "False" not in text, text
    assert "a.safetensors (sha256 abababababab)" in text and "none" in text
    from autoenc_cli.training.checkpoint import save_state
    model = Autoencoder(1)
    save_state(tmp_path / "state.safetensors", model, torch.optim.Adam(model.parameters()),
               {"step": 4, "config": {"init": None, "max_zoom": None, "rotate": True}})
    text = invoke("info", tmp_path / "state.safetensors").output
    assert "None" not in text and "True" not in text and "yes" in text, text


def test_a_count_of_one_is_singular(tmp_path):
    from autoenc_cli.errors import counted
    assert (counted(1, "picture"), counted(2, "picture"), counted(2, "process"), counted(1_000, "step")) == \
        ("1 picture", "2 pictures", "2 processes", "1,000 steps")
    write_image(tmp_path / "one" / "a.png", photo_like(np.random.default_rng(5)), format="PNG")
    result = runner.invoke(app, ["score", str(tmp_path / "one"), "-o", str(tmp_path / "s.csv")], env={"COLUMNS": "300"})
    assert result.exit_code == 0 and "scored 1 picture by" in " ".join(result.output.split())


@pytest.mark.slow
def test_a_200_step_run_peaks_early_and_decays_to_near_zero(tmp_path):
    """What a newcomer tries first: with the old 200-step warm-up this run ended at its peak rate, barely trained."""
    from conftest import make_tiny_imagenet

    from autoenc_cli.training.checkpoint import read_log
    data = make_tiny_imagenet(tmp_path / "data", classes=2, per_class=100, corrupt=False)  # 50 steps an epoch
    result = invoke("train", data, "--out", tmp_path / "run", "--max-steps", 200, "--epochs", 1000, "--batch-size", 4,
                    "--precision", "fp32")
    assert result.exit_code == 0, result.output
    rates = [float(r["lr"]) for r in read_log(tmp_path / "run" / "log.csv") if r.get("lr")]
    assert len(rates) == 4 and rates == sorted(rates, reverse=True)  # past the peak at the first log (step 50)
    peak = 0.002 * (4 / 32) ** 0.5  # the recipe's rate, scaled to batch 4
    assert 0.8 * peak < rates[0] < peak and rates[-1] < 1e-3 * peak


def test_a_cpu_run_that_slows_far_below_its_start_is_told_once():
    from autoenc_cli.training.run import RateWatch
    from autoenc_cli.training.train import busy_cpu_hint
    watch = RateWatch()
    said = [watch.slowed(rate) for rate in (300, 250, 90, 300, 90, 80, 70, 60)]
    assert said == [False, False, False, False, False, True, False, False]  # two slow windows in a row, said once
    from rich.text import Text
    lines = Text.from_markup(busy_cpu_hint(12_345, 1_234)).plain.splitlines()
    assert "OMP_NUM_THREADS=1" in lines[1] and all(len(line) <= 80 for line in lines), lines
