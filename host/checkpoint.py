"""Append-only record of every device result, so an interrupted verify loses nothing.

One JSON object per line. The first line describes the run (model, device,
image count); every further line is one result. A crash can cut the last line
short: reading stops at the first line that does not parse and the file is
truncated there before appending again. Lines are flushed to the OS at once
(a killed process loses nothing) and fsync'd at most every `fsync_every_s`
seconds (a power cut loses at most that much).
"""
from __future__ import annotations

import json
import os
import time
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
        return json.dumps({"i": self.index, "ticks": self.ticks, "argmax": self.argmax,
                           "out": self.outputs.astype(int).tolist()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, obj: dict) -> "Record":
        return cls(int(obj["i"]), int(obj["ticks"]), int(obj["argmax"]),
                   np.asarray(obj["out"], dtype=np.int8))


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
    def create(cls, path: Path, header: dict, fsync_every_s: float = 1.0) -> "Checkpoint":
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
    def resume(cls, path: Path, header: dict, fsync_every_s: float = 1.0) -> "Checkpoint":
        """Continue an existing checkpoint; its header must match `header`."""
        if not path.is_file():
            raise LenetMcuError(f"--resume: no checkpoint at {path} (run verify without --resume first)")
        records, good_bytes, old_header = read(path)
        for key in ("model_sha256", "count", "output_count"):
            if old_header.get(key) != header.get(key):
                raise LenetMcuError(
                    f"--resume: checkpoint {path} was made with {key}={old_header.get(key)!r}, "
                    f"this run has {key}={header.get(key)!r}; run verify without --resume to start over")
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

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read(path: Path) -> tuple[dict[int, Record], int, dict]:
    """(records by index, byte length of the intact prefix, header)."""
    data = path.read_bytes()
    records: dict[int, Record] = {}
    header: dict | None = None
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # last line cut short by a crash
        try:
            obj = json.loads(data[pos:end])
            if header is None:
                if obj.get("format") != FORMAT:
                    raise ValueError("not a checkpoint header")
                header = obj
            else:
                rec = Record.from_json(obj)
                records.setdefault(rec.index, rec)
        except (ValueError, KeyError, TypeError):
            if header is None:
                raise LenetMcuError(f"{path} is not a verify checkpoint (expected a {FORMAT} header line)") from None
            break
        pos = end + 1
    if header is None:
        raise LenetMcuError(f"{path} is empty or not a verify checkpoint (expected a {FORMAT} header line)")
    return records, pos, header
