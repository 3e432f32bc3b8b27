"""Which ``distributed`` client a driver-side node's work goes to, and the
``LocalCluster`` such a node starts when there is none (shared by blockwise
maps and training streams)."""

import logging


def is_client(scheduler):
    """Whether ``scheduler`` is a ``distributed.Client`` (duck-typed)."""
    return hasattr(scheduler, "submit") and hasattr(scheduler, "scatter") and hasattr(scheduler, "gather")


def active_client(node):
    """The client given to ``build`` for ``node``'s pipeline, else the active
    default client; ``None`` if there is none, or if ``build`` was given a
    scheduler that is not a client."""
    scheduler = node.__dict__.get("_dp_scheduler")
    if scheduler is not None:
        return scheduler if is_client(scheduler) else None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


class LocalClusterHandle:
    """A ``LocalCluster`` of ``n`` single-threaded worker processes on
    loopback, started on first use and closed by ``close()`` (the owning
    node's teardown)."""

    def __init__(self):
        self.cluster = None
        self.client = None

    def get(self, n):
        if self.client is None:
            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster, set_as_default=False)
        return self.client

    def close(self):
        if self.client is not None:
            self.client.close()
            self.cluster.close()
            self.client = self.cluster = None
