"""Host-side accuracy report: float Keras vs int8 desktop TFLite vs int8 TFLM.

Float predictions come from Keras in this process; both int8 interpreters run in
a child process (`python -m lenet_mcu.quantize.reference`) because tflite-runtime
cannot coexist with an imported TensorFlow. Writes metrics.json,
references.npz (the serial check's golden data, readable without TensorFlow)
and confusion.png (int8 TFLM predictions).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lenet_mcu import atomic, mnist, plots
from lenet_mcu.artifacts import CONFUSION_PNG, KERAS_MODEL, METRICS, REFERENCES, TFLITE_MODEL
from lenet_mcu.cleanup import remove_stale
from lenet_mcu.decision import predict, rule_name, smallest_wins
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.interpreters import default_workers
from lenet_mcu.quantize.reference import save_npz
from lenet_mcu.quantize.tflite_check import check_lenet_int8

#: Keys of references.npz other stages rely on (see the brief). smallest_wins: the outputs are
#: RBF distances and the smallest names the class (lenet_mcu.decision); absent in older files = False.
REFERENCE_KEYS = (
    "labels",
    "float_pred",
    "tflite_int8",
    "tflm_int8",
    "input_scale",
    "input_zero_point",
    "smallest_wins",
)


def float_predictions(keras_path: Path, data_dir, smallest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(float_pred uint8 [N], labels) from the Keras model on the test split."""
    from lenet_mcu.train import load_keras_model

    model = load_keras_model(keras_path)
    images, labels = mnist.load_split("test", data_dir)
    from lenet_mcu.tf_import import quiet_stderr

    with quiet_stderr():
        outputs = model.predict(mnist.preprocess(images), batch_size=1000, verbose=0)
    return predict(outputs, smallest).astype(np.uint8), labels


def run_reference_process(model_path: Path, data_dir, out_path: Path, workers: int, echo=print) -> None:
    """Desktop TFLite + TFLM outputs via a TensorFlow-free child process; its progress lines go to `echo`."""
    cmd = [
        sys.executable,
        "-m",
        "lenet_mcu.quantize.reference",
        str(model_path),
        "--out",
        str(out_path),
        "--workers",
        str(workers),
    ]
    if data_dir is not None:
        cmd += ["--data", str(data_dir)]
    with tempfile.TemporaryFile("w+") as err:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True) as proc:
            for line in proc.stdout:
                echo(line.rstrip())
        err.seek(0)
        lines = [line for line in err.read().strip().splitlines() if line.strip()]
    if proc.returncode != 0:
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise LenetMcuError(f"int8 reference run on {model_path} failed: {last.removeprefix('error: ')}")


def compare_int8(a: np.ndarray, b: np.ndarray, smallest: bool = False) -> dict:
    """How often and by how much two int8 output sets differ (a - b)."""
    diff = a.astype(np.int16) - b.astype(np.int16)
    nonzero = diff[diff != 0]
    values, counts = np.unique(np.abs(nonzero), return_counts=True)
    return {
        "images_differing": int(np.any(diff != 0, axis=1).sum()),
        "elements_differing": int(nonzero.size),
        "elements_total": int(diff.size),
        "max_abs_difference": int(np.abs(diff).max()) if diff.size else 0,
        "abs_difference_histogram": {str(int(v)): int(c) for v, c in zip(values, counts)},
        "argmax_disagreements": int((predict(a, smallest) != predict(b, smallest)).sum()),
    }


def build_metrics(refs: dict, float_pred: np.ndarray, smallest: bool = False) -> dict:
    labels = refs["labels"]
    tflite_pred = predict(refs["tflite_int8"], smallest)
    tflm_pred = predict(refs["tflm_int8"], smallest)
    n = int(len(labels))
    acc = lambda pred: float((pred == labels).mean())  # noqa: E731
    return {
        "test_images": n,
        "decision": rule_name(smallest),
        "accuracy": {"float": acc(float_pred), "tflite_int8": acc(tflite_pred), "tflm_int8": acc(tflm_pred)},
        "errors": {
            "float": int((float_pred != labels).sum()),
            "tflite_int8": int((tflite_pred != labels).sum()),
            "tflm_int8": int((tflm_pred != labels).sum()),
        },
        "agreement": {
            "float_vs_tflite_int8": float((float_pred == tflite_pred).mean()),
            "float_vs_tflm_int8": float((float_pred == tflm_pred).mean()),
            "tflite_int8_vs_tflm_int8": float((tflite_pred == tflm_pred).mean()),
        },
        "tflite_vs_tflm_outputs": compare_int8(refs["tflite_int8"], refs["tflm_int8"], smallest),
        "quantization": {
            "input_scale": float(refs["input_scale"]),
            "input_zero_point": int(refs["input_zero_point"]),
            "output_scale": float(refs["output_scale"]),
            "output_zero_point": int(refs["output_zero_point"]),
        },
        "confusion_tflm_int8": plots.confusion_matrix(labels, tflm_pred).tolist(),
    }


