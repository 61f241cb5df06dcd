"""The `autoenc` command: each command parses, calls a library function, prints. app.py holds the Typer app and
the codec and training commands, work.py eval / score / export, rd.py eval --rd's output, common.py what they share,
info.py `autoenc info`, progress.py the bars, terminal.py output that survives a closed pipe.

May import: everything (autoenc_cli.api, measures, training, codec, model). Nothing imports it.
"""
