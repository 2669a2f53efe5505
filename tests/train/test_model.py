"""LeNet-5 architecture: output sizes from (W - K + 2P)/S + 1, the Keras model, the C3 table."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import run_python
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.train import architecture as arch


def test_conv_output_size_formula():
    assert arch.conv_output_size(32, 5) == 28
    assert arch.conv_output_size(28, 2, stride=2) == 14
    assert arch.conv_output_size(14, 5) == 10
    assert arch.conv_output_size(10, 2, stride=2) == 5
    assert arch.conv_output_size(5, 5) == 1
    assert arch.conv_output_size(28, 5, padding=2) == 28  # 'same' padding keeps the size


def test_conv_output_size_rejects_uneven_tiling():
    with pytest.raises(LenetMcuError, match="does not tile"):
        arch.conv_output_size(15, 2, stride=2)
    with pytest.raises(LenetMcuError, match="does not tile"):
        arch.conv_output_size(4, 5)


def test_expected_shapes_are_lenet5():
    shapes = arch.expected_output_shapes()
    assert shapes == {
        "c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16),
        "c5": (1, 1, 120), "flatten": (120,), "f6": (84,), "output": (10,),
    }


def test_c3_table_matches_the_paper():
    table = arch.c3_connection_matrix()
    assert table.shape == (6, 16) and set(np.unique(table)) == {0.0, 1.0}
    assert int(table.sum()) == 60
    per_map = table.sum(axis=0).astype(int).tolist()
    assert per_map == [3] * 6 + [4] * 9 + [6]
    # Maps 0-11 see contiguous (cyclic) S2 maps starting at map index mod 6.
    for out_map in range(12):
        width = 3 if out_map < 6 else 4
        expected = {(out_map + k) % 6 for k in range(width)}
        assert set(np.flatnonzero(table[:, out_map])) == expected
    assert [set(np.flatnonzero(table[:, m])) for m in (12, 13, 14)] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    # Every S2 map feeds 10 C3 maps (the table's symmetry).
    assert table.sum(axis=1).astype(int).tolist() == [10] * 6


def test_c3_kernel_mask_layout():
    mask = arch.c3_kernel_mask()
    assert mask.shape == (5, 5, 6, 16)
    np.testing.assert_array_equal(mask[2, 3], arch.c3_connection_matrix())


@pytest.fixture(scope="module")
def keras_facts():
    """Build both variants, train a few steps, save and reload: in a TensorFlow subprocess."""
    return run_python("""
        import json, tempfile, numpy as np, keras
        from lenet_mcu.train.model import build_lenet5, load_keras_model, c3_kernel_mask
        keras.utils.set_random_seed(0)
        out = {}
        for name, table in (("full", False), ("table", True)):
            m = build_lenet5(c3_table=table)
            shapes = {l.name: list(l.output.shape[1:]) for l in m.layers[1:]}
            params = {l.name: int(l.count_params()) for l in m.layers[1:] if l.count_params()}
            k0 = m.get_layer("c3").kernel.numpy()
            m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
            x = np.random.default_rng(0).random((64, 32, 32, 1), dtype=np.float32)
            y = np.arange(64) % 10
            m.fit(x, y, batch_size=16, epochs=2, verbose=0)
            k1 = m.get_layer("c3").kernel.numpy()
            with tempfile.TemporaryDirectory() as d:
                m.save(d + "/m.keras")
                r = load_keras_model(d + "/m.keras")
                k2 = r.get_layer("c3").kernel.numpy()
                same_out = bool(np.array_equal(m.predict(x, verbose=0), r.predict(x, verbose=0)))
            absent = c3_kernel_mask() == 0
            out[name] = dict(
                shapes=shapes, params=params, total_params=int(m.count_params()),
                zeros_initial=int((k0[absent] == 0).sum()), zeros_trained=int((k1[absent] == 0).sum()),
                zeros_reloaded=int((k2[absent] == 0).sum()), absent=int(absent.sum()),
                nonzero_present=int((k1[~absent] != 0).sum()), present=int((~absent).sum()),
                reload_same_outputs=same_out, input_shape=list(m.input_shape),
                activations={l.name: l.get_config().get("activation") for l in m.layers[1:]},
            )
        print(json.dumps(out))
    """)


def test_keras_layer_shapes_follow_the_formula(keras_facts):
    want = {k: list(v) for k, v in arch.expected_output_shapes().items()}
    for variant in ("full", "table"):
        assert keras_facts[variant]["shapes"] == want
        assert keras_facts[variant]["input_shape"] == [None, 32, 32, 1]


def test_activations(keras_facts):
    acts = keras_facts["full"]["activations"]
    assert [acts[n] for n in ("c1", "c3", "c5", "f6", "output")] == ["tanh"] * 4 + ["softmax"]


def test_parameter_counts(keras_facts):
    # Trainable parameters (full C3): C1 156, C3 2416, C5 48120, F6 10164, output 850.
    assert keras_facts["full"]["params"] == {"c1": 156, "c3": 2416, "c5": 48120, "f6": 10164, "output": 850}
    assert keras_facts["full"]["total_params"] == 61706


def test_c3_table_kernel_zeros_survive_training_and_saving(keras_facts):
    t = keras_facts["table"]
    assert t["absent"] == 25 * 36  # 36 of 96 input/output pairs absent, 5x5 each
    assert t["zeros_initial"] == t["absent"]
    assert t["zeros_trained"] == t["absent"]
    assert t["zeros_reloaded"] == t["absent"]
    assert t["nonzero_present"] == t["present"]  # the 60 present pairs all learn
    assert t["reload_same_outputs"]


def test_full_c3_has_no_forced_zeros(keras_facts):
    f = keras_facts["full"]
    assert f["zeros_trained"] == 0
