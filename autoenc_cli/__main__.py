from autoenc_cli.cli.app import app

app(prog_name="autoenc")
