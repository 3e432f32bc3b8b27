"""The version is written once, as ``dpowder.__version__``: pyproject.toml
reads it from there (setuptools' dynamic version), and the installed
metadata agrees."""

import importlib.metadata
import pathlib
import re
import tomllib

import dpowder as gp

PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_pyproject_reads_the_version_from_dpowder():
    project = tomllib.loads(PYPROJECT.read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dpowder.__version__"}


def test_version_is_a_release_number_the_metadata_agrees_with():
    assert re.fullmatch(r"\d+\.\d+\.\d+", gp.__version__)
    assert importlib.metadata.version("dpowder") == gp.__version__
