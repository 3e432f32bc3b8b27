"""daisy's worker log helpers: where a worker's stdout and stderr go."""

import os
import sys
from pathlib import Path

#: where worker logs go (``None``: the terminal)
LOG_BASEDIR = Path("./daisy_logs")


def set_log_basedir(path):
    """Set the directory for worker logs; ``None`` leaves them on the
    terminal. Default ``./daisy_logs``."""
    global LOG_BASEDIR
    LOG_BASEDIR = None if path is None else Path(path)


def get_log_basedir():
    """The directory for worker logs, or ``None``."""
    return LOG_BASEDIR


def get_worker_log_basename(worker_id, task_id=None):
    """``<basedir>/<task_id>/worker_<worker_id>`` (without a suffix), or
    ``None`` when logs stay on the terminal."""
    if LOG_BASEDIR is None:
        return None
    basename = LOG_BASEDIR
    if task_id is not None:
        basename = basename / str(task_id)
    return basename / f"worker_{worker_id}"


def redirect_stdouterr(basename, mode="w"):
    """Send this process's stdout and stderr (file descriptors 1 and 2
    too, so subprocesses' output follows) to ``<basename>.out`` and
    ``<basename>.err``; nothing if ``basename`` is ``None``."""
    if basename is None:
        return
    basename = Path(basename)
    basename.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout = _reopen(basename.with_name(basename.name + ".out"), mode, sys.__stdout__)
    sys.stderr = _reopen(basename.with_name(basename.name + ".err"), mode, sys.__stderr__)


def _reopen(path, mode, stream):
    new = open(path, mode)  # noqa: SIM115 -- it replaces sys.stdout/stderr for the process's life
    os.dup2(new.fileno(), stream.fileno())
    return new
