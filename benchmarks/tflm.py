"""Benchmark the TensorFlow Lite Micro runtime: flash, RAM, instructions per inference.

    python benchmarks/tflm.py [--artifacts artifacts] [--images 1000] [--data DIR]
        [--tflm-dir TREE] [--tflm-cmsis-dir TREE] [--out FILE]

Measured the same way as benchmarks/native_runtime.py, once per TFLM tree given
(reference kernels: --tflm-dir / TFLM_DIR; CMSIS-NN kernels: --tflm-cmsis-dir /
TFLM_CMSIS_DIR; trees made by tflite-micro's create_tflm_tree.py):
  1. lenet-mcu codegen --runtime tflm and the firmware build for the STM32F405
     (on a copy of the artifacts; nothing is written into the artifacts folder)
  2. flash / static RAM from the ELF sections (the tensor arena is a static array,
     so it is part of .bss); the arena TFLM really uses from the device's HELLO
  3. QEMU netduinoplus2 with -icount shift=0 (TIM2 ticks = executed instructions):
     the serial check (lenet_mcu.host.verify) over the first N test images, every
     output compared with the TFLM reference; instructions per inference from the
     RESULT tick counts; stack high-water mark from STATS
Prints the JSON and a Markdown table; --out writes the JSON too.
benchmarks/runtimes.py runs bench_tree() for both trees next to the native runtime.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import click
from bench_options import artifacts_option, data_option, images_option, tflm_dir_options

from lenet_mcu import artifacts as art

MODEL = art.TFLITE_MODEL


def bench_tree(kind: str, tree: Path, artifacts: Path, images: int, data_dir: Path | None) -> dict:
    from lenet_mcu.codegen import generate, tflm
    from lenet_mcu.firmware.build import build_firmware, size_report
    from lenet_mcu.host.qemu import QemuBoard
    from lenet_mcu.host.verify import run_verify

    with tempfile.TemporaryDirectory(prefix=f"bench-tflm-{kind}-") as tmp:
        work = Path(tmp) / "artifacts"
        work.mkdir()
        for name in (MODEL, art.REFERENCES):
            shutil.copy(artifacts / name, work / name)
        gen = art.codegen_dir(work, "tflm")
        generate("tflm", work / MODEL, gen)
        described = tflm.describe(gen)
        t0 = time.monotonic()
        elf = build_firmware("tflm", gen, art.build_dir(work, "tflm"), make_vars={"TFLM_DIR": str(tree)})
        build_seconds = time.monotonic() - t0
        size = size_report(elf)

        click.echo(f"QEMU ({kind}): serial check of {images} test images ...", err=True)
        with QemuBoard(elf, icount=True) as board:
            t0 = time.monotonic()
            report = run_verify(
                work,
                port=board.url,
                limit=images,
                data_dir=data_dir,
                progress=True,
                reports=False,
                log=lambda msg: click.echo(msg, err=True),
            )
            seconds = time.monotonic() - t0

    ticks = report["ticks"]
    stats = report.get("device_stats") or {}
    return {
        "kernels": kind,
        "tflm_dir": str(tree),
        "ops": described["ops"],
        "flash_bytes": size["flash_bytes"],
        "text_bytes": size["text_bytes"],
        "model_data_bytes": (artifacts / MODEL).stat().st_size,
        "flash_without_model_bytes": size["flash_bytes"] - (artifacts / MODEL).stat().st_size,
        "ram_static_bytes": size["ram_static_bytes"],
        "ram_detail": {k: size[k] for k in ("data_bytes", "bss_bytes", "stack_reserved_bytes")},
        "arena": {
            "allocated_bytes": described["arena_size"],
            "host_measured_bytes": described["arena_measured"],
            "device_used_bytes": report["device"]["arena_bytes"],
            "margin_note": f"allocated = host measurement + max({int(tflm.ARENA_MARGIN_FRACTION * 100)}%, "
            f"{tflm.ARENA_MARGIN_MIN_BYTES} B), rounded up to 16",
        },
        "stack_peak_bytes": stats.get("stack_peak_bytes"),
        "build_seconds": round(build_seconds, 1),
        "qemu": {
            "images": report["images"],
            "result": report["result"],
            "images_differing_from_tflm": report["bitexact"]["images_differing"],
            "instructions_per_inference": {k: ticks[k] for k in ("min", "median", "mean", "max")},
            "seconds": round(seconds, 2),
            "images_per_second": round(report["images"] / seconds, 1),
        },
    }


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| runtime | flash (model) | static RAM (arena used / allocated) | instructions per inference (median) | bit-exact |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        q, a = r["qemu"], r["arena"]
        lines.append(
            f"| TFLM, {r['kernels']} kernels | {r['flash_bytes']:,} B ({r['model_data_bytes']:,}) | "
            f"{r['ram_static_bytes']:,} B ({a['device_used_bytes']:,} / {a['allocated_bytes']:,}) | "
            f"{q['instructions_per_inference']['median']:,.0f} | "
            f"{'yes' if q['images_differing_from_tflm'] == 0 else 'NO'} ({q['images']:,} images) |"
        )
    return "\n".join(lines)


@click.command()
@artifacts_option
@images_option()
@data_option
@tflm_dir_options(required=False)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the JSON result here too (benchmarks/runtimes.py compares all runtimes in one run)",
)
def main(
    artifacts: Path,
    images: int,
    data_dir: Path | None,
    tflm_dir: Path | None,
    tflm_cmsis_dir: Path | None,
    out_path: Path | None,
):
    from lenet_mcu import atomic
    from lenet_mcu.errors import LenetMcuError

    trees = [(k, t) for k, t in (("reference", tflm_dir), ("cmsis_nn", tflm_cmsis_dir)) if t is not None]
    if not trees:
        raise LenetMcuError("no TFLM tree given: pass --tflm-dir (and/or --tflm-cmsis-dir), or set TFLM_DIR")
    result = {
        "model_sha256": hashlib.sha256((artifacts / MODEL).read_bytes()).hexdigest(),
        "images": images,
        "runs": [bench_tree(k, t.resolve(), artifacts, images, data_dir) for k, t in trees],
    }
    result["table_markdown"] = markdown_table(result["runs"])
    text = json.dumps(result, indent=2)
    click.echo(text)
    click.echo("\n" + result["table_markdown"])
    if out_path:
        atomic.write_text(out_path, text + "\n")


if __name__ == "__main__":
    from lenet_mcu.cli import run_command

    run_command(main)  # user errors as one line, no traceback
