"""Shell completion as Typer provides it: the installed `autoenc` completes commands and choices."""

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


def test_install_completion_writes_the_script(tmp_path):
    proc = run_cli("--install-completion", "bash", env={"HOME": str(tmp_path), "SHELL": "/bin/bash"})
    assert "completion installed" in proc.stdout
    script = tmp_path / ".bash_completions" / "autoenc.sh"
    assert "_AUTOENC_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    assert "complete -o default -F _autoenc_completion autoenc" in run_cli("--show-completion", "bash").stdout
