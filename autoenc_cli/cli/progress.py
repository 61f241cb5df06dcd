"""Rich progress bars for decoding the dataset and for training."""

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn, TransferSpeedColumn)


class TrainProgress:
    """One bar while the cache is built, one while training: steps, loss, images/s, time left."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        # the status (epoch, loss, rate) goes last, so that an 80-column terminal cuts it rather than the times
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
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
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=console or Console(stderr=True)) as bar:
        task = bar.add_task(description, total=len(items))
        out = []
        for item in items:
            out.append(fn(item))
            bar.advance(task)
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
    appeared, time left, and the step within the picture at hand (refinement). Call it as progress(done, total)."""

    def __init__(self, label: str, console: Console | None = None):
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[rate]}"), console=console or Console(stderr=True))
        self.label, self.task, self.first, self.started = label, None, 0.0, 0.0

    def __call__(self, done: float, total: int) -> None:
        import time
        now = time.monotonic()
        if self.task is None:  # the first call: what was done before (a continued job) is not counted in the rate
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total, completed=done, rate="")
            self.first, self.started = done, now
        rate = (done - self.first) / (now - self.started) if now > self.started and done > self.first else 0.0
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate:,.1f} pictures/s" if rate else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.task is not None:
            self.progress.stop()
