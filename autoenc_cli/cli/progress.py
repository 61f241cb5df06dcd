"""Rich progress bars for decoding the dataset, training, encoding and refining."""

from collections import deque

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.text import Text

RATE_WINDOW = 30.0  # seconds: the longest stretch of recent work the rate is measured over (rich's own period)
RATE_SHARE = 0.25  # ... and at most this share of the time since the first unit of work was done


class TimeLeft:
    """The time left of one bar, from the rate of its recent work.

    The set-up before the first unit of work (loading, the first picture's encoding, the first step) never counts,
    and the rate is measured over the latest quarter of the time since (at most RATE_WINDOW seconds): a slow start
    (the first steps of a refinement are several times slower than the next ones) leaves the estimate as the work
    goes on, instead of setting the rate of the whole run. rich's own estimate averaged the last 30 seconds, start
    included: `encode DIR --refine 10` said 22 minutes for 3.5."""

    def __init__(self, completed: float):
        self.shown = completed  # where the bar stood when it was shown
        self.origin = None  # when the first unit of work was done
        self.samples = deque()  # (time, completed) since then: the window's, and the last one before it

    def update(self, now: float, completed: float) -> None:
        if self.origin is None:
            if completed <= self.shown:
                return
            self.origin = now
        self.samples.append((now, completed))
        start = now - min(RATE_WINDOW, RATE_SHARE * (now - self.origin))
        while len(self.samples) > 2 and self.samples[1][0] <= start:
            self.samples.popleft()

    def seconds(self, total: float | None) -> float | None:
        """Seconds left to `total`, or None while there is no rate yet (fewer than two units done)."""
        if total is None or len(self.samples) < 2:
            return None
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or c1 <= c0:
            return None
        return max(0.0, (total - c1) * (t1 - t0) / (c1 - c0))


class TimeLeftColumn(TimeRemainingColumn):
    """rich's time-remaining column, reading TimeLeft's estimate."""

    def render(self, task) -> Text:
        left = 0.0 if task.finished else task.fields["time_left"].seconds(task.total)
        if left is None:
            return Text("-:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(left + 0.5), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class Bars(Progress):
    """rich's Progress whose bars tell the time left with TimeLeft (show it with TimeLeftColumn)."""

    def add_task(self, description: str, start: bool = True, total: float | None = 100.0, completed: int = 0,
                 visible: bool = True, **fields) -> TaskID:
        return super().add_task(description, start, total, completed, visible, time_left=TimeLeft(completed), **fields)

    def update(self, task_id: TaskID, **changes) -> None:
        super().update(task_id, **changes)
        task = self._tasks[task_id]
        task.fields["time_left"].update(self.get_time(), task.completed)


class TrainProgress:
    """One bar while the cache is built, one while training: steps, loss, images/s, time left."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        # the status (epoch, loss, rate) goes last, so that an 80-column terminal cuts it rather than the times
        self.progress = Bars(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeLeftColumn(), TextColumn("{task.fields[status]}"),
            console=self.console, transient=False,
        )
        self.cache_tasks = []  # one bar per cache being built (train images, val images)
        self.rate = 0.0  # the bars appear with the first task: a command that fails before prints no empty line

    def cache_progress(self, done: int, total: int, label: str) -> None:
        self.progress.start()
        if not self.cache_tasks or self.progress.tasks[-1].description != label:
            self.cache_tasks.append(self.progress.add_task(label, total=total, status=""))
        self.progress.update(self.cache_tasks[-1], completed=done)

    def start(self, total: int, step: int):
        self.progress.start()
        for task in self.cache_tasks:  # the caches are built: their bars give way to the training bar
            self.progress.remove_task(task)
        self.cache_tasks = []
        task = self.progress.add_task("training", total=total, completed=step, status="")

        def update(step: int, loss: float, epoch: int) -> None:
            shown = f" loss {loss:.4f} {self.rate:,.0f} img/s" if loss == loss else ""  # nan until the first logged mean
            self.progress.update(task, completed=step, status=f"epoch {epoch}{shown}")

        return update

    def stop(self, keep: bool = True) -> None:
        """keep=False (a run that failed): the bars vanish, so that the error is the only line left."""
        if self.progress.live.is_started:
            self.progress.live.transient = not keep
            self.progress.stop()


def map_with_progress(items, fn, description: str, console: Console | None = None):
    """[fn(item) for item in items] with a bar (and the time left) when there are several items."""
    items = list(items)
    if len(items) < 2:
        return [fn(i) for i in items]
    with Bars(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
              TextColumn("eta"), TimeLeftColumn(), console=console or Console(stderr=True)) as bar:
        task = bar.add_task(description, total=len(items))
        out = []
        for item in items:
            out.append(fn(item))
            bar.update(task, advance=1)
        return out


class BytesProgress:
    """A bar per phase (downloading, checking MD5, extracting): bytes done and total, rate, time left.
    Call it as progress(done, total, label); use it as a context manager."""

    def __init__(self, console: Console | None = None):
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 console=console or Console(stderr=True))
        self.task = None

    def __call__(self, done: int, total: int | None, label: str) -> None:
        if self.task is None or self.progress.tasks[self.task].description != label:
            self.task = self.progress.add_task(label, total=total, completed=done)
        self.progress.update(self.task, completed=done, total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()


class JobProgress:
    """One bar for a job over a collection, on rank 0: the pictures of every process, pictures/s since the bar
    appeared, time left, and the step within the pictures at hand (refinement). Call it as progress(done, total,
    step)."""

    def __init__(self, label: str, console: Console | None = None):
        self.progress = Bars(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("eta"), TimeLeftColumn(),
                             TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[step]}"),
                             console=console or Console(stderr=True))
        self.label, self.task, self.first, self.started = label, None, 0.0, 0.0

    def __call__(self, done: float, total: int, step: str = "") -> None:
        import time
        now = time.monotonic()
        if self.task is None:  # the first call: what was done before (a continued job) is not counted in the rate
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, completed=done, rate="", step="")
            self.first, self.started = done, now
        rate = (done - self.first) / (now - self.started) if now > self.started and done > self.first else 0.0
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate:,.1f} pictures/s" if rate else "",
                             step=step)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.task is not None:
            self.progress.stop()
