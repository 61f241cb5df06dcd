"""The bars' clocks and their time left (cli/progress.py), driven by a clock the test moves: what a person reads
beside a bar must be the truth, from the moment the bar is shown."""

import io
import re

from rich.console import Console

from autoenc_cli.cli.progress import TrainProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drawn(bars: TrainProgress) -> tuple[float, float | None]:
    """(seconds elapsed, seconds left) as the last bar shows them (None: -:--:--)."""
    screen = Console(file=io.StringIO(), width=160, color_system=None)
    screen.print(bars.progress.make_tasks_table(bars.progress.tasks[-1:]))
    text = screen.file.getvalue()
    clocks = re.findall(r"(\d+):(\d\d):(\d\d)", text)
    elapsed = sum(int(v) * f for v, f in zip(clocks[0], (3600, 60, 1)))
    left = sum(int(v) * f for v, f in zip(clocks[1], (3600, 60, 1))) if len(clocks) > 1 else None
    return elapsed, left


def test_the_time_left_follows_the_steady_rate_not_the_slow_start():
    """A refinement of 100 steps as `encode --refine` runs one: the bar shown at once, 8 s of set-up and first step,
    four warm-up steps of 2 s, then steps of 0.1 s. The estimate once the steady steps have run a while is the
    steady rate's, not one dragged by the start (rich's own estimate, over the last 30 s, said three times too long)."""
    clock = Clock()
    bars = TrainProgress(Console(file=io.StringIO(), get_time=clock, width=160))
    bars.cache_progress(0, 100, "refining photo.png")  # shown at once: its clock starts here
    clock.now = 8.0
    bars.cache_progress(1, 100, "refining photo.png")
    assert drawn(bars) == (8, None)  # the clock counts the set-up; no rate yet from one step
    for step in range(2, 6):
        clock.now += 2.0
        bars.cache_progress(step, 100, "refining photo.png")
    for step in range(6, 41):
        clock.now += 0.1
        bars.cache_progress(step, 100, "refining photo.png")
    elapsed, left = drawn(bars)
    truth = (100 - 40) * 0.1
    assert elapsed == int(clock.now) and left is not None and abs(left - truth) <= 0.25 * truth, (left, truth)
    bars.stop()


def test_the_time_left_counts_what_happens_between_steps():
    """Pictures of 10 fast steps with a slower read and encoding between them: the estimate counts those gaps too
    (the rate is the whole job's recent rate, not the steps' alone)."""
    clock = Clock()
    bars = TrainProgress(Console(file=io.StringIO(), get_time=clock, width=160))
    bars.cache_progress(0, 400, "refining 40 pictures")
    for picture in range(20):
        clock.now += 0.5  # reading and encoding the picture
        for step in range(1, 11):
            clock.now += 0.05
            bars.cache_progress(picture * 10 + step, 400, "refining 40 pictures")
    _, left = drawn(bars)
    truth = 20 * (0.5 + 10 * 0.05)
    assert left is not None and abs(left - truth) <= 0.2 * truth, (left, truth)
    bars.stop()
