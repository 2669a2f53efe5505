"""Every board x runtime on its QEMU machine, same model, one run: size, memory, cost, bit-exactness.

    python benchmarks/boards.py [--artifacts artifacts] [--images 10000] [--data DIR]
        [--tflm-dir TREE] [--tflm-cmsis-dir TREE] [--boards a,b,...] [--out benchmarks/results/boards.json]

For each emulated board (lenet_mcu.boards) and runtime (native; TFLM with reference kernels and
with CMSIS-NN kernels when their trees are given), on a scratch copy of the artifacts folder:
  build       lenet-mcu's own build (codegen if stale + make) for the board; a firmware that does
              not fit the board's memory is a row saying so, with the bytes it needs and has
  flash       text + data of the firmware ELF (the model included)
  static RAM  data + bss + reserved stack (linker view), against the board's RAM
  stack peak  deepest stack since boot (painted stack, STATS after the run)
  instructions per inference: RESULT ticks x the board's instructions per tick under QEMU
              -icount shift=0 (1 ns of emulated time per instruction): exact on the STM32F405
              (TIM2 at 1 GHz in QEMU), one tick of resolution on the others
  bit-exact   every output byte of the first --images MNIST test images vs the TFLM reference
              (references.npz), through lenet-mcu verify; differences are counted, not fatal
Each finished row is written to OUT at once; a rerun with the same model and --images skips the
rows it already has (resumable). Writes JSON with a Markdown table and a PNG of the instruction
counts (OUT with .png).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark modules

from bench_options import artifacts_option, data_option, images_option, tflm_dir_options  # noqa: E402

MODEL = "lenet5_int8.tflite"
PIPELINE_FILES = (MODEL, "references.npz", "manifest.json", "metrics.json")


def bench_one(
    board: str, runtime: str, kernels: str, tree: Path | None, artifacts: Path, images: int, data_dir: Path | None, log
) -> dict:
    from lenet_mcu import boards
    from lenet_mcu.errors import LenetMcuError
    from lenet_mcu.firmware.build import size_report
    from lenet_mcu.host import flash
    from lenet_mcu.host.verify import VerifyFailed, run_verify
    from lenet_mcu.pipeline import ensure_firmware

    record = boards.get(board)
    row = {
        "board": board,
        "core": record.core,
        "runtime": runtime,
        "kernels": kernels,
        "board_flash_bytes": record.flash_bytes,
        "board_ram_bytes": record.ram_bytes,
        "instructions_per_tick": record.counter.instructions_per_tick,
    }
    with tempfile.TemporaryDirectory(prefix=f"bench-{board}-") as tmp:
        work = Path(tmp) / "artifacts"
        work.mkdir()
        for name in PIPELINE_FILES:
            if (artifacts / name).exists():
                shutil.copy2(artifacts / name, work / name)
        t0 = time.perf_counter()
        try:
            elf = ensure_firmware(work, runtime, board=board, tflm_dir=tree, echo=log)
        except LenetMcuError as exc:
            if "does not fit" not in exc.message:
                raise
            return {**row, "fits": False, "note": exc.message.split(" (full log")[0]}
        row["build_seconds"] = round(time.perf_counter() - t0, 1)
        size = size_report(elf)
        flash.flash_qemu(work, elf, runtime, board=board, log=log)
        try:
            t0 = time.perf_counter()
            try:
                rep = run_verify(
                    work, data_dir=data_dir, limit=images, progress=sys.stderr.isatty(), log=log, board=board
                )
            except VerifyFailed:
                rep = json.loads((work / "verify" / "report.json").read_text())
            seconds = time.perf_counter() - t0
        finally:
            flash.stop_qemu(work)
    ticks, bx, stats = rep["ticks"], rep["bitexact"], rep.get("device_stats") or {}
    return {
        **row,
        "fits": True,
        "flash_bytes": size["flash_bytes"],
        "ram_static_bytes": size["ram_static_bytes"],
        "stack_peak_bytes": stats.get("stack_peak_bytes"),
        "arena_bytes": rep["device"].get("arena_bytes"),
        "ticks": {k: ticks[k] for k in ("min", "median", "max")},
        "instructions_per_inference": {k: ticks["instructions_under_qemu"][k] for k in ("min", "median", "max")},
        "images": rep["images"],
        "images_differing": bx["images_differing"],
        "bytes_differing": bx["bytes_differing"],
        "verify_seconds": round(seconds, 1),
    }


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| board (core) | runtime | flash | static RAM (of the board's) | stack peak | "
        "instructions per inference: min / median / max | images checked | bytes differing |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"{r['board']} ({r['core']})"
        runtime = r["runtime"] if r["runtime"] == "native" else f"tflm ({r['kernels']})"
        if not r["fits"]:
            lines.append(f"| {name} | {runtime} | does not fit: {r['note'].split(': ', 1)[-1]} | | | | | |")
            continue
        i = r["instructions_per_inference"]
        res = "" if r["instructions_per_tick"] == 1 else f" (±{r['instructions_per_tick']:.3g})"
        lines.append(
            f"| {name} | {runtime} | {r['flash_bytes']:,} B | {r['ram_static_bytes']:,} B "
            f"({r['board_ram_bytes'] // 1024:,} KiB) | {r['stack_peak_bytes']:,} B | "
            f"{i['min']:,} / {i['median']:,} / {i['max']:,}{res} | {r['images']:,} | "
            f"{r['bytes_differing']:,} |"
        )
    lines += [
        "",
        "Instructions: RESULT ticks x instructions per tick under QEMU -icount shift=0 "
        "(± one tick where the board's counter is slower than one tick per instruction).",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], png: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lenet_mcu import atomic

    done = [r for r in rows if r["fits"]]
    labels = [
        f"{r['board']}\n{r['core']}\n" + (r["runtime"] if r["runtime"] == "native" else r["kernels"]) for r in done
    ]
    med = [r["instructions_per_inference"]["median"] / 1e6 for r in done]
    colors = ["tab:blue" if r["runtime"] == "native" else "tab:orange" for r in done]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(done)), 4.5))
    bars = ax.bar(range(len(done)), med, color=colors)
    ax.bar_label(bars, [f"{m:.2f} M" for m in med], fontsize=7)
    ax.set_xticks(range(len(done)), labels, fontsize=7)
    ax.set_ylabel("instructions per inference (millions, median)")
    ax.set_title("LeNet-5 int8 per board (blue: native, orange: TFLM), QEMU -icount shift=0", fontsize=9)
    ax.set_yscale("log")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic.write_bytes(png, buf.getvalue())


@click.command()
@artifacts_option
@images_option("test images through QEMU per board and runtime")
@data_option
@tflm_dir_options(required=False)
@click.option("--boards", "board_names", default=None, help="comma-separated boards [default: every emulated board]")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(__file__).parent / "results" / "boards.json",
    show_default=True,
)
def main(
    artifacts: Path,
    images: int,
    data_dir: Path | None,
    tflm_dir: Path | None,
    tflm_cmsis_dir: Path | None,
    board_names: str | None,
    out_path: Path,
):
    from lenet_mcu import atomic, boards

    names = board_names.split(",") if board_names else [n for n, b in boards.BOARDS.items() if b.emulated]
    for name in names:
        boards.get(name)  # one-line error for an unknown board, before any work
    runs = [("native", "native", None)] + [
        ("tflm", kind, tree.resolve()) for kind, tree in (("reference", tflm_dir), ("cmsis_nn", tflm_cmsis_dir)) if tree
    ]
    model_sha = hashlib.sha256((artifacts / MODEL).read_bytes()).hexdigest()
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "what": "every board x runtime on its QEMU machine (-icount shift=0), same model, one run",
        "model": MODEL,
        "model_sha256": model_sha,
        "images": images,
        "qemu": qemu,
        "cpus": os.cpu_count(),
        "tflm_trees": {kind: str(tree) for _, kind, tree in runs if tree},
        "rows": [],
    }
    if out_path.is_file():  # resume: keep rows of an earlier run with the same model and image count
        old = json.loads(out_path.read_text())
        if (old.get("model_sha256"), old.get("images")) == (model_sha, images):
            result["rows"] = old["rows"]
    have = {(r["board"], r["runtime"], r["kernels"]) for r in result["rows"]}
    log = lambda msg: click.echo(msg, err=True)  # noqa: E731
    for name in names:
        for runtime, kind, tree in runs:
            if (name, runtime, kind) in have:
                log(f"{name} {runtime} ({kind}): already in {out_path}")
                continue
            log(f"== {name} {runtime} ({kind})")
            row = bench_one(name, runtime, kind, tree, artifacts, images, data_dir, log)
            log(
                json.dumps(
                    {
                        k: row[k]
                        for k in row
                        if k
                        in (
                            "fits",
                            "note",
                            "instructions_per_inference",
                            "bytes_differing",
                            "flash_bytes",
                            "ram_static_bytes",
                        )
                    }
                )
            )
            result["rows"].append(row)
            order = {n: i for i, n in enumerate(boards.NAMES)}
            result["rows"].sort(key=lambda r: (order[r["board"]], r["runtime"] != "native", r["kernels"]))
            result["table_markdown"] = markdown_table(result["rows"])
            atomic.write_text(out_path, json.dumps(result, indent=2) + "\n")
    result["table_markdown"] = markdown_table(result["rows"])
    atomic.write_text(out_path, json.dumps(result, indent=2) + "\n")
    plot(result["rows"], out_path.with_suffix(".png"))
    click.echo(result["table_markdown"])
    click.echo(f"results: {out_path}, {out_path.with_suffix('.png')}", err=True)


if __name__ == "__main__":
    from lenet_mcu.cli import run_command

    run_command(main)  # user errors as one line, no traceback
