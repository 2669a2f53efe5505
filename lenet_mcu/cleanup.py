"""Nothing left behind by a killed run: helper processes die with their parent,
and a later run removes the temporary files of runs that died.

Temporaries that may be left behind carry their creator's pid right after a
fixed prefix (`.reference-1234-...`, `.lenet5.part1234.keras`), so a later run
can tell a dead run's leftovers from a live run's files.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove entries of `folder` named `prefix<pid>...` whose process no longer runs; return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    pattern = re.compile(re.escape(prefix) + r"(\d+)")
    for entry in folder.iterdir():
        m = pattern.match(entry.name)
        if not m or _running(int(m.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
