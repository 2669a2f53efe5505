"""The `lenet-mcu` command itself: help, exit codes, and one line for an extra that is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lenet_mcu.cli import EXIT_CODES

pytestmark = pytest.mark.base

# Runs the CLI as if the named packages were not installed (as in a base install).
WITHOUT = textwrap.dedent("""
    import sys

    class NotInstalled:
        def __init__(self, names):
            self.names = set(names)

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.names:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled(sys.argv[1].split(",")))
    from lenet_mcu.cli import main
    main(sys.argv[2:])
""")

TRAIN_EXTRA = "tensorflow,keras"
CODEGEN_EXTRA = "jinja2,flatbuffers,tflite_micro,tflite_runtime,ai_edge_litert"


def lenet_mcu(*args, without: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, without, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_no_arguments_prints_help_and_exits_0():
    proc = lenet_mcu()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ") and "verify" in proc.stdout and proc.stderr == ""


def test_help_documents_every_exit_code():
    proc = lenet_mcu("--help")
    assert proc.returncode == 0
    for code, meaning in EXIT_CODES.items():
        assert f"{code:<4} {meaning}" in proc.stdout


@pytest.mark.parametrize(
    "command,extra",
    [
        (["train"], "train"),
        (["quantize"], "train"),
        (["evaluate"], "train"),
        (["pipeline", "--fast"], "train"),
        (["codegen"], "codegen"),
    ],
)
def test_a_command_without_its_extra_says_which_to_install(command, extra, tmp_path):
    proc = lenet_mcu(*command, "--artifacts", tmp_path / "a", without=f"{TRAIN_EXTRA},{CODEGEN_EXTRA}")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'lenet-mcu[{extra}]'" in lines[0], lines
    assert lines[0].startswith(f"error: `lenet-mcu {command[0]}` needs ")


def test_codegen_extra_missing_on_its_own(tmp_path):
    proc = lenet_mcu("codegen", "--artifacts", tmp_path, without=CODEGEN_EXTRA)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: `lenet-mcu codegen` needs jinja2, flatbuffers, tflite-micro (the 'codegen' "
        "extra), which are not installed: pip install 'lenet-mcu[codegen]'; tflite-micro "
        "has wheels for Linux x86_64 only"
    )


def test_build_with_stale_c_and_no_codegen_extra_is_one_line(tmp_path):
    (tmp_path / "lenet5_int8.tflite").write_bytes(b"\x00\x00\x00\x00TFL3")
    proc = lenet_mcu("build", "--artifacts", tmp_path, without=CODEGEN_EXTRA)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith(f"error: generating C for {tmp_path / 'lenet5_int8.tflite'} needs ")


def test_help_of_a_command_works_without_its_extra():
    proc = lenet_mcu("train", "--help", without=TRAIN_EXTRA)
    assert proc.returncode == 0 and "--epochs" in proc.stdout
