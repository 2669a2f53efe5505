"""The serial check against a simulated device (tests/support/fake_device.py): no firmware needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_device import FakeDevice, LossyProxy
from host_fixtures import make_synthetic

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.host import checkpoint
from lenet_mcu.host import protocol as proto
from lenet_mcu.host.verify import VerifyFailed, run_verify

pytestmark = pytest.mark.base


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def artifacts(synth, tmp_path):
    """A fresh copy of the artifacts folder per test (verify writes into it)."""
    import shutil

    dst = tmp_path / "artifacts"
    shutil.copytree(synth.artifacts, dst)
    return dst


def _verify(synth, artifacts, url, **kw):
    kw.setdefault("timeout", 0.5)
    kw.setdefault("hello_timeout", 3.0)
    return run_verify(artifacts, port=url, data_dir=synth.data_dir, progress=False, log=lambda m: None, **kw)


def _checkpoint_indices(artifacts):
    lines = (artifacts / "verify" / "checkpoint.jsonl").read_text().splitlines()
    return [json.loads(line)["i"] for line in lines[1:]]


def test_happy_path_reports_bit_exact_and_accuracy(synth, artifacts):
    limit = 300
    with FakeDevice(**synth.device_kwargs()) as dev:
        rep = _verify(synth, artifacts, dev.url, limit=limit)
    assert rep["result"] == "pass"
    assert rep["images"] == limit
    assert rep["bitexact"]["images_differing"] == 0
    assert rep["bitexact"]["max_abs_difference"] == 0
    # The synthetic host int8 reference differs from TFLM in every 97th image, first column.
    assert rep["bitexact"]["vs_host_tflite_int8"]["images_differing"] == len(range(0, limit, 97))
    expected_acc = float(np.mean(synth.tflm[:limit].argmax(axis=1) == synth.labels[:limit]))
    assert rep["accuracy"]["device"] == pytest.approx(expected_acc)
    assert rep["agreement"]["tflm_reference"] == 1.0
    per_class = rep["accuracy"]["per_class"]
    assert sum(c["images"] for c in per_class.values()) == limit
    assert np.array(rep["confusion_matrix"]).sum() == limit
    assert rep["ticks"]["min"] >= 100_000 and rep["ticks"]["unit"].startswith("TIM2")
    assert rep["throughput"]["images_per_second"] > 0
    assert rep["throughput"]["wire"]["bytes_to_device_per_image"] < 1024  # RLE made frames shorter than RAW
    assert rep["device"]["runtime"] == "fake"
    assert rep["device_stats"]["stack_peak_bytes"] == 812
    out = artifacts / "verify"
    assert json.loads((out / "report.json").read_text())["result"] == "pass"
    assert "PASS" in (out / "report.md").read_text()
    for png in ("confusion.png", "misclassified.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(_checkpoint_indices(artifacts)) == list(range(limit))
    from lenet_mcu.host.report import summary

    small = summary(rep)
    assert small["result"] == "pass" and small["images_differing_from_tflm"] == 0 and small["images"] == limit


def test_full_test_set(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        rep = _verify(synth, artifacts, dev.url)
    assert rep["images"] == 10000 and rep["result"] == "pass"


def test_differing_bytes_fail_the_check(synth, artifacts):
    bad = {3: 2, 17: -5}
    alter = {}
    for i, delta in bad.items():
        row = synth.tflm[i].astype(int)
        row[4] = np.clip(row[4] + delta, -128, 127)
        assert row[4] != synth.tflm[i][4]
        alter[synth.inputs[i].tobytes()] = row.astype(np.int8)
    with FakeDevice(**synth.device_kwargs(), alter=alter) as dev:
        with pytest.raises(VerifyFailed, match="2 of 50 images differ"):
            _verify(synth, artifacts, dev.url, limit=50)
    rep = json.loads((artifacts / "verify" / "report.json").read_text())
    assert rep["result"] == "fail"
    assert rep["bitexact"]["first_differing_images"] == [3, 17]
    expected_max = max(abs(int(alter[synth.inputs[i].tobytes()][4]) - int(synth.tflm[i][4])) for i in bad)
    assert rep["bitexact"]["max_abs_difference"] == expected_max


def test_stale_firmware_is_refused(synth, artifacts):
    kw = synth.device_kwargs()
    kw["sha_prefix"] = "0123456789abcdef"
    with FakeDevice(**kw) as dev:
        with pytest.raises(LenetMcuError) as err:
            _verify(synth, artifacts, dev.url, limit=10)
        assert dev.infer_received == 0
    msg = err.value.message
    assert "stale firmware" in msg and "0123456789abcdef" in msg and synth.sha256[:16] in msg
    assert "\n" not in msg
    assert not (artifacts / "verify" / "checkpoint.jsonl").exists()


def test_lossy_corrupting_link_gets_every_result_once(synth, artifacts):
    limit = 400
    with (
        FakeDevice(**synth.device_kwargs()) as dev,
        LossyProxy(dev.port, drop=0.002, corrupt=0.002, garbage=0.02, seed=7) as proxy,
    ):
        rep = _verify(synth, artifacts, proxy.url, limit=limit, timeout=0.3, window=4)
        assert proxy.damaged_bytes > 20  # the link really was bad
    assert rep["result"] == "pass" and rep["images"] == limit
    assert rep["link"]["retransmits"] > 0
    assert rep["link"]["bad_frames_received"] + sum(rep["link"]["device_errors"].values()) > 0
    indices = _checkpoint_indices(artifacts)
    assert sorted(indices) == list(range(limit))  # each exactly once
    assert dev.infer_received > limit  # some requests were sent again


def test_duplicate_answers_are_dropped(synth, artifacts):
    with FakeDevice(**synth.device_kwargs(), answer_twice=True) as dev:
        rep = _verify(synth, artifacts, dev.url, limit=100, window=4)
    assert rep["link"]["duplicates_dropped"] >= 100  # more if a slow machine caused a resend
    assert sorted(_checkpoint_indices(artifacts)) == list(range(100))


def test_device_reset_mid_run_is_detected_and_run_continues(synth, artifacts):
    with FakeDevice(**synth.device_kwargs(), reset_after=60) as dev:
        rep = _verify(synth, artifacts, dev.url, limit=200, window=4)
        assert dev.resets == 1
    assert rep["link"]["resets_detected"] == 1
    assert rep["result"] == "pass"
    assert sorted(_checkpoint_indices(artifacts)) == list(range(200))


def test_interrupted_run_resumes_without_duplicates(synth, artifacts):
    class Stop(KeyboardInterrupt):
        pass

    seen = []

    def interrupt_after_80(index):
        seen.append(index)
        if len(seen) == 80:
            raise Stop()

    with FakeDevice(**synth.device_kwargs()) as dev:
        with pytest.raises(Stop):
            _verify(synth, artifacts, dev.url, limit=250, on_result=interrupt_after_80)
        first = _checkpoint_indices(artifacts)
        assert len(first) == 80
        asked_before = len(dev.requested)
        rep = _verify(synth, artifacts, dev.url, limit=250, resume=True)
        index_of = {synth.inputs[i].tobytes(): i for i in range(250)}
        asked = {index_of[key] for key in dev.requested[asked_before:]}
        assert asked == set(range(250)) - set(first)  # only the missing ones were asked for
    assert rep["images"] == 250 and rep["result"] == "pass"
    assert rep["throughput"]["session_images"] == 170
    assert sorted(_checkpoint_indices(artifacts)) == list(range(250))


def test_resume_cuts_a_half_written_line(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        _verify(synth, artifacts, dev.url, limit=30)
        path = artifacts / "verify" / "checkpoint.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:21]) + lines[21][:7])  # 20 results and a torn one
        records, _, _, _ = checkpoint.read(path)
        assert len(records) == 20
        rep = _verify(synth, artifacts, dev.url, limit=30, resume=True)
    assert rep["images"] == 30
    assert sorted(_checkpoint_indices(artifacts)) == list(range(30))


def test_resume_refuses_checkpoint_of_another_model(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        _verify(synth, artifacts, dev.url, limit=5)
    path = artifacts / "verify" / "checkpoint.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    header["model_sha256"] = "f" * 64
    path.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with FakeDevice(**synth.device_kwargs()) as dev:
        with pytest.raises(LenetMcuError, match="model_sha256"):
            _verify(synth, artifacts, dev.url, limit=10, resume=True)


def test_resume_without_checkpoint_is_a_clear_error(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        with pytest.raises(LenetMcuError, match="no checkpoint"):
            _verify(synth, artifacts, dev.url, limit=5, resume=True)


def test_device_that_only_answers_requests(synth, artifacts):
    """A device that booted long ago (no boot HELLO) is asked with HELLO_REQUEST."""
    with FakeDevice(**synth.device_kwargs(), boot_hello=False) as dev:
        rep = _verify(synth, artifacts, dev.url, limit=20)
    assert rep["result"] == "pass"


def test_missing_references_is_a_clear_error(synth, artifacts):
    (artifacts / "references.npz").unlink()
    with pytest.raises(LenetMcuError, match="references.npz not found"):
        _verify(synth, artifacts, "socket://127.0.0.1:1", limit=5)


def test_missing_mnist_folder_is_a_clear_error(synth, artifacts, monkeypatch):
    monkeypatch.delenv("LENET_MCU_MNIST_DIR", raising=False)
    with pytest.raises(LenetMcuError, match="no MNIST folder given: pass --data DIR"):
        run_verify(artifacts, port="socket://127.0.0.1:1", data_dir=None, progress=False)


def test_references_of_other_data_are_refused(synth, artifacts):
    refs = dict(np.load(artifacts / "references.npz"))
    refs["labels"] = refs["labels"].copy()
    refs["labels"][7] = (refs["labels"][7] + 1) % 10
    np.savez(artifacts / "references.npz", **refs)
    with pytest.raises(LenetMcuError, match="MNIST test label 7 is"):
        _verify(synth, artifacts, "socket://127.0.0.1:1", limit=5)


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda p: p.write_bytes(b"not a zip file"), "cannot be read as an .npz file"),
        (lambda p: np.savez(p, labels=np.zeros(3, np.uint8)), "lacks float_pred, tflite_int8, tflm_int8"),
    ],
)
def test_damaged_references_are_a_clear_error(synth, artifacts, damage, expected):
    damage(artifacts / "references.npz")
    with pytest.raises(LenetMcuError, match=expected):
        _verify(synth, artifacts, "socket://127.0.0.1:1", limit=5)


def test_hung_device_is_a_clear_error_and_keeps_results(synth, artifacts):
    """A device that stops answering (crashed firmware) ends the run with a hint to resume."""

    class Hangs(FakeDevice):
        def _infer(self, frame, size):
            if self.results_sent >= 30:
                return b""  # no answer, ever
            return super()._infer(frame, size)

    with Hangs(**synth.device_kwargs()) as dev:
        with pytest.raises(LenetMcuError, match="the device stopped answering.*it hangs.*verify --resume"):
            _verify(synth, artifacts, dev.url, limit=100, timeout=0.05)
    assert sorted(_checkpoint_indices(artifacts)) == list(range(30))


# --- several devices ---------------------------------------------------------


def test_two_devices_share_the_images_into_one_checkpoint_and_report(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as a, FakeDevice(**synth.device_kwargs(), delay_s=0.002) as b:
        rep = _verify(synth, artifacts, [a.url, b.url], limit=300)
    assert rep["result"] == "pass" and rep["images"] == 300
    assert sorted(_checkpoint_indices(artifacts)) == list(range(300))
    per_device = {d["url"]: d["images"] for d in rep["devices"]}
    assert per_device == {a.url: a.results_sent, b.url: b.results_sent}
    assert sum(per_device.values()) == 300 and min(per_device.values()) > 0
    assert per_device[a.url] > per_device[b.url]  # the slower device was dealt fewer images
    assert "## Devices" in (artifacts / "verify" / "report.md").read_text()


def test_a_device_that_hangs_hands_its_images_to_the_others(synth, artifacts):
    with FakeDevice(**synth.device_kwargs(), hang_after=40) as bad, FakeDevice(**synth.device_kwargs()) as good:
        rep = _verify(synth, artifacts, [bad.url, good.url], limit=200, timeout=0.1)
    assert rep["result"] == "pass" and rep["images"] == 200
    assert sorted(_checkpoint_indices(artifacts)) == list(range(200))  # every image exactly once
    stopped = {d["url"]: d["stopped"] for d in rep["devices"]}
    assert "stopped answering" in stopped[bad.url] and stopped[good.url] is None


def test_resume_with_another_number_of_devices(synth, artifacts):
    class Stop(KeyboardInterrupt):
        pass

    seen = []

    def interrupt_after_60(index):
        seen.append(index)
        if len(seen) == 60:
            raise Stop()

    with FakeDevice(**synth.device_kwargs()) as a:
        with pytest.raises(Stop):
            _verify(synth, artifacts, a.url, limit=200, on_result=interrupt_after_60)
    assert len(_checkpoint_indices(artifacts)) >= 60
    with (
        FakeDevice(**synth.device_kwargs()) as a,
        FakeDevice(**synth.device_kwargs()) as b,
        FakeDevice(**synth.device_kwargs()) as c,
    ):
        rep = _verify(synth, artifacts, [a.url, b.url, c.url], limit=200, resume=True)
    assert rep["images"] == 200 and rep["result"] == "pass"
    assert sorted(_checkpoint_indices(artifacts)) == list(range(200))


def test_a_stale_device_among_several_is_refused_before_anything_is_written(synth, artifacts):
    stale = dict(synth.device_kwargs(), sha_prefix="0123456789abcdef")
    with FakeDevice(**synth.device_kwargs()) as good, FakeDevice(**stale) as bad:
        with pytest.raises(LenetMcuError, match="stale firmware"):
            _verify(synth, artifacts, [good.url, bad.url], limit=20)
    assert not (artifacts / "verify" / "checkpoint.jsonl").exists()


# --- results that cannot lie -------------------------------------------------


def test_references_of_another_model_are_refused(synth, artifacts):
    (artifacts / "lenet5_int8.tflite").write_bytes(b"another model")
    with FakeDevice(**synth.device_kwargs()) as dev:
        with pytest.raises(LenetMcuError, match="references.npz was computed from model sha256"):
            _verify(synth, artifacts, dev.url, limit=5)


def test_a_failed_rerun_leaves_no_earlier_report(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        _verify(synth, artifacts, dev.url, limit=20)
    assert (artifacts / "verify" / "report.json").is_file()

    def interrupt(index):
        raise KeyboardInterrupt

    with FakeDevice(**synth.device_kwargs()) as dev:
        with pytest.raises(KeyboardInterrupt):
            _verify(synth, artifacts, dev.url, limit=20, on_result=interrupt)
    assert not any(
        (artifacts / "verify" / name).exists()
        for name in ("report.json", "report.md", "confusion.png", "misclassified.png")
    )


def test_damaged_checkpoint_lines_are_named_and_skipped(synth, artifacts):
    with FakeDevice(**synth.device_kwargs()) as dev:
        _verify(synth, artifacts, dev.url, limit=30)
        path = artifacts / "verify" / "checkpoint.jsonl"
        lines = path.read_text().splitlines(keepends=True)
        nine = json.loads(lines[5])
        nine["out"] = nine["out"][:9]
        lines[5] = json.dumps(nine) + "\n"  # a record with 9 outputs instead of 10
        lines[12] = "{garbled\n"  # a garbled line in the middle
        path.write_text("".join(lines))
        records, _, _, damaged = checkpoint.read(path)
        assert len(records) == 28  # the lines after the garbled one still count
        assert damaged == ["line 6: 9 outputs, expected 10", damaged[1]] and damaged[1].startswith("line 13: ")
        said = []
        rep = run_verify(
            artifacts,
            port=dev.url,
            data_dir=synth.data_dir,
            progress=False,
            log=said.append,
            limit=30,
            resume=True,
            timeout=0.5,
        )
    assert rep["images"] == 30 and rep["throughput"]["session_images"] == 2
    assert any("line 6: 9 outputs, expected 10: skipped" in m for m in said)


def test_a_device_that_resets_on_every_request_is_diagnosed(synth, artifacts):
    with FakeDevice(**synth.device_kwargs(), reset_on_infer=True) as dev:
        with pytest.raises(LenetMcuError, match="resets when it infers"):
            _verify(synth, artifacts, dev.url, limit=20)


def test_ctx_encoding_is_used_when_the_device_offers_it(synth, artifacts):
    ctx = 1 << int(proto.Encoding.CTX)
    # Codes are made in the background while the device works: a device slower than the coder gets them.
    slow = dict(synth.device_kwargs(), delay_s=0.02)
    with FakeDevice(**slow) as old, FakeDevice(**slow, extra_encodings=ctx) as new:
        rep_old = _verify(synth, artifacts, old.url, limit=150)
        rep_new = _verify(synth, artifacts, new.url, limit=150)
    assert rep_old["result"] == rep_new["result"] == "pass"
    old_bytes = rep_old["throughput"]["wire"]["bytes_to_device_per_image"]
    new_bytes = rep_new["throughput"]["wire"]["bytes_to_device_per_image"]
    assert new_bytes < old_bytes, (old_bytes, new_bytes)  # random blobs; MNIST gains more (benchmarks/verify.py)
    assert proto.Encoding.CTX not in old.encodings_seen and new.encodings_seen.get(proto.Encoding.CTX, 0) > 75


@pytest.mark.parametrize("device_picks_smallest", [True, False])
def test_rbf_model_smallest_output_wins(tmp_path, device_picks_smallest):
    """references.npz says smallest_wins (an RBF model's distances): accuracy, agreement and the
    device's own class all follow argmin; a device still reporting the largest is caught."""
    rbf = make_synthetic(tmp_path / "rbf", seed=1, smallest_wins=True)
    limit = 200
    with FakeDevice(**rbf.device_kwargs(), smallest_wins=device_picks_smallest) as dev:
        rep = _verify(rbf, rbf.artifacts, dev.url, limit=limit)
    assert rep["result"] == "pass" and rep["bitexact"]["images_differing"] == 0  # the bytes are right either way
    assert "smallest" in rep["decision"]
    want = rbf.tflm[:limit].argmin(axis=1)
    assert rep["accuracy"]["tflm_reference"] == pytest.approx(float(np.mean(want == rbf.labels[:limit])))
    assert rep["accuracy"]["tflm_reference"] > 0.8  # the labels follow argmin, not argmax
    if device_picks_smallest:
        assert rep["accuracy"]["device"] == rep["accuracy"]["tflm_reference"]
        assert rep["agreement"]["tflm_reference"] == 1.0
        assert rep["bitexact"]["device_argmax_inconsistent"] == 0
    else:
        assert rep["bitexact"]["device_argmax_inconsistent"] > limit // 2
        assert rep["agreement"]["tflm_reference"] < 0.5
    assert "smallest wins" in (rbf.artifacts / "verify" / "report.md").read_text()
