"""Progress of long runs, on a terminal and in a log.

On a terminal: a tqdm bar on stderr. When stdout is not a terminal (a log file,
CI, a pipe): one plain line every `every` seconds and one at the end, e.g.
`verify: 3000/10000 images (30%), 148.2 images/s, ETA 47 s`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_line(desc: str, done: int, total: int, unit: str, rate: float | None) -> str:
    """`desc: done/total unit (pct), rate unit/s, ETA ...` (rate None: not known yet)."""
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    line = f"{desc}: {done}/{total} {unit}{pct}"
    if rate:
        line += f", {rate:.1f} {unit}/s"
        if done < total:
            line += f", ETA {_duration((total - done) / rate)}"
    return line


class Progress:
    """A counter of finished items with the same calls as a tqdm bar (update, close).

    `enabled=False` shows nothing. `interactive` (default: stdout is a terminal)
    chooses the bar; otherwise `echo` (default: print to stdout) gets the lines.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "images",
        initial: int = 0,
        enabled: bool = True,
        every: float = 5.0,
        interactive: bool | None = None,
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.done = self.initial = int(initial)
        self.every = every
        self._clock = clock
        self._start = self._last = clock()
        self._echo = echo or (lambda line: print(line, flush=True))
        self._bar = None
        self._lines = False
        self._closed = False
        self._shown = self.initial  # the count the last line showed
        if not enabled:
            return
        if interactive is None:
            interactive = sys.stdout.isatty()
        if interactive:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                initial=self.initial,
                unit=unit,
                desc=desc,
                file=sys.stderr,
                dynamic_ncols=True,
                disable=None,
            )
        else:
            self._lines = True

    def rate(self) -> float | None:
        elapsed = self._clock() - self._start
        new = self.done - self.initial
        return new / elapsed if elapsed > 0 and new > 0 else None

    def line(self) -> str:
        return progress_line(self.desc, self.done, self.total, self.unit, self.rate())

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines:
            now = self._clock()
            if now - self._last >= self.every:
                self._last = now
                self._show()

    def _show(self) -> None:
        self._shown = self.done
        self._echo(self.line())

    def set(self, done: int) -> None:
        """Move the counter to `done` (for work that reports totals, not increments)."""
        self.update(done - self.done)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._lines and self.done != self._shown:
            self._show()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
