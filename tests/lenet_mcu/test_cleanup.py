"""Helper processes die with their parent; a later run removes a dead run's temporaries."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from lenet_mcu.cleanup import remove_stale


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_a_dead_runs_temporaries_are_removed(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    (tmp_path / f".reference-{dead}-abc").mkdir()
    (tmp_path / f".reference-{dead}-abc" / "reference.npz").write_bytes(b"x")
    (tmp_path / f".reference-{live}-def").mkdir()
    (tmp_path / f".lenet5.part{dead}.keras").write_bytes(b"x")
    (tmp_path / "references.npz").write_bytes(b"keep")
    removed = remove_stale(tmp_path, ".reference-") + remove_stale(tmp_path, ".lenet5.part")
    assert sorted(p.name for p in removed) == sorted([f".reference-{dead}-abc", f".lenet5.part{dead}.keras"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".reference-{live}-def", "references.npz"])


def test_a_helper_dies_with_its_killed_parent(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
    "from lenet_mcu.cleanup import die_with_parent; import os, time; die_with_parent(); "
    "open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"])
time.sleep(60)
""",
        ]
    )
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    else:
        os.kill(child, 9)
        raise AssertionError("the helper outlived its killed parent")
