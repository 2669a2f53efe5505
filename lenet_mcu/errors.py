"""The error types library code raises for what a user can get wrong.

Plain exceptions: the library does not depend on the command line. The CLI
(lenet_mcu.cli) prints them as one line, without a traceback, and exits with
their `exit_code`. Messages name the file or value and say what was expected.
"""


class LenetMcuError(Exception):
    """A user-facing failure: bad input file, missing tool, stale firmware..."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every cleanup (emulators, checkpoints) runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
