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
    return subprocess.Popen([sys.executable, "-c", NO_TF_MAIN, "verify", "--artifacts", str(synth.artifacts),
                             "--data", str(synth.data_dir), "--port", url, "--timeout", "0.5", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


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
    assert err.strip().splitlines()[-1].startswith("error: 1 of 20 images differ from the TFLM reference (largest difference 1)")