def format_table(metrics: dict) -> str:
    acc, err, agr = metrics["accuracy"], metrics["errors"], metrics["agreement"]
    d = metrics["tflite_vs_tflm_outputs"]
    n = metrics["test_images"]
    tflite = metrics.get("interpreters", {}).get("tflite_int8", "desktop TFLite").split(" ")[0]
    rows = [
        f"{'model':<28}{'accuracy':>10}{'errors':>8}{'agrees with float':>20}",
        f"{'float (Keras)':<28}{100 * acc['float']:>9.2f}%{err['float']:>8}{'-':>20}",
        f"{'int8 ' + tflite:<28}{100 * acc['tflite_int8']:>9.2f}%{err['tflite_int8']:>8}"
        f"{100 * agr['float_vs_tflite_int8']:>19.2f}%",
        f"{'int8 TFLM (golden)':<28}{100 * acc['tflm_int8']:>9.2f}%{err['tflm_int8']:>8}"
        f"{100 * agr['float_vs_tflm_int8']:>19.2f}%",
        "",
        f"class = {metrics.get('decision', rule_name(False))} of the 10 outputs",
        f"{tflite} vs TFLM int8 outputs on {n} images: {d['images_differing']} images differ "
        f"({d['elements_differing']} of {d['elements_total']} values, max |diff| {d['max_abs_difference']}, "
        f"|diff| histogram {d['abs_difference_histogram']}), top-1 differs on {d['argmax_disagreements']}",
    ]
    return "\n".join(rows)


def evaluate(data_dir, artifacts: Path, model_path: Path | None = None, workers: int | None = None, echo=print) -> dict:
    """Evaluate artifacts' .keras and .tflite on all test images; write metrics, references, PNG."""
    artifacts = Path(artifacts)
    model_path = Path(model_path) if model_path else artifacts / TFLITE_MODEL
    info = check_lenet_int8(model_path)  # a corrupt or foreign file stops here, before any slow work
    smallest = smallest_wins(info.ops)
    workers = workers or default_workers()

    t0 = time.perf_counter()
    float_pred, labels = float_predictions(artifacts / KERAS_MODEL, data_dir, smallest)
    t_float = time.perf_counter() - t0
    echo(
        f"float predictions: {len(labels)} test images in {t_float:.1f}s; running the int8 interpreters "
        f"(desktop TFLite and TFLM, reference kernels, {workers} workers each) in a subprocess"
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    remove_stale(artifacts, ".reference-")  # left by an evaluate that was killed
    with tempfile.TemporaryDirectory(dir=artifacts, prefix=f".reference-{os.getpid()}-") as tmp:
        part = Path(tmp) / "reference.npz"
        run_reference_process(model_path, data_dir, part, workers, echo)
        with np.load(part) as z:
            refs = {k: z[k] for k in z.files}
    if not np.array_equal(refs["labels"], labels):
        raise LenetMcuError("test labels differ between the float and int8 runs (MNIST files changed mid-run?)")

    references = {
        k: refs[k]
        for k in (
            "labels",
            "tflite_int8",
            "tflm_int8",
            "input_scale",
            "input_zero_point",
            "output_scale",
            "output_zero_point",
        )
    }
    references["float_pred"] = float_pred
    references["smallest_wins"] = np.bool_(smallest)
    references = {k: references[k] for k in (*REFERENCE_KEYS, "output_scale", "output_zero_point")}
    references["model_sha256"] = np.str_(atomic.sha256_file(model_path))  # verify refuses another model's
    save_npz(artifacts / REFERENCES, references)

    metrics = build_metrics(refs, float_pred, smallest)
    metrics["model"] = {"path": model_path.name, "sha256": atomic.sha256_file(model_path)}
    metrics["interpreters"] = {
        "tflite_int8": f"{refs['tflite_interpreter']} (reference kernels)",
        "tflm_int8": str(refs["tflm_interpreter"]),
    }
    metrics["seconds"] = {
        "float_keras": round(t_float, 2),
        "tflite_int8": round(float(refs["tflite_seconds"]), 2),
        "tflm": round(float(refs["tflm_seconds"]), 2),
        "tflm_workers": int(refs["tflm_workers"]),
        "evaluate_total": round(time.perf_counter() - t0, 2),
    }
    atomic.write_json(artifacts / METRICS, metrics)
    atomic.write_bytes(
        artifacts / CONFUSION_PNG,
        plots.confusion_png(
            np.asarray(metrics["confusion_tflm_int8"]),
            f"LeNet-5 int8 (TFLM) on {metrics['test_images']} MNIST test images: "
            f"{100 * metrics['accuracy']['tflm_int8']:.2f}%",
            xlabel="predicted digit (int8, TFLM)",
            ylabel="true digit",
        ),
    )
    echo(format_table(metrics))
    return metrics
