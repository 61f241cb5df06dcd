"""Regenerate docs/architecture.png and the layer table in docs/architecture.md from the model itself.

    python docs/make_architecture.py
"""

from pathlib import Path

from autoenc_cli.model.architecture import diagram, layer_table, markdown_table

DOCS = Path(__file__).resolve().parent
BEGIN, END = "<!-- layer table: begin (python docs/make_architecture.py) -->", "<!-- layer table: end -->"


def main() -> None:
    rows = layer_table()
    diagram(rows).save(DOCS / "architecture.png", optimize=True)
    page = DOCS / "architecture.md"
    text = page.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{markdown_table(rows)}\n{END}{tail}")
    print(f"wrote {DOCS / 'architecture.png'} and the table in {page}")


if __name__ == "__main__":
    main()
