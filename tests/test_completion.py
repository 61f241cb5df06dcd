"""Shell completion as Typer provides it: the installed `autoenc` completes commands and choices, for the shell named."""

import pytest
from conftest import run_cli


def complete(words: str) -> list[str]:
    """What bash completion offers for the command line `words` (completing its last word)."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_AUTOENC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    return run_cli(env=env).stdout.split()


def test_completes_commands_options_and_choices():
    assert "encode" in complete("autoenc en")
    assert {"info", "plot"} <= set(complete("autoenc "))
    assert "--dtype" in complete("autoenc encode --d")
    assert set(complete("autoenc encode --dtype ")) == {"float32", "float16", "int8"}
    assert set(complete("autoenc train --precision ")) == {"auto", "fp32", "bf16"}
    assert "cuda" in complete("autoenc train --device cu")


SCRIPTS = {"bash": ("complete -o default -F _autoenc_completion autoenc", ".bash_completions/autoenc.sh"),
           "zsh": ("#compdef autoenc", ".zfunc/_autoenc"),
           "fish": ("complete --command autoenc", ".config/fish/completions/autoenc.fish")}


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_show_and_install_completion_for_the_shell_named(tmp_path, shell):
    marker, installed = SCRIPTS[shell]
    assert marker in run_cli("--show-completion", shell).stdout
    proc = run_cli("--install-completion", shell, env={"HOME": str(tmp_path), "SHELL": "/bin/bash"}, process=True)
    assert f"{shell} completion installed" in proc.stdout
    assert (tmp_path / installed).is_file()


def test_powershell_script_is_its_own():
    assert "Register-ArgumentCompleter" in run_cli("--show-completion", "powershell").stdout
