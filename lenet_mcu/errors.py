"""One error type for everything a user can get wrong.

The CLI prints these as a single line (no traceback) and exits non-zero.
Messages name the file or value and say what was expected.
"""
import click


class LenetMcuError(click.ClickException):
    """A user-facing failure: bad input file, missing tool, stale firmware..."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message
