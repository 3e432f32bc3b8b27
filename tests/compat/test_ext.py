"""``gp.ext`` as ``gunpowder.ext``: every name is the module or a
``NoSuchModule`` that re-raises the import error on attribute access;
heavy frameworks are imported only when first asked for; ``ZarrFile``
opens a zarr container as a context manager, path-likes included."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dpowder as gp

NAMES = [
    "dvision", "h5py", "pyklb", "tensorflow", "torch", "tensorboardX", "malis", "augment",
    "zarr", "ZarrFile", "daisy", "jax", "jnp", "haiku", "optax", "NoSuchModule",
]  # fmt: skip


def test_ext_is_reachable_from_the_package_and_as_a_module():
    import dpowder.ext

    assert gp.ext is dpowder.ext
    from dpowder.ext import NoSuchModule, ZarrFile, h5py

    assert NoSuchModule is gp.ext.NoSuchModule
    assert ZarrFile is gp.ext.ZarrFile
    assert h5py is sys.modules["h5py"]
    # (not imported here: tensorflow alone takes ~20 s on a loaded machine)
    assert set(NAMES) <= set(dir(gp.ext))
    assert set(NAMES) - {"NoSuchModule"} <= set(gp.ext.__all__)


def test_a_missing_module_is_a_no_such_module_that_reraises_its_import_error():
    missing = gp.ext.dvision
    assert isinstance(missing, gp.ext.NoSuchModule)
    with pytest.raises(ImportError, match="dvision"):
        missing.DvidSource
    with pytest.raises(ImportError, match="dvision"):
        missing.anything_else
    # still a plain object for Python's own protocols
    assert repr(pickle.loads(pickle.dumps(missing))) == "NoSuchModule('dvision')"
    assert not hasattr(missing, "__deepcopy__")


def test_no_such_module_keeps_the_error_being_handled():
    try:
        raise ImportError("libfoo.so: cannot open shared object file")
    except ImportError:
        stand_in = gp.ext.NoSuchModule("foo")
    with pytest.raises(ImportError, match="libfoo.so"):
        stand_in.bar


def test_installed_modules_are_the_modules_themselves():
    import h5py
    import zarr

    assert gp.ext.h5py is h5py
    assert gp.ext.zarr is zarr
    assert gp.ext.jax is sys.modules["jax"] and gp.ext.jnp is sys.modules["jax.numpy"]


def test_frameworks_are_imported_on_first_access_only():
    code = textwrap.dedent(
        """
        import sys
        import dpowder as gp
        heavy = ("torch", "tensorflow", "jax")
        print(sorted(m for m in heavy if m in sys.modules))
        gp.ext.torch
        print(sorted(m for m in heavy if m in sys.modules))
        print(isinstance(gp.ext.torch, gp.ext.NoSuchModule))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines == ["[]", "['torch']", "False"]


@pytest.mark.parametrize("kind", ["str", "pathlib", "py.path"])
def test_zarr_file_opens_a_container_as_a_context_manager(tmp_path, kind):
    path = tmp_path / "data.zarr"
    if kind == "str":
        store = str(path)
    elif kind == "pathlib":
        store = path
    else:
        import py

        store = py.path.local(str(path))
    with gp.ext.ZarrFile(store, mode="w") as f:
        f.create_array("raw", shape=(2, 3), dtype="int32")
        f["raw"][:] = np.arange(6).reshape(2, 3)
    with gp.ext.ZarrFile(store, mode="r") as f:
        np.testing.assert_array_equal(f["raw"][:], np.arange(6).reshape(2, 3))
    assert os.path.isdir(path)


def test_the_jax_extra_brings_haiku_and_optax():
    """gunpowder code that checks only for jax then uses haiku and optax:
    the jax extra installs both (the Makefile installs the extra)."""
    pytest.importorskip("jax")
    from dpowder.ext import NoSuchModule

    assert not isinstance(gp.ext.haiku, NoSuchModule) and hasattr(gp.ext.haiku, "transform")
    assert not isinstance(gp.ext.optax, NoSuchModule) and hasattr(gp.ext.optax, "adam")
