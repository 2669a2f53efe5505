"""The artifacts folder: the one place that names what each stage writes there,
and the manifest that records it.

    artifacts/
      lenet5.keras, training.json, checkpoint/      train
      lenet5_int8.tflite                            quantize
      metrics.json, references.npz, confusion.png   evaluate
      codegen/<runtime>/                            codegen
      build/<board>/<runtime>/firmware.elf          build
      qemu.json, qemu.log                           flash (emulator)
      verify/                                       verify
      manifest.json                                 every stage

Every file is written atomically (lenet_mcu.atomic). The manifest records the
sha256 and size of every artifact, the config, the seed, the library versions
and a summary of each finished stage.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
from pathlib import Path

from lenet_mcu import atomic
from lenet_mcu.boards import DEFAULT_BOARD
from lenet_mcu.errors import LenetMcuError

DEFAULT_ARTIFACTS = Path("artifacts")

KERAS_MODEL = "lenet5.keras"
TRAINING_RECORD = "training.json"
TRAINING_CHECKPOINTS = "checkpoint"
TFLITE_MODEL = "lenet5_int8.tflite"
METRICS = "metrics.json"
REFERENCES = "references.npz"
CONFUSION_PNG = "confusion.png"
CODEGEN_DIR = "codegen"
BUILD_DIR = "build"
QEMU_STATE = "qemu.json"
QEMU_LOG = "qemu.log"
VERIFY_DIR = "verify"
MANIFEST = "manifest.json"

#: The inference engines a firmware can be built with (firmware/runtime/<name>/).
RUNTIMES = ("native", "tflm")

#: Files and folders in the artifacts folder that are not artifacts.
_NOT_ARTIFACTS = {MANIFEST, TRAINING_CHECKPOINTS}
_VERSIONED = (
    "lenet-mcu",
    "numpy",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "tflite-runtime",
    "ai-edge-litert",
    "tflite-micro",
    "tflite",
    "click",
    "matplotlib",
)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise LenetMcuError(f"runtime {runtime!r} is unknown, expected one of {', '.join(RUNTIMES)}")
    return runtime


def codegen_dir(artifacts: Path, runtime: str) -> Path:
    return Path(artifacts) / CODEGEN_DIR / runtime


def build_dir(artifacts: Path, runtime: str, board: str = DEFAULT_BOARD) -> Path:
    return Path(artifacts) / BUILD_DIR / board / runtime


def firmware_elf(artifacts: Path, runtime: str, board: str = DEFAULT_BOARD) -> Path:
    """Where `lenet-mcu build` puts the firmware of a runtime for a board."""
    return build_dir(artifacts, runtime, board) / "firmware.elf"


def verify_dir(artifacts: Path) -> Path:
    return Path(artifacts) / VERIFY_DIR


# ---------------------------------------------------------------- manifest
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def artifact_hashes(artifacts: Path) -> dict[str, dict]:
    """sha256 and size of every file under the artifacts folder (hidden and temporary files excluded)."""
    out = {}
    for path in sorted(Path(artifacts).rglob("*")):
        rel = path.relative_to(artifacts)
        if not path.is_file() or rel.parts[0] in _NOT_ARTIFACTS or any(p.startswith(".") for p in rel.parts):
            continue
        out[rel.as_posix()] = {"sha256": atomic.sha256_file(path), "bytes": path.stat().st_size}
    return out


def read_manifest(artifacts: Path) -> dict:
    path = Path(artifacts) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise LenetMcuError(f"manifest {path} is not valid JSON ({exc}); delete it or the artifacts folder") from None


def update_manifest(
    artifacts: Path, config=None, stage: str | None = None, summary: dict | None = None, **top_level
) -> dict:
    """Record a finished stage (and the PipelineConfig, if given), rehash every artifact,
    write manifest.json atomically. Keyword arguments set top-level entries."""
    artifacts = Path(artifacts)
    manifest = read_manifest(artifacts)
    if config is not None:
        manifest["config"] = config.to_dict()
        manifest["seed"] = config.seed
    if stage is not None:
        stages = manifest.setdefault("stages", {})
        stages[stage] = {
            **(summary or {}),
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
    manifest.update(top_level)
    manifest["versions"] = library_versions()
    manifest["artifacts"] = artifact_hashes(artifacts)
    atomic.write_json(artifacts / MANIFEST, manifest)
    return manifest
