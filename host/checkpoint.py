"""Append-only record of every device result, so an interrupted verify loses nothing.

One JSON object per line. The first line describes the run (model, device,
image count); every further line is one result. A crash can cut the last line
short: it is dropped and the file truncated there before appending again. A
damaged line elsewhere is named and skipped; the lines after it still count. Lines are flushed to the OS at once
(a killed process loses nothing) and fsync'd at most every `fsync_every_s`
seconds (a power cut loses at most that much).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lenet_mcu.errors import LenetMcuError

FORMAT = "lenet-mcu-verify-checkpoint/1"


@dataclass
class Record:
    index: int
    ticks: int
    argmax: int
    outputs: np.ndarray  # int8[count]

    def to_json(self) -> str:
        return json.dumps(
            {"i": self.index, "ticks": self.ticks, "argmax": self.argmax, "out": self.outputs.astype(int).tolist()},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, obj: dict) -> Record:
        return cls(int(obj["i"]), int(obj["ticks"]), int(obj["argmax"]), np.asarray(obj["out"], dtype=np.int8))


@dataclass
class Checkpoint:
    path: Path
    header: dict
    records: dict[int, Record] = field(default_factory=dict)
    fsync_every_s: float = 1.0
    _file: object = None
    _last_sync: float = 0.0

    # -- opening --------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, header: dict, fsync_every_s: float = 1.0) -> Checkpoint:
        """Start a new checkpoint, replacing any old one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt = cls(path, dict(header, format=FORMAT), fsync_every_s=fsync_every_s)
        f = open(path, "w", encoding="utf-8")
        f.write(json.dumps(ckpt.header, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
        ckpt._file = f
        ckpt._last_sync = time.monotonic()
        return ckpt

    @classmethod
    def resume(
        cls, path: Path, header: dict, fsync_every_s: float = 1.0, log: Callable[[str], None] = lambda msg: None
    ) -> Checkpoint:
        """Continue an existing checkpoint; its header must match `header`."""
        if not path.is_file():
            raise LenetMcuError(f"--resume: no checkpoint at {path} (run verify without --resume first)")
        records, good_bytes, old_header, damaged = read(path)
        for line in damaged[:5]:
            log(f"--resume: {path} {line}: skipped (that image is checked again)")
        if len(damaged) > 5:
            log(f"--resume: {path}: {len(damaged) - 5} more damaged lines skipped")
        for key in ("model_sha256", "count", "output_count"):
            if old_header.get(key) != header.get(key):
                raise LenetMcuError(
                    f"--resume: checkpoint {path} was made with {key}={old_header.get(key)!r}, "
                    f"this run has {key}={header.get(key)!r}; run verify without --resume to start over"
                )
        with open(path, "r+b") as f:  # cut a half-written last line
            f.truncate(good_bytes)
        ckpt = cls(path, old_header, records, fsync_every_s=fsync_every_s)
        ckpt._file = open(path, "a", encoding="utf-8")
        ckpt._last_sync = time.monotonic()
        return ckpt

    # -- writing --------------------------------------------------------------
    def add(self, record: Record) -> bool:
        """Append a result; False (and nothing written) if the index is already there."""
        if record.index in self.records:
            return False
        self.records[record.index] = record
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_every_s:
            os.fsync(self._file.fileno())
            self._last_sync = now
        return True

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _record(obj, header: dict) -> Record:
    """A result line as a Record; ValueError saying what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    rec = Record.from_json(obj)
    count, outputs = header.get("count"), header.get("output_count")
    if isinstance(count, int) and not 0 <= rec.index < count:
        raise ValueError(f"image index {rec.index} is outside 0..{count - 1}")
    out = obj["out"]
    if isinstance(outputs, int) and len(out) != outputs:
        raise ValueError(f"{len(out)} outputs, expected {outputs}")
    if any(not isinstance(v, int) or not -128 <= v <= 127 for v in out):
        raise ValueError("an output is not an int8 value")
    if isinstance(outputs, int) and not 0 <= rec.argmax < outputs:
        raise ValueError(f"argmax {rec.argmax} is outside 0..{outputs - 1}")
    return rec


def read(path: Path) -> tuple[dict[int, Record], int, dict, list[str]]:
    """(records by index, byte length up to the last whole line, header, damaged lines).

    A damaged result line (not JSON, missing fields, wrong number of outputs...)
    is skipped and named in `damaged` ("line 12: 9 outputs, expected 10"); the
    results after it still count. A last line without its newline was cut by a
    crash: it is not counted and `good_bytes` ends before it."""
    data = path.read_bytes()
    records: dict[int, Record] = {}
    damaged: list[str] = []
    header: dict | None = None
    pos = 0
    lineno = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # last line cut short by a crash
        lineno += 1
        line = data[pos:end]
        pos = end + 1
        if header is None:
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise LenetMcuError(f"{path} is not a verify checkpoint (expected a {FORMAT} header line)")
            header = obj
            continue
        try:
            rec = _record(json.loads(line), header)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            damaged.append(f"line {lineno}: {exc}")
            continue
        records.setdefault(rec.index, rec)
    if header is None:
        raise LenetMcuError(f"{path} is empty or not a verify checkpoint (expected a {FORMAT} header line)")
    return records, pos, header, damaged
