"""The documentation, checked against the code: every shell and Python block of README.md and docs/*.md runs as
written, in a folder of small stand-ins for the pictures it names; the generated references match the code; no
page, message, --help or the bundled weights' metadata speaks of how the project is developed.

Blocks that cannot run here carry a visible mark on the line before them, `<!-- not run: REASON -->`; each one is
reported as a skipped test with its reason. Runs are shortened: `--max-steps N`, `--steps N` and `--epochs N` over
the stand-ins' size become small numbers (SHORTER below), so the whole set stays within a couple of minutes."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_imagenet, photo_like, run_cli, write_image

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)\n(.*?)^```\s*$", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")
SHELL, PYTHON, INERT = {"sh", "bash"}, {"python"}, {"text", "json", "csv"}
SHORTER = [(re.compile(r"--max-steps \d+"), "--max-steps 3"), (re.compile(r"--steps \d+"), "--steps 3"),
           (re.compile(r"--epochs \d+"), "--epochs 1")]


def blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, why it is not run or None) for every fenced block of a page."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        why = NOT_RUN.search(before)
        found.append((line, match.group(1), match.group(2), why.group(1) if why else None))
    return found


def runnable(page: Path):
    return [(line, lang, code) for line, lang, code, why in blocks(page) if why is None and lang in SHELL | PYTHON]


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_every_block_says_what_it_is():
    """A block without a language could be a command nobody runs: each says sh, bash, python, or text/json/csv."""
    unknown = [f"{name(p)}:{line} ```{lang}" for p in PAGES for line, lang, _, _ in blocks(p)
               if lang not in SHELL | PYTHON | INERT]
    assert not unknown, f"blocks with no or an unknown language: {unknown}"


SKIPPED = [(p, line, why) for p in PAGES for line, lang, _, why in blocks(p) if why is not None]


@pytest.mark.parametrize("page,line,why", SKIPPED, ids=[f"{name(p)}:{line}" for p, line, _ in SKIPPED])
def test_blocks_marked_not_run(page, line, why):
    """Listed one by one, so that the test report counts them and says why each is not run."""
    assert len(SKIPPED) <= 16, "more blocks marked 'not run' than the few that need a GPU, machines or downloads"
    pytest.skip(f"{name(page)}:{line}: not run: {why}")


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    """Small pictures under the names the pages use."""
    root = tmp_path_factory.mktemp("docs")
    rng = np.random.default_rng(0)
    make_tiny_imagenet(root / "tiny-imagenet-200", classes=3, per_class=20, val=6, corrupt=False)
    write_image(root / "photo.jpg", photo_like(rng, 96)[:70, :90], format="JPEG")
    write_image(root / "big.png", photo_like(rng, 160)[:150, :160], format="PNG")
    for i in range(12):
        side = 64 + 16 * (i % 4)
        write_image(root / "my-photos" / f"p{i}.jpg", photo_like(rng, side), format="JPEG")
        write_image(root / "pictures" / f"p{i}.png", photo_like(rng), format="PNG")
    for i in range(3):
        write_image(root / "held-out-photos" / f"h{i}.png", photo_like(rng, 80)[:70], format="PNG")
        write_image(root / "crops" / f"c{i}.jpg", photo_like(rng), format="JPEG", quality=90)
    return root


def run_shell(code: str, cwd: Path, where: str) -> None:
    for pattern, short in SHORTER:
        code = pattern.sub(short, code)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", COLUMNS="120")
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{where} failed ({proc.returncode}):\n{code}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"


RUNNABLE = [p for p in PAGES if runnable(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[name(p) for p in RUNNABLE])
def test_page_runs_as_written(page, stand_ins, tmp_path, monkeypatch):
    """The page's blocks in order, in a fresh copy of the stand-ins (a later block uses what an earlier one made)."""
    work = tmp_path / "work"
    shutil.copytree(stand_ins, work)
    monkeypatch.chdir(work)
    namespace: dict = {}
    for line, lang, code in runnable(page):
        where = f"{name(page)}:{line}"
        if lang in SHELL:
            run_shell(code, work, where)
        else:
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's own example


def test_the_readme_test_command_is_what_ci_runs():
    command = "python -m pytest -q -m 'slow or not slow'"
    assert command in (ROOT / "README.md").read_text()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_every_link_between_pages_leads_somewhere():
    missing = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                missing.append(f"{name(page)} -> {target}")
    assert not missing, missing


def test_the_references_are_what_the_code_says_now():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    for path, text in make_reference.pages().items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} differs from the code's help and docstrings: run `python docs/make_reference.py`"
            " and commit the result")


# Words of how the project is developed, which no user-facing text may hold. Chosen to have no false positives:
# onnxruntime's InferenceSession does not match \bsession (no word boundary inside it).
DEVELOPMENT = re.compile(r"\bsessions?\b|\bthis (2-core |quiet |same )?(machine|cpu|xeon|zen|h100|h200|gpu)\b"
                         r"|\b(fourth|fifth|sixth|seventh|eighth|ninth)\b|lab notebook|\bissue \d+"
                         r"|\bweights now\b|\bthe lead\b|\bworktree\b|\bhelper session", re.I)


def development_words(text: str) -> list[str]:
    return [m.group(0) for m in DEVELOPMENT.finditer(text)]


def test_no_page_or_module_speaks_of_how_the_project_is_developed():
    texts = {name(p): p.read_text() for p in PAGES}
    texts.update({str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "autoenc_cli").rglob("*.py")})
    found = {where: words for where, text in texts.items() if (words := development_words(text))}
    assert not found, found


def test_no_help_or_weights_metadata_speaks_of_it():
    from autoenc_cli.model.weights import default_weights_path, read_metadata
    helps = {"autoenc --help": run_cli("--help").stdout}
    for command in ("download", "train", "encode", "decode", "eval", "score", "export", "info", "plot", "bench"):
        helps[f"autoenc {command} --help"] = run_cli(command, "--help").stdout
    helps["bundled weights' metadata"] = json.dumps(read_metadata(default_weights_path()))
    found = {where: words for where, text in helps.items() if (words := development_words(text))}
    assert not found, found


def test_the_word_list_catches_what_it_is_for():
    assert development_words("measured on this machine in the fifth session")
    assert not development_words("ort.InferenceSession('encoder.onnx'); a third of the latent")
