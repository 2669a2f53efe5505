"""What `lenet-mcu verify` prints for people and for programs: progress lines in logs, --json."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from fake_device import FakeDevice
from host_fixtures import make_synthetic

pytestmark = pytest.mark.base


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


def verify(synth, url, *args):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lenet_mcu.cli",
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
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_log_gets_progress_lines_then_the_summary(synth):
    with FakeDevice(**synth.device_kwargs()) as dev:
        proc = verify(synth, dev.url, "--limit", "200")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("verify: 200/200 images (100%), ") and lines[0].endswith(" images/s")
    assert lines[1].startswith("PASS: 200 images on fake-board/fake; 0 differ")


def test_json_summary_of_a_pass(synth):
    with FakeDevice(**synth.device_kwargs()) as dev:
        proc = verify(synth, dev.url, "--limit", "150", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout holds the JSON only; progress went to stderr
    assert summary["result"] == "pass" and summary["exit_code"] == 0
    assert summary["images"] == 150 and summary["images_differing_from_tflm"] == 0
    assert summary["report"] == str(synth.artifacts / "verify" / "report.json")
    assert "verify: 150/150 images" in proc.stderr


def test_json_summary_of_a_failure(synth):
    bad = [3, 40, 77]
    alter = {}
    for i in bad:
        row = synth.tflm[i].astype(np.int16)
        row[2] += 1 if row[2] < 127 else -1
        alter[synth.inputs[i].tobytes()] = row.astype(np.int8)
    with FakeDevice(**synth.device_kwargs(), alter=alter) as dev:
        proc = verify(synth, dev.url, "--limit", "100", "--json")
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert (summary["result"], summary["exit_code"], summary["images_differing_from_tflm"]) == ("fail", 1, 3)
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 3 of 100 images differ from the TFLM reference")


def test_json_summary_of_a_bad_port(synth):
    proc = verify(synth, "socket://127.0.0.1:1", "--json", "--hello-timeout", "0.5")
    assert proc.returncode == 2
    summary = json.loads(proc.stdout)
    assert summary["result"] == "error" and summary["exit_code"] == 2
    assert proc.stderr.strip() == f"error: {summary['error']}"
