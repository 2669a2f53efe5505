"""Training is reproducible from the seed, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_python

from lenet_mcu.config import PipelineConfig, make_config
from lenet_mcu.train.training import training_subset


def test_subset_is_seeded_and_sorted():
    images = np.arange(1000 * 4, dtype=np.uint8).reshape(1000, 2, 2)
    labels = np.arange(1000) % 10
    config = PipelineConfig(train_subset=100)
    x1, y1 = training_subset(images, labels, config)
    x2, _ = training_subset(images, labels, config)
    assert len(x1) == 100 and np.array_equal(x1, x2) and len(y1) == 100
    full, _ = training_subset(images, labels, PipelineConfig(train_subset=0))
    assert len(full) == 1000


def test_learning_rate_decays_from_first_to_last():
    config = PipelineConfig(epochs=5, learning_rate=1e-3, final_learning_rate=1e-5)
    rates = [config.learning_rate_for(e) for e in range(5)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_make_config_overrides():
    fast = make_config(fast=True, seed=3, c3_table=True)
    assert fast.fast and fast.seed == 3 and fast.c3_table and fast.train_subset > 0
    default = make_config()
    assert not default.fast and default.train_subset == 0 and default.calibration_size >= 100
    variant = make_config(subsampling="lecun", output="rbf")
    assert variant.variant == "lecun-rbf" and variant.training_key() != default.training_key()


def test_config_refuses_unknown_variants():
    from lenet_mcu.errors import LenetMcuError

    with pytest.raises(LenetMcuError, match="subsampling 'median' is unknown"):
        make_config(subsampling="median")
    with pytest.raises(LenetMcuError, match="output 'svm' is unknown"):
        PipelineConfig(output="svm")


@pytest.mark.slow
def test_same_seed_same_weights_and_resume(mnist_dir):
    """Two runs with one seed give bit-identical weights; an interrupted run resumes to the same weights."""
    facts = run_python(f"""
        import dataclasses, json, tempfile
        from pathlib import Path
        from lenet_mcu.config import make_config
        from lenet_mcu.train.training import train
        data = {str(mnist_dir)!r}
        base = dataclasses.replace(make_config(fast=True, epochs=2), train_subset=3000)
        quiet = lambda s: None
        out = {{}}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            out["a"] = train(base, data, tmp / "a", echo=quiet)["weights_sha256"]
            out["b"] = train(base, data, tmp / "b", echo=quiet)["weights_sha256"]
            out["other_seed"] = train(dataclasses.replace(base, seed=base.seed + 1), data, tmp / "c", echo=quiet)["weights_sha256"]

            class Interrupt(Exception):
                pass

            def stop_after_first_epoch(line):
                if line.startswith("epoch  1/"):
                    raise Interrupt()
            try:
                train(base, data, tmp / "r", echo=stop_after_first_epoch)
            except Interrupt:
                pass
            out["checkpoint_left"] = (tmp / "r" / "checkpoint" / "state.json").is_file()
            out["no_final_model"] = not (tmp / "r" / "lenet5.keras").exists()
            lines = []
            out["resumed"] = train(base, data, tmp / "r", echo=lines.append)["weights_sha256"]
            out["resume_message"] = lines[0]
            out["checkpoint_removed"] = not (tmp / "r" / "checkpoint").exists()
            out["leftover_parts"] = [p.name for p in (tmp / "r").rglob("*.part*")]
        print(json.dumps(out))
    """)
    assert facts["a"] == facts["b"]
    assert facts["a"] != facts["other_seed"]
    assert facts["checkpoint_left"] and facts["no_final_model"]
    assert facts["resume_message"].startswith("resuming from")
    assert facts["resumed"] == facts["a"]
    assert facts["checkpoint_removed"] and facts["leftover_parts"] == []
