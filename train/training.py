"""Seeded, resumable training of LeNet-5 on MNIST.

Reproducibility: keras.utils.set_random_seed + TF op determinism fix the initial
weights and the kernels; the per-epoch shuffle and random distortions come from a
numpy generator seeded with (seed, epoch), so an epoch's batches do not depend
on what ran before it, and a run resumed from the per-epoch checkpoint ends with
the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from lenet_mcu import atomic, mnist
from lenet_mcu.artifacts import KERAS_MODEL, TRAINING_CHECKPOINTS, TRAINING_RECORD
from lenet_mcu.cleanup import remove_stale
from lenet_mcu.config import PipelineConfig
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.train.distortion import Amplitudes, distort


def weights_digest(model) -> str:
    """sha256 over all weight arrays: equal digests mean bit-identical weights."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def training_subset(images: np.ndarray, labels: np.ndarray, config: PipelineConfig):
    """All training images, or a seeded random subset of them (fast mode)."""
    if not config.train_subset or config.train_subset >= len(images):
        return images, labels
    pick = np.sort(np.random.default_rng([config.seed, 0xDA7A]).permutation(len(images))[: config.train_subset])
    return images[pick], labels[pick]


def _save_keras_atomically(model, path: Path) -> None:
    # Keras insists on the .keras suffix, so the temporary file keeps it.
    remove_stale(path.parent, f".{path.stem}.part")  # left by a training that was killed
    tmp = path.with_name(f".{path.stem}.part{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _compile(model, config: PipelineConfig) -> None:
    import keras

    from lenet_mcu.train.model import compile_args

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate), **compile_args(config.output))


def _load_checkpoint(ckpt_dir: Path, config: PipelineConfig):
    """(model, state) from a checkpoint of the same training settings, else (None, None)."""
    from lenet_mcu.train.model import load_keras_model

    state_path, model_path = ckpt_dir / "state.json", ckpt_dir / "model.keras"
    if not (state_path.is_file() and model_path.is_file()):
        return None, None
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return None, None
    if state.get("training_key") != config.training_key() or state.get("epochs_done", 0) >= config.epochs:
        return None, None
    try:
        model = load_keras_model(model_path)
    except LenetMcuError:
        return None, None
    if weights_digest(model) != state.get("weights_sha256"):
        return None, None
    return model, state


def train(config: PipelineConfig, data_dir, artifacts: Path, resume: bool = True, echo=print) -> dict:
    """Train, checkpoint each epoch, write artifacts/lenet5.keras; return the training record."""
    from lenet_mcu.tf_import import import_tensorflow, quiet_stderr

    tf = import_tensorflow()
    import keras

    from lenet_mcu.train.model import build_lenet5

    artifacts = Path(artifacts)
    t_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    train_images, train_labels = training_subset(*mnist.load_split("train", data_dir), config)
    test_images, test_labels = mnist.load_split("test", data_dir)
    x_train, y_train = mnist.preprocess(train_images), train_labels.astype(np.int32)
    x_test, y_test = mnist.preprocess(test_images), test_labels.astype(np.int32)

    ckpt_dir = artifacts / TRAINING_CHECKPOINTS
    model, state = _load_checkpoint(ckpt_dir, config) if resume else (None, None)
    if model is None:
        model = build_lenet5(c3_table=config.c3_table, subsampling=config.subsampling, output=config.output)
        _compile(model, config)
        state = {"training_key": config.training_key(), "epochs_done": 0, "history": []}
        echo(
            f"training LeNet-5 ({config.variant}, {'C3 table' if config.c3_table else 'full C3'}) on "
            f"{len(x_train)} images, {config.epochs} epochs, seed {config.seed}"
        )
    else:
        echo(f"resuming from {ckpt_dir} after epoch {state['epochs_done']}/{config.epochs}")

    verbose = 1 if sys.stdout.isatty() else 0
    amplitudes = Amplitudes.from_config(config)
    for epoch in range(state["epochs_done"], config.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(x_train))
        x_epoch = distort(x_train[order], amplitudes, rng)
        lr = config.learning_rate_for(epoch)
        model.optimizer.learning_rate.assign(lr)
        with quiet_stderr():
            fit = model.fit(
                x_epoch, y_train[order], batch_size=config.batch_size, epochs=1, shuffle=False, verbose=verbose
            )
            test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        record = {
            "epoch": epoch + 1,
            "learning_rate": lr,
            "loss": float(fit.history["loss"][-1]),
            "train_accuracy": float(fit.history["accuracy"][-1]),
            "test_loss": float(test_loss),
            "test_accuracy": float(test_acc),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        state["history"].append(record)
        state["epochs_done"] = epoch + 1
        if epoch + 1 < config.epochs:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            _save_keras_atomically(model, ckpt_dir / "model.keras")
            state["weights_sha256"] = weights_digest(model)
            atomic.write_json(ckpt_dir / "state.json", state)
        # After the checkpoint, so an interrupt at this line loses nothing.
        echo(
            f"epoch {epoch + 1:2d}/{config.epochs}  lr {lr:.2e}  loss {record['loss']:.4f}  "
            f"train {100 * record['train_accuracy']:.2f}%  test {100 * record['test_accuracy']:.2f}%  "
            f"{record['seconds']:.1f}s"
        )

    _save_keras_atomically(model, artifacts / KERAS_MODEL)
    result = {
        "config": config.to_dict(),
        "train_images": int(len(x_train)),
        "weights_sha256": weights_digest(model),
        "float_test_accuracy": state["history"][-1]["test_accuracy"] if state["history"] else None,
        "history": state["history"],
        "seconds": round(time.perf_counter() - t_start, 2),
    }
    atomic.write_json(artifacts / TRAINING_RECORD, result)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return result
