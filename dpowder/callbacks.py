"""Progress observers for blockwise jobs (``Scan``, ``DaisyRequestBlocks``,
``run_blockwise``): a tqdm bar on a terminal, a few rate-limited log lines
otherwise, so cluster logs stay small."""

import logging
import sys
import time

logger = logging.getLogger(__name__)

__all__ = ["ScanCallback", "TqdmCallback"]


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
        if sys.stderr is not None and sys.stderr.isatty():
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
