"""Side by side, in one run: native runtime vs TFLM reference kernels vs TFLM CMSIS-NN, same .tflite.

    python benchmarks/runtimes.py [--artifacts artifacts] [--images 1000] [--data DIR]
        [--tflm-dir TREE] [--tflm-cmsis-dir TREE] [--out benchmarks/results/runtimes.json]

Each runtime is measured by its own benchmark, unchanged (native: benchmarks/native_runtime.py
bench_native; TFLM: benchmarks/tflm.py bench_tree, once per tree), on a scratch copy of the
same artifacts folder, all on the STM32F405 firmware under QEMU netduinoplus2 -icount shift=0:
  flash       text + data of the firmware ELF (the model's weights included)
  static RAM  data + bss + reserved stack (linker view); stack peak from the painted stack (STATS)
  arena       activation bytes the runtime reports in HELLO (TFLM: arena used; allocated in .bss)
  instructions per inference: TIM2 ticks of each RESULT (one per instruction under -icount)
  bit-exact   every output byte of the first --images test images vs the TFLM reference
              (references.npz tflm_int8); a difference aborts the run (verify fails)
Ratios are against the native runtime of the same run. Per layer: the native firmware's
PROFILE answer for test image 0 (ticks per generated layer function); the TFLM firmware has no
per-operator profile (its MicroProfiler hooks are compiled out by TF_LITE_STRIP_ERROR_STRINGS, which
the TFLM build uses), so its column says so instead of inventing numbers. Writes JSON with Markdown
tables (`table_markdown`, `per_layer_markdown`); prints them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click

from lenet_mcu import artifacts as art

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark modules

import native_runtime  # noqa: E402
import tflm  # noqa: E402
from bench_options import artifacts_option, data_option, images_option, tflm_dir_options  # noqa: E402

MODEL = art.TFLITE_MODEL


def native_row(r: dict) -> dict:
    q = r["qemu"]
    return {
        "runtime": "native (lenet-mcu int8 kernels)",
        "text_bytes": r["text_bytes"],
        "data_bytes": r["ram_detail"]["data_bytes"],
        "flash_bytes": r["flash_bytes"],
        "model_constants_bytes": r["constants_bytes"],
        "bss_bytes": r["ram_detail"]["bss_bytes"],
        "stack_reserved_bytes": r["ram_detail"]["stack_reserved_bytes"],
        "ram_static_bytes": r["ram_static_bytes"],
        "stack_peak_bytes": r["stack_peak_bytes"],
        "arena_bytes": r["device_arena_bytes"],
        "arena_allocated_bytes": r["arena_bytes"],
        "instructions_per_inference": q["instructions_per_inference"],
        "images": q["images"],
        "images_differing_from_tflm": q["images_differing_from_tflm"],
    }


def tflm_row(r: dict) -> dict:
    q, d = r["qemu"], r["ram_detail"]
    return {
        "runtime": f"TFLM, {'reference' if r['kernels'] == 'reference' else 'CMSIS-NN'} kernels",
        "text_bytes": r["text_bytes"],
        "data_bytes": d["data_bytes"],
        "flash_bytes": r["flash_bytes"],
        "model_constants_bytes": r["model_data_bytes"],  # the whole flatbuffer is linked in
        "bss_bytes": d["bss_bytes"],
        "stack_reserved_bytes": d["stack_reserved_bytes"],
        "ram_static_bytes": r["ram_static_bytes"],
        "stack_peak_bytes": r["stack_peak_bytes"],
        "arena_bytes": r["arena"]["device_used_bytes"],
        "arena_allocated_bytes": r["arena"]["allocated_bytes"],
        "instructions_per_inference": q["instructions_per_inference"],
        "images": q["images"],
        "images_differing_from_tflm": q["images_differing_from_tflm"],
    }


def per_layer_markdown(native: dict, runs: list[dict]) -> str:
    """Ticks per layer, native next to TFLM (when a TFLM firmware can profile)."""
    profile = native.get("profile")
    if not profile:
        return "(no per-layer profile: the native firmware did not answer PROFILE_REQUEST)"
    tflm_profiles = [r.get("profile") for r in runs]
    heads = [f"TFLM {r['kernels']}" for r in runs]
    lines = ["| native layer | native ticks | " + " | ".join(heads) + " |", "|---|---:|" + "---|" * len(heads)]
    for layer in profile["layers"]:
        cells = ["n/a (profiler compiled out)" if p is None else "see its table" for p in tflm_profiles]
        lines.append(f"| {layer['name']} | {layer['ticks']:,} | " + " | ".join(cells) + " |")
    total = sum(layer["ticks"] for layer in profile["layers"])
    lines.append(
        f"| all layers | {total:,} | "
        + " | ".join(f"{r['qemu']['instructions_per_inference']['median']:,.0f} (whole inference)" for r in runs)
        + " |"
    )
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    base = rows[0]  # native

    def ratio(r, key):
        return f"{r[key] / base[key]:.2f}x"

    def med(r):
        return r["instructions_per_inference"]["median"]

    lines = [
        "| runtime | flash: text + data (model) | static RAM: data + bss + stack | stack peak | "
        "arena used (allocated) | instructions per inference: min / median / max | "
        "vs native: flash / RAM / instructions | bit-exact vs TFLM reference |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        i = r["instructions_per_inference"]
        lines.append(
            f"| {r['runtime']} | {r['flash_bytes']:,} B ({r['model_constants_bytes']:,}) | "
            f"{r['ram_static_bytes']:,} B ({r['data_bytes']:,} + {r['bss_bytes']:,} + {r['stack_reserved_bytes']:,}) | "
            f"{r['stack_peak_bytes']:,} B | {r['arena_bytes']:,} B ({r['arena_allocated_bytes']:,}) | "
            f"{i['min']:,} / {i['median']:,.0f} / {i['max']:,} | "
            f"{ratio(r, 'flash_bytes')} / {ratio(r, 'ram_static_bytes')} / {med(r) / med(base):.2f}x | "
            f"{'yes' if r['images_differing_from_tflm'] == 0 else 'NO'}: "
            f"{r['images_differing_from_tflm']} of {r['images']:,} images differ |"
        )
    lines.append("")
    lines.append(
        "(model): bytes of the model in flash: weights, biases and tanh tables for native, the whole "
        ".tflite flatbuffer for TFLM. Stack peak: deepest stack since boot (painted stack), whole "
        "firmware. Instructions: TIM2 ticks under QEMU -icount shift=0."
    )
    return "\n".join(lines)


@click.command()
@artifacts_option
@images_option("test images through QEMU per runtime")
@data_option
@tflm_dir_options(required=True)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(__file__).parent / "results" / "runtimes.json",
    show_default=True,
)
def main(artifacts: Path, images: int, data_dir: Path | None, tflm_dir: Path, tflm_cmsis_dir: Path, out_path: Path):
    from lenet_mcu import atomic

    model_sha = hashlib.sha256((artifacts / MODEL).read_bytes()).hexdigest()
    native = native_runtime.bench_native(artifacts, images, data_dir, host_gcc=False)
    runs = [
        tflm.bench_tree(kind, tree.resolve(), artifacts, images, data_dir)
        for kind, tree in (("reference", tflm_dir), ("cmsis_nn", tflm_cmsis_dir))
    ]
    # Each benchmark copies the artifacts itself: make sure they all saw the same model.
    if native["model_sha256"] != model_sha or hashlib.sha256((artifacts / MODEL).read_bytes()).hexdigest() != model_sha:
        raise click.ClickException(f"{artifacts / MODEL} changed during the run")
    rows = [native_row(native)] + [tflm_row(r) for r in runs]
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "what": "native runtime vs TFLM (reference, CMSIS-NN kernels), same model, one run, "
        "STM32F405 firmware on QEMU netduinoplus2 -icount shift=0",
        "model": MODEL,
        "model_sha256": model_sha,
        "images": images,
        "qemu": qemu,
        "tflm_trees": {"reference": str(tflm_dir.resolve()), "cmsis_nn": str(tflm_cmsis_dir.resolve())},
        "cpus": os.cpu_count(),
        "rows": rows,
        "table_markdown": markdown_table(rows),
        "per_layer": {"native": native.get("profile"), "tflm": [r.get("profile") for r in runs]},
        "per_layer_markdown": per_layer_markdown(native, runs),
        "details": {"native": native, "tflm": runs},
    }
    atomic.write_text(out_path, json.dumps(result, indent=2) + "\n")
    click.echo(result["table_markdown"])
    click.echo(result["per_layer_markdown"])
    click.echo(f"results: {out_path}", err=True)


if __name__ == "__main__":
    from lenet_mcu.cli import run_command

    run_command(main)  # user errors as one line, no traceback
