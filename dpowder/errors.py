"""The errors users catch, under one ``DpowderError``.

Class names are gunpowder's so that ``except gp.BatchRequestError`` keeps
working; messages carry the facts (node, where it was created, key, ROIs).

Each class takes either one message string (what dpowder itself raises) or
gunpowder 1.4's constructor arguments, e.g. ``BatchRequestError(provider,
request, batch, original_traceback)``, which are kept as attributes of the
same names and make gunpowder's message. Every error also has the optional
keyword attributes ``node``, ``key``, ``roi`` (asked for) and ``provided``
(what is there), ``None`` unless the raiser sets them.
"""

from typing import Any, Optional, Sequence

_FACTS = ("node", "key", "roi", "provided")


def _node_name(node: Any) -> str:
    name = getattr(node, "name", None)
    if callable(name):
        try:
            return str(name())
        except TypeError:  # a class, not a node: ``name`` is unbound
            pass
    if isinstance(node, str):
        return node
    return type(node).__name__


def _traceback_text(original_traceback: Optional[Sequence[str]]) -> str:
    if original_traceback is None:
        return ""
    if isinstance(original_traceback, str):
        return original_traceback
    return "".join(original_traceback)


class DpowderError(Exception):
    """Base class of every error dpowder raises on purpose.

    Args:

        message (str): What went wrong.

        node (BatchProvider, optional): The node that raised it.

        key (ArrayKey or GraphKey, optional): The key concerned.

        roi (Roi, optional): The ROI asked for, in world units.

        provided (optional): What is provided instead (a ROI or a spec).
    """

    def __init__(self, *args: Any, node: Any = None, key: Any = None, roi: Any = None, provided: Any = None):
        super().__init__(*args)
        self.node = node
        self.key = key
        self.roi = roi
        self.provided = provided


class _GunpowderForm(DpowderError):
    """An error that also takes gunpowder's constructor arguments.

    Subclasses name them in ``_FIELDS`` (required ones first, then those
    with a default in ``_DEFAULTS``) and make the message in ``_message``.
    A single string argument is a plain message, as before.
    """

    _FIELDS: tuple = ()
    _DEFAULTS: dict = {}

    def __init__(self, *args: Any, **kwargs: Any):
        facts = {name: kwargs.pop(name) for name in _FACTS if name in kwargs}
        if not kwargs and (not args or (len(args) == 1 and isinstance(args[0], str))):
            super().__init__(*args, **facts)
            return
        values = self._bind(args, kwargs)
        for name, value in values.items():
            setattr(self, name, value)
        facts.setdefault("node", values.get(self._FIELDS[0]))
        super().__init__(self._message(), **facts)

    def _bind(self, args: tuple, kwargs: dict) -> dict:
        cls = type(self).__name__
        if len(args) > len(self._FIELDS):
            raise TypeError(f"{cls}() takes at most {len(self._FIELDS)} arguments ({len(args)} given)")
        values = dict(zip(self._FIELDS, args))
        for name, value in kwargs.items():
            if name not in self._FIELDS:
                raise TypeError(f"{cls}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls}() got multiple values for argument {name!r}")
            values[name] = value
        for name in self._FIELDS:
            if name not in values:
                if name not in self._DEFAULTS:
                    raise TypeError(f"{cls}() missing required argument {name!r}")
                values[name] = self._DEFAULTS[name]
        return values

    def _message(self) -> str:
        raise NotImplementedError


class PipelineSetupError(_GunpowderForm):
    """A pipeline could not be built (``setup`` of a node failed).

    Args:

        provider (BatchProvider): gunpowder's form: the node whose ``setup``
            failed; the message is "Exception in {name} while calling
            setup()". Or a message string.
    """

    _FIELDS = ("provider",)
    provider: Any

    def _message(self) -> str:
        return f"Exception in {_node_name(self.provider)} while calling setup()"


