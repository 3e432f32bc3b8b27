"""dpowder raises its own errors: every deliberate ``ValueError`` or
``TypeError`` is a ``DpowderError`` subclass that is also one
(``ArgumentError``, ``DataError``, ``InputTypeError``, ...), so that the
blockwise retry rule (user errors are not retried) and callers catching
``DpowderError`` see them all."""

import ast
import pathlib

import pytest

import dpowder as gp

PACKAGE = pathlib.Path(gp.__file__).parent

# errors.py emulates Python's own signature errors for gunpowder's
# constructor forms (a TypeError, as a wrong call is)
ALLOWED = {PACKAGE / "errors.py"}


def _bare_raises(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in ("ValueError", "TypeError"):
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: raise {func.id}"


def test_no_bare_value_or_type_errors_are_raised():
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path not in ALLOWED for hit in _bare_raises(path)]
    assert found == []


@pytest.mark.parametrize(
    "error, bases",
    [
        (gp.ArgumentError, (ValueError,)),
        (gp.DataError, (ValueError,)),
        (gp.DataSourceError, (ValueError,)),
        (gp.InputTypeError, (TypeError,)),
    ],
)
def test_the_typed_errors_are_also_the_builtin_ones(error, bases):
    assert issubclass(error, gp.DpowderError)
    for base in bases:
        assert issubclass(error, base)


def test_a_bad_option_is_an_argument_error_naming_it():
    from dpowder.io.zarr import compressors

    with pytest.raises(gp.ArgumentError, match="compression_type 'lz4hc' is not available for zarr"):
        compressors("lz4hc", zarr_format=3)
    with pytest.raises(ValueError, match="needs zarr format 3"):
        compressors("zstd", zarr_format=2, checksum=True)


def test_every_exception_class_of_dpowder_is_a_dpowder_error():
    import importlib
    import inspect
    import pkgutil

    frameworks = (".torch", ".jax", ".tensorflow")
    found = []
    for info in pkgutil.walk_packages(gp.__path__, "dpowder."):
        if any(f in info.name for f in frameworks):
            continue  # they import their framework
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and not issubclass(value, Warning)
                and value.__module__ == module.__name__
                and not issubclass(value, gp.DpowderError)
            ):
                found.append(f"{module.__name__}.{name}")
    assert found == []
