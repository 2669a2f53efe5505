"""Progress lines for logs (lenet_mcu.progress)."""

from __future__ import annotations

import pytest

from lenet_mcu.progress import Progress, progress_line

pytestmark = pytest.mark.base


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_line_every_few_seconds_and_one_at_the_end():
    clock, lines = Clock(), []
    p = Progress(1000, "verify", interactive=False, echo=lines.append, every=5.0, clock=clock)
    for _ in range(10):  # 100 images per second for 10 s
        clock.now += 1.0
        p.update(100)
    p.close()
    p.close()  # a second close prints nothing more
    assert lines == [
        "verify: 500/1000 images (50%), 100.0 images/s, ETA 5 s",
        "verify: 1000/1000 images (100%), 100.0 images/s, ETA 0 s".replace(", ETA 0 s", ""),
    ]


def test_resumed_runs_count_only_new_work_in_the_rate():
    clock, lines = Clock(), []
    with Progress(10000, "verify", initial=4000, interactive=False, echo=lines.append, clock=clock) as p:
        clock.now += 10
        p.set(5000)
    assert lines == ["verify: 5000/10000 images (50%), 100.0 images/s, ETA 50 s"]


def test_disabled_or_idle_prints_nothing():
    lines = []
    Progress(10, "x", enabled=False, echo=lines.append).update(10)
    with Progress(10, "x", interactive=False, echo=lines.append):
        pass
    assert lines == []


def test_eta_reads_in_minutes_and_hours():
    assert progress_line("evaluate", 100, 100000, "images", 10.0).endswith("ETA 2 h 46 min")
    assert progress_line("evaluate", 0, 1000, "images", 10.0).endswith("ETA 1 min 40 s")
    assert progress_line("evaluate", 0, 0, "images", None) == "evaluate: 0/0 images"
