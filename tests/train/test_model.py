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
        "c1": (28, 28, 6),
        "s2": (14, 14, 6),
        "c3": (10, 10, 16),
        "s4": (5, 5, 16),
        "c5": (1, 1, 120),
        "flatten": (120,),
        "f6": (84,),
        "output": (10,),
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


def test_rbf_codes_are_the_bitmaps():
    codes = arch.rbf_codes()
    assert codes.shape == (10, 84) and codes.dtype == np.float32
    np.testing.assert_allclose(np.abs(codes), 1 / arch.PAPER_TANH_AMPLITUDE, rtol=1e-6)
    ink = codes > 0
    assert len({row.tobytes() for row in ink}) == 10  # ten different codes
    # the "1" is a vertical stroke: column 3 inked in rows 1..10
    one = ink[1].reshape(12, 7)
    assert one[1:11, 3].all() and not one[0].any() and not one[11].any()
    hamming = (ink[:, None] != ink[None]).sum(-1) + 84 * np.eye(10, dtype=int)
    assert hamming.min() >= 6  # 3 and 8 are the closest pair, as in the paper's confusable codes


@pytest.fixture(scope="module")
def variant_facts():
    """Each subsampling and output layer: parameters, a few training steps, save and reload."""
    return run_python("""
        import json, tempfile, numpy as np, keras
        from lenet_mcu.train.model import build_lenet5, compile_args, load_keras_model
        from lenet_mcu.train.architecture import rbf_codes
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).random((64, 32, 32, 1), dtype=np.float32)
        y = np.arange(64) % 10
        out = {}
        for sub, head in (("lecun", "softmax"), ("max", "softmax"), ("avg", "rbf")):
            m = build_lenet5(subsampling=sub, output=head)
            m.compile(optimizer=keras.optimizers.Adam(1e-2), **compile_args(head))
            hist = m.fit(x, y, batch_size=16, epochs=2, verbose=0).history
            facts = dict(params={l.name: int(l.count_params()) for l in m.layers[1:] if l.count_params()},
                         trainable=int(sum(np.prod(w.shape) for w in m.trainable_weights)),
                         metrics=sorted(hist), shapes={l.name: list(l.output.shape[1:]) for l in m.layers[1:]})
            if sub == "lecun":
                s2 = m.get_layer("s2")
                coef, bias = s2.coefficient.numpy(), s2.bias.numpy()
                facts["s2_coefficients_moved"] = bool(np.all(coef != 0.25))
                t = m.get_layer("c1")(x[:2])  # S2 by hand: tanh(coefficient * window sum + bias)
                window = t.numpy().reshape(2, 14, 2, 14, 2, 6).sum(axis=(2, 4))
                facts["s2_formula_error"] = float(np.abs(np.tanh(window * coef + bias) - s2(t).numpy()).max())
            if head == "rbf":
                f6 = keras.Model(m.input, m.get_layer("f6").output).predict(x[:4], verbose=0)
                want = ((f6[:, None, :] - rbf_codes()[None]) ** 2).sum(-1)
                facts["rbf_formula_error"] = float(np.abs(m.predict(x[:4], verbose=0) - want).max())
                facts["codes_unchanged"] = bool(np.array_equal(m.get_layer("output").codes.numpy(), rbf_codes()))
            with tempfile.TemporaryDirectory() as d:
                m.save(d + "/m.keras")
                r = load_keras_model(d + "/m.keras")
                facts["reload_same_outputs"] = bool(np.array_equal(m.predict(x, verbose=0), r.predict(x, verbose=0)))
            out[f"{sub}-{head}"] = facts
        print(json.dumps(out))
    """)


def test_variant_shapes_follow_the_formula(variant_facts):
    want = {k: list(v) for k, v in arch.expected_output_shapes().items()}
    for facts in variant_facts.values():
        assert {k: facts["shapes"][k] for k in want} == want
        assert facts["reload_same_outputs"]
        assert facts["metrics"] == ["accuracy", "loss"]


def test_lecun_subsampling_is_the_papers_formula(variant_facts):
    f = variant_facts["lecun-softmax"]
    # two trainable parameters per map: 6 in S2, 16 in S4
    assert f["params"]["s2"] == 12 and f["params"]["s4"] == 32
    assert f["trainable"] == 61706 + 12 + 32
    assert f["s2_coefficients_moved"]
    assert f["s2_formula_error"] < 1e-5


def test_max_pooling_has_no_parameters(variant_facts):
    f = variant_facts["max-softmax"]
    assert "s2" not in f["params"] and f["trainable"] == 61706


def test_rbf_output_is_the_squared_distance_to_fixed_codes(variant_facts):
    f = variant_facts["avg-rbf"]
    assert f["rbf_formula_error"] < 1e-4
    assert f["codes_unchanged"]  # fixed, as in the paper: trained codes could collapse onto each other
    assert f["trainable"] == 61706 - 850  # no output weights to learn
