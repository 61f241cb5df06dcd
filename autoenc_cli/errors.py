"""One exception type for everything a user can get wrong; the CLI prints it as one line."""


class AutoencError(Exception):
    """A problem with the user's input, files or options (not a bug)."""
