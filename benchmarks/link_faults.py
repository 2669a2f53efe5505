"""Benchmark: the serial check through a link that damages bytes, side by side with a clean link.

    python benchmarks/link_faults.py --artifacts artifacts [--data DIR] [--limit 1000] [--rates 0.001,0.01]

Starts one emulated board with the native firmware and runs `verify` (default
window) on the first --limit test images, once through a clean TCP proxy and
once through a proxy injecting each fault pattern, in one run:

- drop: each byte lost with probability `rate`
- flip: one bit flipped in each byte with probability `rate`
- duplicate: each byte sent twice with probability `rate / 2`
- garbage: bursts of 1-64 random bytes, one every ~500 bytes on average
- stall: the link stops for 3 s every 20 s
- cut: the connection is closed once, mid-run (verify reconnects)

Faults hit both directions, like a noisy cable. Every run must give every
image exactly once and 0 bytes differing from the TFLM reference. Prints a
Markdown table (throughput and its ratio to the clean link, resends, timeouts);
results go to benchmarks/results/link_faults.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from lenet_mcu.artifacts import MANIFEST, METRICS, REFERENCES, TFLITE_MODEL, verify_dir
from lenet_mcu.atomic import write_json
from lenet_mcu.host.checkpoint import read as read_checkpoint
from lenet_mcu.host.qemu import QemuBoard
from lenet_mcu.host.verify import CHECKPOINT_FILE, run_verify
from lenet_mcu.pipeline import ensure_firmware

PIPELINE_FILES = (TFLITE_MODEL, REFERENCES, MANIFEST, METRICS)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 to `upstream_port` that damages the bytes passing through."""

    def __init__(self, upstream_port: int, pattern: str = "clean", rate: float = 0.0, seed: int = 1):
        self.upstream_port, self.pattern, self.rate = upstream_port, pattern, rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.1)
        self.url = f"socket://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.damaged = 0
        self.started = time.monotonic()
        self.cut_done = False
        self.to_next_burst = self.rng.expovariate(1 / 500)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self._serve(conn)

    def _mangle(self, data: bytes) -> bytes:
        if self.pattern in ("clean", "stall", "cut"):
            return data
        out = bytearray()
        rng, rate = self.rng, self.rate
        for b in data:
            if self.pattern == "drop" and rng.random() < rate:
                self.damaged += 1
                continue
            if self.pattern == "flip" and rng.random() < rate:
                self.damaged += 1
                b ^= 1 << rng.randrange(8)
            out.append(b)
            if self.pattern == "duplicate" and rng.random() < rate / 2:
                self.damaged += 1
                out.append(b)
            if self.pattern == "garbage":
                self.to_next_burst -= 1
                if self.to_next_burst <= 0:
                    n = rng.randint(1, 64)
                    out += bytes(rng.randrange(256) for _ in range(n))
                    self.damaged += n
                    self.to_next_burst = rng.expovariate(1 / 500)
        return bytes(out)

    def _stalled(self) -> bool:
        return self.pattern == "stall" and (time.monotonic() - self.started) % 20.0 >= 17.0

    def _serve(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        for s in (conn, up):
            s.settimeout(0.05)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        done = threading.Event()

        def pump(src, dst):
            while not done.is_set() and not self.stop.is_set():
                if self.pattern == "cut" and not self.cut_done and time.monotonic() - self.started > 3.0:
                    self.cut_done = True
                    break
                while self._stalled() and not self.stop.is_set():
                    time.sleep(0.05)
                try:
                    data = src.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                with self.lock:
                    data = self._mangle(data)
                try:
                    dst.sendall(data)
                except OSError:
                    break
            done.set()

        other = threading.Thread(target=pump, args=(up, conn), daemon=True)
        other.start()
        pump(conn, up)
        other.join(2)
        conn.close()
        up.close()


def run_pattern(art: Path, board: QemuBoard, data_dir, limit: int, pattern: str, rate: float) -> dict:
    shutil.rmtree(verify_dir(art), ignore_errors=True)
    with FaultProxy(board.port, pattern, rate, seed=7) as proxy:
        t0 = time.monotonic()
        error = None
        try:
            rep = run_verify(
                art, port=proxy.url, data_dir=data_dir, limit=limit, progress=False, reports=False, log=lambda m: None
            )
        except Exception as exc:  # noqa: BLE001 - a failed run is a result here
            rep, error = None, str(exc)
        wall = time.monotonic() - t0
    lines = (verify_dir(art) / CHECKPOINT_FILE).read_text().splitlines()[1:]
    indices = [int(line.split(",", 1)[0].split(":")[1]) for line in lines if line.startswith('{"i":')]
    records, _, _, _ = read_checkpoint(verify_dir(art) / CHECKPOINT_FILE)
    result = {
        "pattern": pattern,
        "rate": rate,
        "limit": limit,
        "wall_seconds": wall,
        "error": error,
        "bytes_damaged": proxy.damaged,
        "exactly_once": sorted(indices) == list(range(limit)),
        "results_checkpointed": len(records),
    }
    if rep is not None:
        result.update(
            {
                "images": rep["images"],
                "differing_from_tflm": rep["bitexact"]["images_differing"],
                "images_per_second": rep["throughput"]["images_per_second"],
                "link": {
                    k: rep["link"][k]
                    for k in (
                        "retransmits",
                        "timeouts",
                        "resent_out_of_order",
                        "resent_after_error",
                        "bad_frames_received",
                        "reconnects",
                    )
                },
            }
        )
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--data", default=None, help="MNIST folder [default: $LENET_MCU_MNIST_DIR]")
    ap.add_argument("--limit", type=int, default=1000, help="images per run")
    ap.add_argument("--rates", default="0.001,0.01", help="byte fault rates for drop, flip and duplicate")
    ap.add_argument("--patterns", default="drop,flip,duplicate,garbage,stall,cut")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "link_faults.json")
    args = ap.parse_args(argv)

    rates = [float(r) for r in args.rates.split(",") if r]
    plan = [("clean", 0.0)]
    for pattern in args.patterns.split(","):
        if pattern in ("drop", "flip", "duplicate"):
            plan += [(pattern, r) for r in rates]
        else:
            plan.append((pattern, 0.0))
    plan.append(("clean", 0.0))  # again at the end: the machine's load drifts
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        art = Path(tmp) / "artifacts"
        art.mkdir()
        for name in PIPELINE_FILES:
            if (args.artifacts / name).exists():
                shutil.copy2(args.artifacts / name, art / name)
        elf = ensure_firmware(art, "native", echo=lambda m: None)
        with QemuBoard(elf) as board:
            for pattern, rate in plan:
                r = run_pattern(art, board, args.data, args.limit, pattern, rate)
                runs.append(r)
                print(
                    f"{pattern} {rate:g}: {r['wall_seconds']:.1f} s, exactly once: {r['exactly_once']}"
                    f"{', error: ' + r['error'] if r['error'] else ''}",
                    flush=True,
                )
    clean = [r["images_per_second"] for r in runs if r["pattern"] == "clean" and r.get("images_per_second")]
    clean_rate = sum(clean) / len(clean) if clean else None
    for r in runs:
        r["vs_clean"] = (r["images_per_second"] / clean_rate) if r.get("images_per_second") and clean_rate else None
    result = {
        "what": "lenet-mcu verify through a fault-injecting link (one emulated STM32F405, default window)",
        "host": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "clean_images_per_second": clean_rate,
        "runs": runs,
    }
    write_json(args.out, result)
    print("\n| fault | rate | images | exactly once | images/s | vs clean | resends | timeouts | differing |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in runs:
        link = r.get("link", {})
        ips = f"{r['images_per_second']:.1f}" if r.get("images_per_second") else "—"
        vs = f"{100 * r['vs_clean']:.0f} %" if r.get("vs_clean") else "—"
        print(
            f"| {r['pattern']} | {r['rate']:g} | {r.get('images', r['results_checkpointed'])} | "
            f"{'yes' if r['exactly_once'] else 'NO'} | {ips} | {vs} | {link.get('retransmits', '—')} | "
            f"{link.get('timeouts', '—')} | {r.get('differing_from_tflm', '—')} |"
        )
    print(
        f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results: {args.out}"
    )
    return 0 if all(r["exactly_once"] and not r["error"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
