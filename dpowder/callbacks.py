"""Progress observers for blockwise jobs (``Scan``, ``DaisyRequestBlocks``,
``run_blockwise``) and training loops (``progress``): a tqdm bar on a
terminal, a few rate-limited log lines otherwise, so cluster logs stay
small.

Nothing here registers a global dask callback: ``dask.diagnostics``'
``ProgressBar`` (for the local schedulers) works beside these as it does
without dpowder."""

import logging
import sys
import time

logger = logging.getLogger(__name__)

__all__ = ["ScanCallback", "TqdmCallback", "progress"]


def _on_terminal():
    return sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class ScanCallback:
    """Base class for Scan callbacks. Implement any of ``start``, ``update``
    and ``stop`` in a subclass to create your own callback.

    ``start(num_total)`` is called once with the number of blocks,
    ``update(num_processed)`` with the number of blocks processed so far
    (cumulative), ``stop()`` once at the end, also after a failure.
    """

    def start(self, num_total):
        pass

    def update(self, num_processed):
        pass

    def stop(self):
        pass


class TqdmCallback(ScanCallback):
    """The default progress callback: a tqdm bar when stderr is a terminal;
    otherwise a log line at most every ``log_interval`` seconds (and at the
    end).

    Args:

        desc (str, optional): What the bar counts.

        log_interval (float, optional): Seconds between log lines when there
            is no terminal.
    """

    def __init__(self, desc="blocks", log_interval=30.0):
        self.desc = desc
        self.log_interval = log_interval
        self._bar = None

    def start(self, num_total):
        self.num_total = num_total
        self.last = 0
        self.started = time.monotonic()
        self.logged = self.started
        if _on_terminal():
            from tqdm import tqdm

            self._bar = tqdm(total=num_total, desc=self.desc)
        else:
            logger.info("%s: 0/%d", self.desc, num_total)

    def update(self, num_processed):
        if self._bar is not None:
            self._bar.update(num_processed - self.last)
        else:
            now = time.monotonic()
            if now - self.logged >= self.log_interval:
                self.logged = now
                rate = num_processed / max(now - self.started, 1e-9)
                logger.info("%s: %d/%d (%.1f/s)", self.desc, num_processed, self.num_total, rate)
        self.last = num_processed

    def stop(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            elapsed = time.monotonic() - self.started
            logger.info("%s: %d/%d done in %.1fs", self.desc, self.last, self.num_total, elapsed)


class progress:
    """Progress of a loop, e.g. training iterations: a tqdm bar on a
    terminal; otherwise a log line (logger ``dpowder.callbacks``) at most
    every ``log_interval`` seconds, and one at the end::

        bar = gp.callbacks.progress(range(n), desc="train")
        for i in bar:
            batch = pipeline.request_batch(request)
            bar.set(loss=batch.loss)

    Args:

        iterable: What the loop iterates over.

        desc (str, optional): What is counted.

        total (int, optional): The number of items (default:
            ``len(iterable)`` where it has one).

        log_interval (float, optional): Seconds between log lines when there
            is no terminal.
    """

    def __init__(self, iterable, desc="iterations", total=None, log_interval=30.0):
        self.iterable = iterable
        self.desc = desc
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.log_interval = log_interval
        self.values = {}
        self._bar = None

    def set(self, **values):
        """Values shown with the count (floats rounded to 4 significant
        digits), e.g. ``loss=0.6931``."""
        self.values = {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(self.values, refresh=False)

    def _line(self, done, elapsed):
        of = f"/{self.total}" if self.total is not None else ""
        shown = "".join(f" {k}={v}" for k, v in self.values.items())
        return f"{self.desc}: {done}{of} ({done / max(elapsed, 1e-9):.2f}/s){shown}"

    def __iter__(self):
        if _on_terminal():
            from tqdm import tqdm

            self._bar = tqdm(self.iterable, desc=self.desc, total=self.total)
            try:
                yield from self._bar
            finally:
                self._bar.close()
                self._bar = None
            return
        started = logged = time.monotonic()
        done = 0
        try:
            for item in self.iterable:
                yield item
                done += 1
                now = time.monotonic()
                if now - logged >= self.log_interval:
                    logged = now
                    logger.info("%s", self._line(done, now - started))
        finally:
            logger.info("%s, done in %.1fs", self._line(done, time.monotonic() - started), time.monotonic() - started)
