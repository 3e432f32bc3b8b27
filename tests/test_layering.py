"""The import directions of docs/engine.md ("Packages and import
directions"): the data model imports nothing above it, the engine imports no
node class (it asks nodes through their methods), and daisy's API
(dpowder/blockwise) uses only the engine's public names."""

import ast
import pathlib

import dpowder

PACKAGE = pathlib.Path(dpowder.__file__).parent

DATA_MODEL = [
    "coordinate", "roi", "keys", "array", "array_spec", "graph", "graph_spec",
    "batch", "batch_request", "provider_spec", "errors", "profiling", "spec_base",
]  # fmt: skip


def _imports(path):
    """``(module, names, line)`` of every import in ``path``, as absolute
    dotted module names inside dpowder."""
    package = ".".join(("dpowder", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno


def _violations(paths, forbidden, allowed=()):
    found = []
    for path in paths:
        for module, _names, line in _imports(path):
            if module in allowed:
                continue
            for prefix in forbidden:
                if module == prefix or module.startswith(prefix + "."):
                    found.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    return found


def test_the_data_model_imports_nothing_above_it():
    paths = [PACKAGE / f"{name}.py" for name in DATA_MODEL]
    above = ["dpowder.nodes", "dpowder.engine", "dpowder.io", "dpowder.pipeline", "dpowder.blockwise"]
    # the to_xarray/from_xarray methods delegate to the conversion module,
    # imported when called (xarray is not imported with dpowder)
    assert _violations(paths, above, allowed={"dpowder.io.xarray"}) == []


def test_the_engine_imports_no_node_class():
    assert _violations(sorted((PACKAGE / "engine").glob("*.py")), ["dpowder.nodes"]) == []


def test_the_engine_imports_neither_daisys_api_nor_the_frameworks():
    forbidden = ["dpowder.blockwise", "dpowder.torch", "dpowder.jax", "dpowder.tensorflow", "dpowder.contrib"]
    assert _violations(sorted((PACKAGE / "engine").glob("*.py")), forbidden) == []


def test_daisys_api_uses_only_the_engines_public_names():
    found = []
    for path in sorted((PACKAGE / "blockwise").glob("*.py")):
        engine_modules = set()
        for module, names, line in _imports(path):
            if module.startswith("dpowder.engine"):
                found += [f"{path.name}:{line} imports {module}.{n}" for n in names if n.startswith("_")]
                if module == "dpowder.engine":
                    engine_modules.update(names)
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in engine_modules
                and node.attr.startswith("_")
            ):
                found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert found == []


def test_import_dpowder_loads_no_heavy_optional_module():
    """Every process of a stream's cluster imports dpowder: what only some
    pipelines need (HDF5, zarr, scipy's filters, graphs, xarray, the
    frameworks) is imported on first use."""
    import subprocess
    import sys

    heavy = ["h5py", "networkx", "xarray", "pandas", "skimage", "torch", "jax", "tensorflow", "zarr", "scipy.ndimage"]
    code = f"import sys, dpowder; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


ZARR_AFTER_IMPORT = """
import sys
import numpy as np
import dpowder as gp
assert "zarr" not in sys.modules
import zarr
root = zarr.open_group(sys.argv[1], mode="w", zarr_format=2)
root.create_array("raw", shape=(4, 4), dtype="uint8")[:] = np.arange(16).reshape(4, 4)
raw = gp.ArrayKey("RAW")
source = gp.ZarrSource(sys.argv[1], {raw: "raw"})
with gp.build(source):
    batch = source.request_batch(gp.BatchRequest({raw: gp.ArraySpec(roi=gp.Roi((1, 2), (2, 2)))}))
print(batch[raw].data.tolist())
"""


def test_zarr_nodes_import_zarr_when_set_up(tmp_path):
    """The zarr nodes reach dpowder.io.zarr through a lazy module: a flat
    script that imports dpowder first, zarr later, reads as before."""
    import subprocess
    import sys

    path = str(tmp_path / "c.zarr")
    out = subprocess.run([sys.executable, "-c", ZARR_AFTER_IMPORT, path], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[[6, 7], [10, 11]]"
