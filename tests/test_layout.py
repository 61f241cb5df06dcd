"""The package's layout shows its architecture (issue 32): imports go one way, from the command line down to the
model, and every module's home is found from its name alone."""

import ast
from pathlib import Path

import autoenc_cli

PACKAGE = Path(autoenc_cli.__file__).parent
# each part may import the parts below it, never one above (the Python API sits between measures and the command line)
LEVELS = {"errors": 0, "fileio": 0, "model": 1, "data": 2, "codec": 3, "training": 4, "measures": 5, "api": 6, "__init__": 6,
          "cli": 7, "__main__": 7}


def part(module: str) -> str:
    """autoenc_cli.codec.tiles -> codec; autoenc_cli.api -> api."""
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autoenc_cli"):
            found.add(node.module if node.module != "autoenc_cli" else "autoenc_cli")
            assert node.level == 0, f"{path}: relative import"
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("autoenc_cli")}
    return found


def test_imports_go_one_way_from_the_command_line_down_to_the_model():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        here = relative.parts[0].removesuffix(".py")
        for module in imports(path):
            there = part(module)
            if module == "autoenc_cli" and here != "cli":
                continue  # __version__
            if LEVELS[there] > LEVELS[here]:
                wrong.append(f"{relative} imports {module}")
    assert not wrong, "imports that go up:\n" + "\n".join(wrong)


def test_every_module_name_is_unique_and_every_part_says_what_it_holds():
    names = [p.stem for p in PACKAGE.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    for sub in ("model", "data", "codec", "training", "measures", "cli"):
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text()))
        assert doc and "May import" in doc, sub


def test_the_command_line_starts_without_torch():
    """`autoenc --help` and option parsing never wait for torch's import (about 1.5 s on 2 cores)."""
    import subprocess
    import sys
    code = "import sys, autoenc_cli.cli.app; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
