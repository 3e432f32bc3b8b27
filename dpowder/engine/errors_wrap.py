"""gunpowder's error wrapping, at the user-facing ``request_batch`` entries.

In gunpowder any exception raised while a request is served (an assertion,
a check, ``prepare``, ``process``, ``provide``) reaches the caller as a
``BatchRequestError`` (``node.request_batch``) or a ``PipelineRequestError``
(``Pipeline.request_batch``). dpowder raises an error that is an instance of
both the wrapper class and the original exception's class (a cached
subclass named e.g. ``BatchRequestError[ValueError]``), so
``except gp.BatchRequestError`` (gunpowder code) and ``except ValueError``
(code written against the original) both catch it. The original is the
``__cause__``; the message starts with it and names the node and request;
gunpowder's attributes (``provider``/``pipeline``, ``request``, ``batch``,
``original_traceback``) are set.

Errors that already are a ``PipelineRequestError`` (every request error
dpowder raises itself, and errors wrapped by an inner entry) pass through
unchanged. Nothing is wrapped inside tasks (``tasks.IN_TASK``): blockwise
retries treat ``DpowderError`` as a user error that fails again, and a
transient error inside a block must stay retryable.
"""

import contextlib
import contextvars
import traceback
from typing import Any, Callable, Iterator

from ..errors import BatchRequestError, PipelineRequestError
from . import tasks

# (wrapper class, original class) -> the class that is both
_CLASSES: dict = {}

# True while a node's setup() runs: a request it makes (RandomLocation
# reading its whole mask) fails as the setup does, as a PipelineSetupError
SETTING_UP: contextvars.ContextVar[bool] = contextvars.ContextVar("dpowder_setting_up", default=False)


@contextlib.contextmanager
def setting_up() -> Iterator[None]:
    """Around a node's ``setup()``: its requests are not wrapped."""
    token = SETTING_UP.set(True)
    try:
        yield
    finally:
        SETTING_UP.reset(token)


def _rebuild(wrapper: type, original: type, message: str) -> BaseException:
    return _make(_wrapped_class(wrapper, original), wrapper, message)


def _reduce(self):
    # the class is made at run time: pickle by how to make it again (the
    # node and request attributes stay behind)
    return (_rebuild, (self._dp_wrapper, self._dp_original, str(self)))


def _wrapped_class(wrapper: type, original: type) -> type:
    key = (wrapper, original)
    cls = _CLASSES.get(key)
    if cls is None:
        name = f"{wrapper.__name__}[{original.__name__}]"
        namespace = {
            "__module__": wrapper.__module__,
            "__qualname__": name,
            "__doc__": f"A {wrapper.__name__} raised for a {original.__name__}; an instance of both.",
            # the message as given, not e.g. KeyError's repr of it
            "__str__": BaseException.__str__,
            "__reduce__": _reduce,
            "_dp_wrapper": wrapper,
            "_dp_original": original,
        }
        try:
            cls = type(name, (wrapper, original), namespace)
        except TypeError:  # a class that cannot be a base (layout, final)
            cls = wrapper
        _CLASSES[key] = cls
    return cls


def _make(cls: type[BaseException], wrapper: type[BaseException], message: str) -> BaseException:
    try:
        return cls(message)
    except Exception:
        # the original class's __init__ wants other arguments
        # (UnicodeDecodeError, user exceptions): make it without calling it
        try:
            error = cls.__new__(cls, message)
            BaseException.__init__(error, message)
            return error
        except Exception:
            return wrapper(message)


def _set(error: BaseException, **attributes: Any) -> None:
    for name, value in attributes.items():
        try:
            setattr(error, name, value)
        except AttributeError:  # a read-only property of the original class
            pass


def _failed_in(original: BaseException, node: Any) -> str:
    """The description of the node the original was raised in (marked by
    the engine), else of the node asked."""
    marked = getattr(original, "_dp_failed_in", None)
    if marked is not None:
        return marked
    describe = getattr(node, "describe", None)
    return describe() if callable(describe) else str(node)


def wrap(original: BaseException, wrapper: type, message: str, **attributes: Any) -> BaseException:
    """An instance of ``wrapper`` and of ``type(original)`` with
    ``message``, ``attributes`` and ``original``'s notes, caused by
    ``original``."""
    error = _make(_wrapped_class(wrapper, type(original)), wrapper, message)
    if error.__class__ is not wrapper:
        # node/key/roi/provided of dpowder errors (None unless known)
        for name in ("node", "key", "roi", "provided"):
            if not hasattr(error, name):
                _set(error, **{name: None})
    _set(error, **attributes)
    for note in getattr(original, "__notes__", ()):
        error.add_note(note)
    error.__cause__ = original
    error.__suppress_context__ = True
    return error


def _original_text(original: BaseException) -> str:
    return f"{type(original).__name__}: {original}"


def batch_request_error(original: BaseException, node: Any, request: Any) -> BaseException:
    """gunpowder's ``BatchRequestError(node, request, None, traceback)`` for
    ``original``, raised while ``node`` served ``request``."""
    lines = traceback.format_exception(original)
    message = (
        f"{_original_text(original)}\nException in {_failed_in(original, node)} while processing request "
        f"{request!r}\n\n{''.join(lines)}"
    )
    return wrap(
        original,
        BatchRequestError,
        message,
        provider=node,
        request=request,
        batch=None,
        original_traceback=lines,
        node=node,
    )


def pipeline_request_error(original: BaseException, pipeline: Any, request: Any) -> BaseException:
    """gunpowder's ``PipelineRequestError(pipeline, request, traceback)`` for
    ``original``."""
    lines = traceback.format_exception(original)
    message = (
        f"{_original_text(original)}\nException in pipeline:\n{pipeline}\nwhile trying to process "
        f"request {request!r}\n\n{''.join(lines)}"
    )
    return wrap(
        original,
        PipelineRequestError,
        message,
        pipeline=pipeline,
        request=request,
        original_traceback=lines,
    )


def _remove_placeholders(request: Any) -> None:
    # gunpowder's request_batch leaves the caller's request without them
    remove = getattr(request, "remove_placeholders", None)
    if remove is not None:
        remove()


def serve(node: Any, request: Any, run: Callable) -> Any:
    """``node.request_batch(request)`` done by ``run(node, request)``, as
    gunpowder's: an exception becomes a ``BatchRequestError`` (outside
    tasks), and ``request`` loses its placeholders. Tasks run in this
    thread meanwhile write back the node state they change
    (``tasks.PERSIST``)."""
    if tasks.IN_TASK.get() or SETTING_UP.get():
        batch = run(node, request)
    else:
        token = tasks.persisting()
        try:
            batch = run(node, request)
        except PipelineRequestError:
            raise
        except Exception as e:
            raise batch_request_error(e, node, request) from e
        finally:
            tasks.PERSIST.reset(token)
    _remove_placeholders(request)
    return batch


def serve_pipeline(pipeline: Any, request: Any, run: Callable) -> Any:
    """``pipeline.request_batch(request)`` done by ``run(request)``: an
    exception not yet a ``PipelineRequestError`` becomes one (outside
    tasks)."""
    if tasks.IN_TASK.get() or SETTING_UP.get():
        return run(request)
    try:
        return run(request)
    except PipelineRequestError:
        raise
    except Exception as e:
        raise pipeline_request_error(e, pipeline, request) from e
