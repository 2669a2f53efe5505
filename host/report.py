"""The verify report: numbers (JSON), a readable summary (Markdown) and two PNGs.

Everything is written atomically into artifacts/verify/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet_mcu import boards, plots
from lenet_mcu.artifacts import verify_dir
from lenet_mcu.atomic import write_bytes, write_json, write_text
from lenet_mcu.decision import rule_name
from lenet_mcu.host import protocol as proto

#: bits per byte on a UART with 8 data bits, no parity, one stop bit (8N1)
UART_BITS_PER_BYTE = 10
REFERENCE_BAUD = 115200


def _rate(n: int, d: int) -> float | None:
    return None if d == 0 else n / d


def build_report(refs, records: dict, total: int, hello: proto.Hello, model_sha256: str, session: dict) -> dict:
    idx = np.array(sorted(records), dtype=np.int64)
    n = int(idx.size)
    outputs = np.stack([records[i].outputs for i in idx]) if n else np.zeros((0, refs.output_count), np.int8)
    dev_pred = np.array([records[i].argmax for i in idx], dtype=np.int64)
    ticks = np.array([records[i].ticks for i in idx], dtype=np.int64)
    labels = refs.labels[idx].astype(np.int64)
    tflm = refs.tflm_int8[idx]
    tflite = refs.tflite_int8[idx]

    diff_tflm = np.abs(outputs.astype(np.int16) - tflm.astype(np.int16))
    differ_tflm = np.flatnonzero(diff_tflm.max(axis=1) > 0) if n else np.array([], np.int64)
    diff_tflite = np.abs(outputs.astype(np.int16) - tflite.astype(np.int16))
    classes = refs.output_count
    confusion = plots.confusion_matrix(labels, dev_pred, classes)
    per_class = {}
    for c in range(classes):
        mask = labels == c
        per_class[str(c)] = {
            "images": int(mask.sum()),
            "correct": int((dev_pred[mask] == c).sum()),
            "accuracy": _rate(int((dev_pred[mask] == c).sum()), int(mask.sum())),
        }
    misclassified = idx[dev_pred != labels]

    tick_stats = None
    if n:
        tick_stats = {
            "unit": hello.tick_unit,
            "tick_kind": hello.tick_kind,
            "tick_hz": hello.tick_hz,
            "min": int(ticks.min()),
            "median": float(np.median(ticks)),
            "max": int(ticks.max()),
            "mean": float(ticks.mean()),
        }
        if hello.tick_hz:
            # Real time only on silicon: QEMU does not model the clock tree, so there
            # tick_hz is the 16 MHz HSI fallback and the ticks are instructions.
            tick_stats["median_ms_at_nominal_tick_hz"] = float(np.median(ticks)) / hello.tick_hz * 1e3
            tick_stats["note"] = "ms figure is real time on silicon only; under QEMU -icount ticks count instructions"
        board = boards.for_tick_kind(hello.board, hello.tick_kind)
        if board is not None:
            # Under QEMU -icount shift=0 an instruction is 1 ns of emulated time, so each
            # tick of the board's counter stands for a fixed number of instructions.
            per_tick = board.counter.instructions_per_tick
            tick_stats["instructions_per_tick_under_qemu"] = per_tick
            tick_stats["instructions_under_qemu"] = {
                "min": round(int(ticks.min()) * per_tick),
                "median": round(float(np.median(ticks)) * per_tick),
                "max": round(int(ticks.max()) * per_tick),
                "resolution": per_tick,
            }

    s_images, s_seconds = session["images"], session["seconds"]
    wire = None
    if s_images:
        out_pi = session["bytes_out"] / s_images
        in_pi = session["bytes_in"] / s_images
        wire = {
            "bytes_to_device_per_image": out_pi,
            "bytes_from_device_per_image": in_pi,
            # One request at a time on a real UART (the firmware masks RX during
            # inference), so both directions add up; compute time comes on top.
            "uart_115200_seconds_per_image": (out_pi + in_pi) * UART_BITS_PER_BYTE / REFERENCE_BAUD,
            "uart_115200_seconds_for_all": (out_pi + in_pi) * UART_BITS_PER_BYTE / REFERENCE_BAUD * refs.count,
        }

    return {
        "result": "pass" if n == total and differ_tflm.size == 0 else ("fail" if differ_tflm.size else "incomplete"),
        "images": n,
        "images_requested": total,
        "images_in_test_set": refs.count,
        "model": {
            "file": "lenet5_int8.tflite",
            "sha256": model_sha256,
            "device_sha256_prefix": hello.model_sha256_prefix,
        },
        "device": {
            "board": hello.board,
            "runtime": hello.runtime,
            "tick_unit": hello.tick_unit,
            "tick_hz": hello.tick_hz,
            "ram_static_bytes": hello.ram_static_bytes,
            "arena_bytes": hello.arena_bytes,
            "max_payload": hello.max_payload,
            "input_dims": list(hello.input_dims),
            "output_count": hello.output_count,
        },
        "decision": rule_name(refs.smallest_wins),
        "accuracy": {
            "device": _rate(int((dev_pred == labels).sum()), n),
            "float_model": _rate(int((refs.float_pred[idx] == labels).sum()), n),
            "host_int8_tflite": _rate(int((refs.predict(tflite) == labels).sum()), n) if n else None,
            "tflm_reference": _rate(int((refs.predict(tflm) == labels).sum()), n) if n else None,
            "per_class": per_class,
        },
        "agreement": {
            "float_model": _rate(int((dev_pred == refs.float_pred[idx]).sum()), n),
            "host_int8_tflite": _rate(int((dev_pred == refs.predict(tflite)).sum()), n) if n else None,
            "tflm_reference": _rate(int((dev_pred == refs.predict(tflm)).sum()), n) if n else None,
        },
        "bitexact": {
            "reference": "tflm_int8",
            "images_differing": int(differ_tflm.size),
            "bytes_differing": int((diff_tflm > 0).sum()),
            "max_abs_difference": int(diff_tflm.max()) if n else 0,
            "first_differing_images": idx[differ_tflm][:20].tolist(),
            "vs_host_tflite_int8": {
                "images_differing": int((diff_tflite.max(axis=1) > 0).sum()) if n else 0,
                "max_abs_difference": int(diff_tflite.max()) if n else 0,
            },
            # The device reports its own class; it must be the first maximum of its outputs
            # (the first minimum for an RBF model's distances).
            "device_argmax_inconsistent": int((dev_pred != refs.predict(outputs)).sum()) if n else 0,
        },
        "ticks": tick_stats,
        "throughput": {
            "session_images": s_images,
            "session_seconds": s_seconds,
            "images_per_second": s_images / s_seconds if s_seconds > 0 and s_images else None,
            "window": session["window"],
            "wire": wire,
        },
        "link": dict(
            session["link"],
            url=session["url"],
            baud=session["baud"],
            resumed=session["resumed"],
            bytes_out=session["bytes_out"],
            bytes_in=session["bytes_in"],
        ),
        "device_stats": session.get("device_stats"),
        # Ticks per layer of one inference (PROFILE_REQUEST), or None if the firmware cannot profile.
        "profile": session.get("profile"),
        # One entry per device of the session: images it checked, its rate, link counters.
        "devices": session.get("devices") or [],
        "confusion_matrix": confusion.tolist(),
        "misclassified_images": misclassified.tolist(),
    }


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def render_markdown(rep: dict) -> str:
    dev, acc, agr, bx = rep["device"], rep["accuracy"], rep["agreement"], rep["bitexact"]
    verdict = {
        "pass": "PASS: every output byte equals the TFLM reference",
        "fail": f"FAIL: {bx['images_differing']} images differ from the TFLM reference",
        "incomplete": "INCOMPLETE: not every requested image was checked",
    }[rep["result"]]
    lines = [
        "# On-device verification",
        "",
        f"**{verdict}** ({rep['images']} of {rep['images_in_test_set']} MNIST test images checked).",
        "",
        f"Device: `{dev['board']}`, runtime `{dev['runtime']}`, model sha256 `{rep['model']['device_sha256_prefix']}...` "
        f"(artifacts: `{rep['model']['sha256'][:16]}...`), arena {dev['arena_bytes']} B, static RAM {dev['ram_static_bytes']} B.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| predicted class | {rep.get('decision', rule_name(False))} of the {dev['output_count']} outputs |",
        f"| on-device accuracy | {_pct(acc['device'])} |",
        f"| float model accuracy (same images) | {_pct(acc['float_model'])} |",
        f"| host int8 (tflite-runtime) accuracy | {_pct(acc['host_int8_tflite'])} |",
        f"| agreement with float model predictions | {_pct(agr['float_model'])} |",
        f"| agreement with host int8 predictions | {_pct(agr['host_int8_tflite'])} |",
        f"| agreement with TFLM reference predictions | {_pct(agr['tflm_reference'])} |",
        f"| images whose int8 outputs differ from TFLM | {bx['images_differing']} |",
        f"| largest output difference (int8 steps) | {bx['max_abs_difference']} |",
        f"| images differing from host tflite-runtime int8 | {bx['vs_host_tflite_int8']['images_differing']} "
        f"(max {bx['vs_host_tflite_int8']['max_abs_difference']}) |",
    ]
    t = rep["ticks"]
    if t:
        lines.append(
            f"| ticks per inference (min / median / max) | {t['min']} / {t['median']:.0f} / {t['max']} {t['unit']} |"
        )
    th = rep["throughput"]
    if th["images_per_second"]:
        lines.append(
            f"| throughput this session | {th['images_per_second']:.1f} images/s "
            f"({th['session_images']} images in {th['session_seconds']:.1f} s, window {th['window']}) |"
        )
    if th["wire"]:
        w = th["wire"]
        lines.append(
            f"| bytes on the wire per image (to / from device) | {w['bytes_to_device_per_image']:.1f} / "
            f"{w['bytes_from_device_per_image']:.1f} |"
        )
        lines.append(
            f"| link time at 115200 baud, all {rep['images_in_test_set']} images | "
            f"{w['uart_115200_seconds_for_all']:.0f} s (transfer only) |"
        )
    link = rep["link"]
    lines.append(
        f"| link events | {link['retransmits']} resends, {link['timeouts']} timeouts, "
        f"{link['bad_frames_received']} bad frames, {link['duplicates_dropped']} duplicates dropped, "
        f"{link['resets_detected']} device resets |"
    )
    ds = rep.get("device_stats")
    if ds:
        lines.append(
            f"| device counters | stack peak {ds['stack_peak_bytes']} of {ds['stack_size_bytes']} B, "
            f"{ds['frames_ok']} frames answered, {ds['frames_bad']} errors, {ds['rx_dropped']} bytes dropped |"
        )
    lines += profile_markdown(rep.get("profile"))
    devices = rep.get("devices") or []
    if len(devices) > 1:
        lines += [
            "",
            "## Devices",
            "",
            "| device | board / runtime | images | images/s | resends | stopped |",
            "|---|---|---:|---:|---:|---|",
        ]
        for d in devices:
            rate = f"{d['images_per_second']:.1f}" if d["images_per_second"] else "n/a"
            lines.append(
                f"| `{d['url']}` | {d['board']} / {d['runtime']} | {d['images']} | {rate} | "
                f"{d['link']['retransmits']} | {d['stopped'] or ''} |"
            )
    lines += ["", "## Per-class accuracy", "", "| class | images | correct | accuracy |", "|---:|---:|---:|---:|"]
    for c, pc in acc["per_class"].items():
        lines.append(f"| {c} | {pc['images']} | {pc['correct']} | {_pct(pc['accuracy'])} |")
    lines += ["", "![confusion matrix](confusion.png)", "", "![misclassified digits](misclassified.png)", ""]
    if bx["first_differing_images"]:
        lines += [
            f"First images whose outputs differ from TFLM: {', '.join(map(str, bx['first_differing_images']))}",
            "",
        ]
    return "\n".join(lines)


def profile_markdown(profile: dict | None) -> list[str]:
    """The per-layer table of a verify report (empty without a profile)."""
    if not profile:
        return []
    total = sum(layer["ticks"] for layer in profile["layers"])
    lines = [
        "",
        "## Ticks per layer",
        "",
        f"One inference (test image {profile['image']}) through the firmware's per-layer profile; "
        f"the layers sum to {total} of the {profile['total_ticks']} ticks of that run "
        f"(the rest is the calls and the timer reads).",
        "",
        "| layer | ticks | share |",
        "|---|---:|---:|",
    ]
    for layer in profile["layers"]:
        lines.append(f"| {layer['name']} | {layer['ticks']} | {layer['ticks'] / max(total, 1):.1%} |")
    lines += ["", "![ticks per layer](profile.png)"]
    return lines


def write_reports(out_dir: Path, rep: dict, images: np.ndarray, refs, records: dict) -> None:
    out_dir = Path(out_dir)
    write_json(out_dir / "report.json", rep)
    write_text(out_dir / "report.md", render_markdown(rep))
    write_bytes(
        out_dir / "confusion.png", plots.confusion_png(np.array(rep["confusion_matrix"]), xlabel="predicted on device")
    )
    if rep.get("profile"):
        prof = rep["profile"]
        write_bytes(
            out_dir / "profile.png",
            plots.layer_ticks_png(
                [layer["name"] for layer in prof["layers"]],
                {"device": [layer["ticks"] for layer in prof["layers"]]},
                f"Ticks per layer (test image {prof['image']})",
                (rep.get("ticks") or {}).get("unit", "ticks"),
            ),
        )
    preds = {i: r.argmax for i, r in records.items()}
    write_bytes(
        out_dir / "misclassified.png", plots.misclassified_png(images, refs.labels, preds, rep["misclassified_images"])
    )


def summary(rep: dict) -> dict:
    """The few numbers a pipeline manifest keeps from a verify report."""
    ticks = rep["ticks"] or {}
    return {
        "result": rep["result"],
        "images": rep["images"],
        "board": rep["device"]["board"],
        "runtime": rep["device"]["runtime"],
        "images_differing_from_tflm": rep["bitexact"]["images_differing"],
        "max_abs_difference": rep["bitexact"]["max_abs_difference"],
        "device_accuracy": rep["accuracy"]["device"],
        "agreement_float_model": rep["agreement"]["float_model"],
        "agreement_host_int8": rep["agreement"]["host_int8_tflite"],
        "ticks_median": ticks.get("median"),
        "tick_unit": ticks.get("unit"),
        "images_per_second": rep["throughput"]["images_per_second"],
        "devices": len(rep.get("devices") or []) or 1,
    }


def summary_lines(rep: dict, artifacts: Path | None = None) -> list[str]:
    """The few lines a person reads at the end of a check."""
    acc, agr, bx, t, th = rep["accuracy"], rep["agreement"], rep["bitexact"], rep["ticks"], rep["throughput"]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f}%"

    lines = [
        f"{rep['result'].upper()}: {rep['images']} images on {rep['device']['board']}/{rep['device']['runtime']}; "
        f"{bx['images_differing']} differ from the TFLM reference (largest difference {bx['max_abs_difference']})",
        f"on-device accuracy {pct(acc['device'])}; agreement with float model {pct(agr['float_model'])}, "
        f"with host int8 {pct(agr['host_int8_tflite'])}",
    ]
    if t:
        lines.append(f"ticks per inference min/median/max {t['min']}/{t['median']:.0f}/{t['max']} ({t['unit']})")
    if th["images_per_second"]:
        where = f"; report: {verify_dir(artifacts) / 'report.md'}" if artifacts is not None else ""
        devices = rep.get("devices") or []
        on = f" on {len(devices)} devices" if len(devices) > 1 else ""
        lines.append(f"{th['images_per_second']:.1f} images/s{on}{where}")
        if len(devices) > 1:
            lines.append(
                "per device: "
                + ", ".join(
                    f"{d['url']} {d['images']} images" + (f" (stopped: {d['stopped']})" if d["stopped"] else "")
                    for d in devices
                )
            )
    return lines
