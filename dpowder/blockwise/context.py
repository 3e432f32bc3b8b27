"""daisy's ``Context``: what a worker needs to reach its block server,
passed to worker processes in the ``DAISY_CONTEXT`` environment variable as
``hostname=...:port=...:task_id=...:worker_id=...``."""

import contextvars
import os

from ..errors import ArgumentError

#: the context of the worker running in this thread or task, if any (set by
#: the server's worker wrapper; a subprocess finds it in its environment)
CURRENT = contextvars.ContextVar("dpowder_daisy_context", default=None)


class Context:
    """Key/value pairs (strings without ``=`` or ``:``).

    Args:

        **kwargs: e.g. ``hostname``, ``port``, ``task_id``, ``worker_id``.
    """

    ENV_VARIABLE = "DAISY_CONTEXT"

    def __init__(self, **kwargs):
        self._values = {}
        for key, value in kwargs.items():
            self[key] = value

    def copy(self) -> "Context":
        return Context(**self._values)

    def to_env(self) -> str:
        """The context as one environment variable's value."""
        return ":".join(f"{k}={v}" for k, v in self._values.items())

    def __setitem__(self, key, value):
        key, value = str(key), str(value)
        if "=" in key or ":" in key or "=" in value or ":" in value:
            raise ArgumentError(f"context keys and values must not contain '=' or ':', got {key!r}={value!r}")
        self._values[key] = value

    def __getitem__(self, key):
        return self._values[key]

    def get(self, key, default=None):
        return self._values.get(key, default)

    def __contains__(self, key):
        return key in self._values

    def __eq__(self, other):
        return isinstance(other, Context) and self._values == other._values

    def __repr__(self):
        return self.to_env()

    @staticmethod
    def from_string(text: str) -> "Context":
        """Parse ``to_env()``'s form."""
        context = Context()
        for token in text.split(":"):
            if not token:
                continue
            key, sep, value = token.partition("=")
            if not sep:
                raise ArgumentError(
                    f"malformed {Context.ENV_VARIABLE} entry {token!r} in {text!r} (expected key=value)"
                )
            context[key] = value
        return context

    @staticmethod
    def from_env() -> "Context":
        """The running worker's context: the one its wrapper set for this
        thread or task, else the one in ``DAISY_CONTEXT`` (``KeyError`` if
        neither)."""
        context = CURRENT.get()
        if context is not None:
            return context.copy()
        try:
            text = os.environ[Context.ENV_VARIABLE]
        except KeyError:
            raise KeyError(
                f"{Context.ENV_VARIABLE} is not set: this process was not started by a daisy worker"
            ) from None
        return Context.from_string(text)


def current_context():
    """The context of the worker this code runs in: the worker wrapper's
    (thread or dask task), else ``DAISY_CONTEXT``; ``None`` outside a
    worker."""
    context = CURRENT.get()
    if context is not None:
        return context
    if Context.ENV_VARIABLE in os.environ:
        return Context.from_env()
    return None
