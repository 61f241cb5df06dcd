import pytest
import torch

from autoenc_cli.errors import AutoencError
from autoenc_cli.model.hardware import cpu_has_native_bf16, pick_precision

CPU = torch.device("cpu")
ZEN3 = {"fpu", "sse2", "avx", "avx2", "fma", "f16c"}  # AVX2 only: bf16 would be emulated
ZEN5 = ZEN3 | {"avx512f", "avx512bw", "avx512_bf16"}
SAPPHIRE_RAPIDS = ZEN3 | {"avx512f", "amx_tile", "amx_bf16"}


def test_auto_never_picks_emulated_bf16():
    assert pick_precision("auto", CPU, ZEN3) == "fp32"
    assert pick_precision("auto", CPU, ZEN3 | {"avx512f", "avx512_vnni"}) == "fp32"  # AVX-512 without BF16
    assert pick_precision("auto", CPU, set()) == "fp32"  # unknown CPU (no /proc/cpuinfo): stay safe


def test_auto_picks_bf16_where_native():
    assert pick_precision("auto", CPU, ZEN5) == "bf16"
    assert pick_precision("auto", CPU, SAPPHIRE_RAPIDS) == "bf16"
    assert cpu_has_native_bf16(ZEN5) and not cpu_has_native_bf16(ZEN3)


def test_auto_on_other_devices_is_fp32_unless_cuda_has_bf16():
    assert pick_precision("auto", torch.device("mps"), ZEN5) == "fp32"


def test_explicit_choices_are_kept_and_nonsense_refused():
    assert pick_precision("fp32", CPU, ZEN5) == "fp32"
    assert pick_precision("bf16", CPU, ZEN3) == "bf16"  # the user asked for it
    with pytest.raises(AutoencError, match="--precision"):
        pick_precision("fp8", CPU, ZEN5)


def test_the_codec_in_bf16_is_close_to_fp32_and_says_where_it_is_refused(tmp_path):
    """encode/decode --precision bf16 (issue 30): the same picture within bf16's rounding; --stack stays fp32."""
    import numpy as np
    from conftest import photo_like, run_cli, write_image
    picture = write_image(tmp_path / "p.png", photo_like(np.random.default_rng(2), 96), format="PNG")
    run_cli("encode", picture, "-o", tmp_path / "fp32.npy")
    run_cli("encode", picture, "-o", tmp_path / "bf16.npy", "--precision", "bf16")
    fp32, bf16 = np.load(tmp_path / "fp32.npy"), np.load(tmp_path / "bf16.npy")
    assert not np.array_equal(fp32, bf16) and np.abs(fp32 - bf16).max() < 0.05 * np.abs(fp32).max()
    run_cli("decode", tmp_path / "bf16.npy", "-o", tmp_path / "bf16.png", "--precision", "bf16")
    refused = run_cli("encode", picture, "--stack", tmp_path / "s.npy", "--precision", "bf16", check=False)
    assert refused.returncode == 1 and "--stack encodes in fp32 only" in refused.stderr


def test_eval_takes_precision_and_auto_says_what_it_chose(tmp_path):
    """eval --precision runs the measure in that arithmetic (and says it in --json); with auto, encode, decode and
    eval say on stderr what auto chose, once, on the weights line."""
    import json

    import numpy as np
    from conftest import photo_like, run_cli, write_image
    rng = np.random.default_rng(3)
    for i in range(2):
        write_image(tmp_path / "d" / f"p{i}.png", photo_like(rng), format="PNG")
    chosen = pick_precision("auto", CPU)
    said = f"precision {chosen} (auto: {'native' if chosen == 'bf16' else 'no native bf16'} on cpu)"
    fp32 = json.loads(run_cli("eval", tmp_path / "d", "--json").stdout)
    bf16 = json.loads(run_cli("eval", tmp_path / "d", "--json", "--precision", "bf16").stdout)
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    assert fp32["psnr"] != bf16["psnr"] and abs(fp32["psnr"] - bf16["psnr"]) < 0.5
    whole = run_cli("eval", tmp_path / "d", "--whole", "--json", "--precision", "auto", "--device", "cpu")
    assert json.loads(whole.stdout)["precision"] == chosen and whole.stderr.count(said) == 1, whole.stderr
    for args in (["eval", tmp_path / "d", "--precision", "auto", "--device", "cpu"],
                 ["encode", tmp_path / "d" / "p0.png", "-o", tmp_path / "z.npy", "--precision", "auto"],
                 ["decode", tmp_path / "z.npy", "-o", tmp_path / "z.png", "--precision", "auto"]):
        assert run_cli(*args).stderr.count(said) == 1, args
    assert "precision" not in run_cli("decode", tmp_path / "z.npy", "-o", tmp_path / "y.png").stderr  # named: not said
    refused = run_cli("eval", tmp_path / "d", "--rd", "--precision", "bf16", check=False)
    assert refused.returncode == 1 and "--precision sets the network's arithmetic; it does not combine with --rd" in refused.stderr
