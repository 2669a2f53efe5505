"""Which optional packages come with which extra, and the one-line error when one is missing.

The base install (flash, verify, reports, port listing) needs none of these.
Library code imports an optional package through `require()`, so a missing
extra is a LenetMcuError naming the pip command, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from lenet_mcu.errors import LenetMcuError

#: import name -> (extra, distribution, where wheels exist when not everywhere)
OPTIONAL = {
    "tensorflow": ("train", "tensorflow-cpu", None),
    "keras": ("train", "tensorflow-cpu", None),
    "jinja2": ("codegen", "jinja2", None),
    "flatbuffers": ("codegen", "flatbuffers", None),
    "tflite_micro": ("codegen", "tflite-micro", "Linux x86_64"),
    "tflite_runtime": ("codegen", "tflite-runtime", "Python 3.11 on Linux"),
    "ai_edge_litert": ("codegen", "ai-edge-litert", None),
}

#: What each extra must make importable (the host TFLite interpreter is checked where it runs).
EXTRA_MODULES = {
    "train": ("tensorflow",),
    "codegen": ("jinja2", "flatbuffers", "tflite_micro"),
}


class MissingExtra(LenetMcuError):
    """An optional package of an extra is not installed."""


def missing_message(module: str | list[str], needed_for: str) -> str:
    """`needed_for needs DIST[, DIST...] (the 'EXTRA' extra), which ... not installed: pip install ...`."""
    tops = [m.split(".")[0] for m in ([module] if isinstance(module, str) else module)]
    extra = OPTIONAL[tops[0]][0]
    dists = ", ".join(OPTIONAL[t][1] for t in tops)
    verb = "is" if len(tops) == 1 else "are"
    only = "".join(f"; {OPTIONAL[t][1]} has wheels for {OPTIONAL[t][2]} only" for t in tops if OPTIONAL[t][2])
    return f"{needed_for} needs {dists} (the '{extra}' extra), which {verb} not installed: pip install 'lenet-mcu[{extra}]'{only}"


def is_installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, needed_for: str) -> ModuleType:
    """Import `module` (an optional package) or raise MissingExtra saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtra(missing_message(module, needed_for)) from None
        raise  # a broken install of the package itself: the real error is more useful


def require_extra(extra: str, needed_for: str) -> None:
    """Fail fast, before any slow work, if an extra a command needs is not installed."""
    missing = [module for module in EXTRA_MODULES[extra] if not is_installed(module)]
    if missing:
        raise MissingExtra(missing_message(missing, needed_for))


def missing_extra_of(exc: BaseException) -> str | None:
    """The install hint for a ModuleNotFoundError of an optional package, else None."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in OPTIONAL:
        return missing_message(exc.name, "this command")
    return None
