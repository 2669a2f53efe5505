"""Which optional package belongs to which extra (lenet_mcu.extras)."""

from __future__ import annotations

import sys

import pytest

from lenet_mcu import extras

pytestmark = pytest.mark.base


def test_require_names_the_extra_and_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(extras.MissingExtra) as info:
        extras.require("tensorflow", "training")
    assert str(info.value) == (
        "training needs tensorflow-cpu (the 'train' extra), which is not installed: pip install 'lenet-mcu[train]'"
    )
    assert info.value.exit_code == 2


def test_require_returns_an_installed_module():
    assert extras.require("numpy", "arrays") is sys.modules["numpy"]


def test_require_extra_names_every_missing_module_of_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flatbuffers", None)
    monkeypatch.setitem(sys.modules, "tflite_micro", None)
    monkeypatch.setitem(sys.modules, "jinja2", sys.modules.get("jinja2") or object())  # present, whatever the install
    with pytest.raises(extras.MissingExtra) as info:
        extras.require_extra("codegen", "x")
    assert str(info.value) == (
        "x needs flatbuffers, tflite-micro (the 'codegen' extra), which are not installed: "
        "pip install 'lenet-mcu[codegen]'; tflite-micro has wheels for Linux x86_64 only"
    )


def test_a_broken_optional_package_keeps_its_own_error(monkeypatch):
    class Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "jinja2":
                raise ModuleNotFoundError("No module named 'markupsafe'", name="markupsafe")
            return None

    monkeypatch.delitem(sys.modules, "jinja2", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError, match="markupsafe"):
        extras.require("jinja2", "templates")


def test_missing_extra_of_maps_only_optional_packages():
    assert "lenet-mcu[train]" in extras.missing_extra_of(ModuleNotFoundError("x", name="keras.layers"))
    assert extras.missing_extra_of(ModuleNotFoundError("x", name="numpy")) is None
    assert extras.missing_extra_of(ValueError("x")) is None
