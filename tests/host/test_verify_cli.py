"""`lenet-mcu verify` as a process: killed mid-run and resumed, and never importing TensorFlow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from fake_device import FakeDevice
from host_fixtures import make_synthetic

pytestmark = pytest.mark.base

# Runs the CLI with TensorFlow, Keras and the TFLite interpreters made unimportable:
# verify must work on a host-only install that has none of them.
NO_TF_MAIN = textwrap.dedent("""
    import sys

    class Blocker:
        BLOCKED = ("tensorflow", "keras", "tflite_runtime", "tflite_micro")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"{name} is blocked: verify must not need it")
            return None

    sys.meta_path.insert(0, Blocker())
    from lenet_mcu.cli import main
    main(sys.argv[1:])
""")


def summary(out: str) -> str:
    """stdout without the progress lines (stdout is a pipe here, so progress comes as lines)."""
    return "\n".join(line for line in out.splitlines() if not line.startswith("verify: "))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


def _verify_process(synth, url, *args, **popen):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            NO_TF_MAIN,
            "verify",
            "--artifacts",
            str(synth.artifacts),
            "--data",
            str(synth.data_dir),
            "--port",
            url,
            "--timeout",
            "0.5",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _checkpoint_indices(synth):
    path = synth.artifacts / "verify" / "checkpoint.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line)["i"] for line in lines[1:] if line.endswith("}")]


def test_cli_runs_without_tensorflow_and_prints_summary(synth):
    with FakeDevice(**synth.device_kwargs()) as dev:
        proc = _verify_process(synth, dev.url, "--limit", "100")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert summary(out).startswith("PASS: 100 images on fake-board/fake; 0 differ from the TFLM reference")
    assert "ticks per inference min/median/max" in out


def test_killed_run_resumes_and_completes_without_duplicates(synth):
    import shutil

    limit = 400
    shutil.rmtree(synth.artifacts / "verify", ignore_errors=True)  # no checkpoint from an earlier test
    with FakeDevice(**synth.device_kwargs(), delay_s=0.004) as dev:
        proc = _verify_process(synth, dev.url, "--limit", str(limit))
        deadline = time.monotonic() + 60
        while len(_checkpoint_indices(synth)) < 100 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.communicate(timeout=30)
        kept = _checkpoint_indices(synth)
        assert 100 <= len(kept) < limit, "the run was not interrupted mid-way"
        assert len(set(kept)) == len(kept)

        resumed = _verify_process(synth, dev.url, "--limit", str(limit), "--resume")
        out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"resuming: {len(kept)} of {limit} results already in" in err
    assert summary(out).startswith(f"PASS: {limit} images")
    indices = _checkpoint_indices(synth)
    assert sorted(indices) == list(range(limit))
    report = json.loads((synth.artifacts / "verify" / "report.json").read_text())
    assert report["throughput"]["session_images"] == limit - len(kept)


def test_cli_exit_code_1_when_bytes_differ(synth):
    import numpy as np

    row = synth.tflm[5].astype(int)
    row[0] = row[0] + 1 if row[0] < 127 else row[0] - 1
    alter = {synth.inputs[5].tobytes(): row.astype(np.int8)}
    with FakeDevice(**synth.device_kwargs(), alter=alter) as dev:
        proc = _verify_process(synth, dev.url, "--limit", "20")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert summary(out).startswith("FAIL: 20 images")
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("error: 1 of 20 images differ from the TFLM reference (largest difference 1)")
    )


# --- bad input: one line naming what is wrong, exit 2, nothing lost ---------------


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "lenet_mcu.cli", *map(str, args)], capture_output=True, text=True, timeout=120
    )


def _one_line_error(proc, *expected):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_bad_ports_are_one_line_errors(synth, tmp_path):
    from fake_device import ClosingServer

    base = ("verify", "--artifacts", synth.artifacts, "--data", synth.data_dir, "--hello-timeout", "2")
    _one_line_error(_run_cli(*base, "--port", tmp_path), str(tmp_path), "is a directory")
    _one_line_error(_run_cli(*base, "--port", "socket://localhost"), "socket://HOST:PORT")
    with ClosingServer() as server:
        _one_line_error(_run_cli(*base, "--port", server.url), server.url)


def test_a_file_given_as_data_folder_is_named_as_a_file(synth, tmp_path):
    not_a_folder = tmp_path / "mnist.gz"
    not_a_folder.write_bytes(b"x")
    _one_line_error(
        _run_cli("verify", "--artifacts", synth.artifacts, "--data", not_a_folder, "--port", "socket://127.0.0.1:9"),
        str(not_a_folder),
        "is a file",
    )


def test_a_damaged_gzip_mnist_file_is_a_one_line_error(synth, tmp_path):
    import gzip
    import shutil

    data = tmp_path / "mnist"
    shutil.copytree(synth.data_dir, data)
    images = data / "t10k-images-idx3-ubyte"
    packed = bytearray(gzip.compress(images.read_bytes()))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = bytes(64)  # valid header, damaged deflate stream
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    images.unlink()
    with FakeDevice(**synth.device_kwargs()) as dev:
        proc = _run_cli("verify", "--artifacts", synth.artifacts, "--data", data, "--port", dev.url)
    _one_line_error(proc, "t10k-images-idx3-ubyte.gz")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_artifacts_folder_is_a_one_line_error(synth, tmp_path):
    import shutil

    art = tmp_path / "artifacts"
    shutil.copytree(synth.artifacts, art)
    (art / "verify").mkdir()
    os.chmod(art / "verify", 0o555)
    try:
        with FakeDevice(**synth.device_kwargs()) as dev:
            proc = _run_cli("verify", "--artifacts", art, "--data", synth.data_dir, "--port", dev.url, "--limit", 5)
    finally:
        os.chmod(art / "verify", 0o755)
    _one_line_error(proc, str(art / "verify"))


def test_a_full_disk_keeps_the_checkpoint_valid_for_resume(synth, tmp_path, monkeypatch):
    import errno
    import shutil

    from lenet_mcu.errors import LenetMcuError
    from lenet_mcu.host import checkpoint as ckpt_mod
    from lenet_mcu.host.verify import run_verify

    art = tmp_path / "artifacts"
    shutil.copytree(synth.artifacts, art)
    real_add = ckpt_mod.Checkpoint.add

    def add_until_full(self, record):
        if len(self.records) >= 25:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_add(self, record)

    kw = dict(data_dir=synth.data_dir, progress=False, log=lambda m: None, limit=60, timeout=0.5)
    with FakeDevice(**synth.device_kwargs()) as dev:
        monkeypatch.setattr(ckpt_mod.Checkpoint, "add", add_until_full)
        with pytest.raises(LenetMcuError, match="No space left on device.*--resume"):
            run_verify(art, port=dev.url, **kw)
        monkeypatch.setattr(ckpt_mod.Checkpoint, "add", real_add)
        rep = run_verify(art, port=dev.url, resume=True, **kw)
    assert rep["images"] == 60 and rep["throughput"]["session_images"] == 35
