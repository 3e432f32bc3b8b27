"""Lazy (dask) data inside tasks."""

import numpy as np


def to_numpy(data):
    """``data`` as numpy. A dask array is computed here, with the synchronous
    scheduler: the calling task is the unit of parallelism, so a read never
    spawns threads or submits to a cluster from inside a worker."""
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "compute") and hasattr(data, "dask"):
        return np.asarray(data.compute(scheduler="sync"))
    return np.asarray(data)