class PipelineTeardownError(_GunpowderForm):
    """A node's ``teardown`` failed.

    Args:

        provider (BatchProvider): gunpowder's form: the node whose
            ``teardown`` failed. Or a message string.
    """

    _FIELDS = ("provider",)
    provider: Any

    def _message(self) -> str:
        return f"Exception in {_node_name(self.provider)} while calling teardown()"


class PipelineRequestError(_GunpowderForm):
    """A request to a pipeline failed.

    Args:

        pipeline (Pipeline): gunpowder's form: the pipeline asked.

        request (BatchRequest): The request it failed to serve.

        original_traceback (list of str, optional): The formatted traceback
            of the original exception, put before the message.
    """

    _FIELDS: tuple[str, ...] = ("pipeline", "request", "original_traceback")
    _DEFAULTS = {"original_traceback": None}
    pipeline: Any
    request: Any
    original_traceback: Any

    def _message(self) -> str:
        return (
            _traceback_text(self.original_traceback)
            + f"Exception in pipeline:\n{self.pipeline}\nwhile trying to process request\n{self.request}"
        )


class BatchRequestError(PipelineRequestError):
    """A request a node cannot serve: a missing key, a ROI outside what is
    provided, a ROI not on the voxel grid. Raised while planning, before any
    task runs.

    Unlike gunpowder's, it is a ``PipelineRequestError`` too, so that the
    ``except gp.PipelineRequestError`` written around ``request_batch``
    catches it wherever the engine raises it.

    Args:

        provider (BatchProvider): gunpowder's form: the node that failed.

        request (BatchRequest): The request it failed to serve.

        batch (Batch): What it had returned so far (or ``None``).

        original_traceback (list of str, optional): The formatted traceback
            of the original exception, put after the message.
    """

    _FIELDS = ("provider", "request", "batch", "original_traceback")
    _DEFAULTS = {"original_traceback": None}
    provider: Any
    batch: Any

    def _message(self) -> str:
        return (
            f"Exception in {_node_name(self.provider)} while processing request{self.request}"
            f"Batch returned so far:\n{self.batch}\n\n{_traceback_text(self.original_traceback)}"
        )


class BatchFilterError(PipelineRequestError):
    """A ``BatchFilter`` misbehaved (e.g. ``prepare`` returned a wrong type).

    Args:

        batch_filter (BatchFilter): gunpowder's form: the filter.

        msg (str): What it did wrong; the message is "Error in {name}:
            {msg}". Or a single message string.
    """

    _FIELDS = ("batch_filter", "msg")
    batch_filter: Any
    msg: Any

    def _message(self) -> str:
        return f"Error in {_node_name(self.batch_filter)}: {self.msg}"


class PipelineConfigError(PipelineSetupError):
    """Wrong arguments given to a node."""


class SpecError(DpowderError, TypeError, AssertionError):
    """A key or spec of the wrong type put into a ``ProviderSpec`` or
    ``BatchRequest``. A ``TypeError``, and an ``AssertionError`` too, which
    is what gunpowder raises there."""


class DataError(DpowderError, ValueError):
    """Data that a node cannot work with: a wrong shape, dtype or value
    (also a ``ValueError``, which gunpowder raises in these places)."""


class InputTypeError(DpowderError, TypeError):
    """An argument or datum of the wrong type (also a ``TypeError``)."""


class ArgumentError(DpowderError, ValueError):
    """An argument with a value a function or node cannot take (also a
    ``ValueError``): a wrong option name, format or combination."""


class BlockwiseError(PipelineRequestError):
    """Blocks of a blockwise map (``Scan``, ``DaisyRequestBlocks``,
    ``run_blockwise``) kept failing after their retries; ``failures`` lists
    them (``engine.blockmap.BlockFailure``: index, ROIs, error, traceback,
    attempts), and every other block finished."""

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)

    def __reduce__(self):
        return (type(self), (str(self), self.failures))


class DataSourceError(DataError):
    """A data file or dataset cannot be read as asked (missing, corrupt,
    missing metadata)."""


class WriteError(DpowderError):
    """A write that would leave data torn or outside its dataset."""
