"""``dpowder predict``: a zarr volume through a torch model (a factory plus
a checkpoint, or TorchScript) into a zarr dataset with voxel size and
offset, equal to one whole-volume forward pass; resume processes only the
blocks not done; misaligned existing output chunks are refused. On the
command line: --voxel-size/--offset for volumes without metadata, a model
module in the current directory, errors naming the option, checkpoints that
are full pickles only with --trust-checkpoint, and two local workers quiet,
shut down cleanly, with a final summary line."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
zarr = pytest.importorskip("zarr")

from dpowder.cli import main  # noqa: E402
from tests.torch.test_predict import network  # noqa: E402

SHAPE = (44, 44, 44)


def make_model():
    """The factory the command imports (random weights: the checkpoint
    gives the real ones)."""
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 3))


@pytest.fixture
def setup(tmp_path):
    raw = np.random.default_rng(2).integers(0, 256, SHAPE).astype(np.float32)
    root = zarr.open_group(str(tmp_path / "in.zarr"), mode="w", zarr_format=2)
    array = root.create_array("raw", shape=SHAPE, chunks=(20, 20, 20), dtype=np.float32)
    array[:] = raw
    array.attrs.update(resolution=[4, 2, 2], offset=[40, 0, 0])
    checkpoint = str(tmp_path / "model.pt")
    torch.save(network().state_dict(), checkpoint)
    with torch.inference_mode():
        whole = network()(torch.as_tensor(raw)[None, None])[0, 0].numpy()
    return tmp_path, checkpoint, whole


def assert_matches_whole(out, whole):
    """A blockwise prediction against the model run on the whole volume:
    equal within float32 rounding. Not bit for bit: oneDNN picks its
    convolution kernel by input shape and CPU (on an AVX-512 machine a 14^3
    block and the 24^3 volume sum the same products in different orders, up
    to ~4e-6 apart on values of ~20); a misplaced or missing block is off by
    whole units."""
    np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-5 * float(np.abs(whole).max()))


def args(tmp_path, *extra, output_shape=(20, 20, 20)):
    return [
        "predict", "--input", str(tmp_path / "in.zarr"), "--input-dataset", "raw",
        "--input-shape", *[str(s + 4) for s in output_shape], "--output-shape", *[str(s) for s in output_shape],
        "--output", str(tmp_path / "out.zarr"), "--output-dataset", "pred", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_predict_command_writes_whole_volume_result_with_metadata(setup):
    tmp_path, checkpoint, whole = setup
    assert main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", checkpoint)) == 0
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"]
    assert tuple(out.attrs["resolution"]) == (4, 2, 2) and tuple(out.attrs["offset"]) == (48, 4, 4)
    assert_matches_whole(out[:], whole)  # 40^3 valid voxels: 2^3 blocks


def test_torchscript_model_and_resume_processes_only_blocks_not_done(setup):
    tmp_path, _, whole = setup
    script = str(tmp_path / "model.ts")
    torch.jit.save(torch.jit.script(network()), script)
    assert main(args(tmp_path, "--torchscript", script)) == 0
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r+")["pred"]
    assert_matches_whole(out[:], whole)
    # wipe the output and forget 3 of the 8 blocks: a rerun redoes only those
    out[:] = 0
    markers = str(tmp_path / "out.zarr.done" / "pred")
    forgotten = sorted(os.listdir(markers))[:3]
    for name in forgotten:
        os.remove(os.path.join(markers, name))
    assert main(args(tmp_path, "--torchscript", script)) == 0
    written = zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"][:]
    assert np.count_nonzero(written.reshape(2, 20, 2, 20, 2, 20).any(axis=(1, 3, 5))) == 3
    assert main(args(tmp_path, "--torchscript", script, "--no-resume")) == 0
    assert_matches_whole(zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"][:], whole)


def test_output_with_misaligned_chunks_is_refused(setup, capsys):
    tmp_path, checkpoint, _ = setup
    assert main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", checkpoint)) == 0
    code = main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", checkpoint, output_shape=(12, 12, 12)))
    assert code == 2
    assert "exists with chunks (20, 20, 20)" in capsys.readouterr().err


MYMODEL = '''
import torch


def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv3d(4, 1, 3))


class Picky(torch.nn.Module):
    """Fails on any block with a voxel above 0 (the probe's zeros pass)."""

    def __init__(self):
        super().__init__()
        self.net = make()

    def forward(self, x):
        if float(x.max()) > 0:
            raise ValueError("no bright voxels, please")
        return self.net(x)
'''


@pytest.fixture
def bare_volume(tmp_path, monkeypatch):
    """A zarr volume without voxel size or offset metadata, and a model
    module ``mymodel.py`` in the current directory (tmp_path)."""
    raw = np.random.default_rng(3).integers(0, 256, (24, 24, 24)).astype(np.float32)
    root = zarr.open_group(str(tmp_path / "bare.zarr"), mode="w", zarr_format=2)
    root.create_array("raw", shape=raw.shape, chunks=(12, 12, 12), dtype=np.float32)[:] = raw
    (tmp_path / "mymodel.py").write_text(MYMODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "mymodel", raising=False)
    namespace = {}
    exec(MYMODEL, namespace)
    with torch.inference_mode():
        whole = namespace["make"]()(torch.as_tensor(raw)[None, None])[0, 0].numpy()
    return tmp_path, whole


def bare_args(*extra):
    return [
        "predict", "--input", "bare.zarr", "--input-dataset", "raw", "--model", "mymodel:make",
        "--input-shape", "14", "14", "14", "--output-shape", "10", "10", "10",
        "--output", "out.zarr", "--output-dataset", "pred", "--device", "cpu", *extra,
    ]  # fmt: skip


def test_voxel_size_and_offset_options_and_a_model_module_in_the_current_directory(bare_volume, capsys):
    tmp_path, whole = bare_volume
    assert main(bare_args("--voxel-size", "4", "2", "2", "--offset", "40", "0", "0")) == 0
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"]
    # 2 voxels of context per side: the output starts 2 voxels in
    assert tuple(out.attrs["resolution"]) == (4, 2, 2) and tuple(out.attrs["offset"]) == (48, 4, 4)
    assert_matches_whole(out[:], whole)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("dpowder predict: wrote pred (20, 20, 20) float32 to out.zarr: 8 blocks, 8,000 voxels in ")
    assert last.endswith("voxels/s, in-process)")


def test_a_volume_without_voxel_size_names_the_option(bare_volume, capsys):
    assert main(bare_args("--zarr-format", "3")) == 0
    err = capsys.readouterr().err
    assert "raw in bare.zarr has no voxel size metadata: using (1, 1, 1); pass --voxel-size" in err
    assert "array_specs" not in err  # the Python API's advice is not given on a command line
    assert zarr.open_group(str(bare_volume[0] / "out.zarr"), mode="r").metadata.zarr_format == 3


def test_errors_name_the_option_not_a_source_line(bare_volume, capsys):
    # every block fails in the model: the report names the node by the option that made it
    code = main(bare_args("--model", "mymodel:Picky", "--max-retries", "0"))
    err = capsys.readouterr().err
    assert code == 2
    assert "ValueError: no bright voxels, please" in err
    assert "in Predict (from --model/--torchscript/--checkpoint)" in err and "created at" not in err
    assert main(bare_args("--model", "mymodel:nothing")) == 2
    assert "--model mymodel:nothing: " in capsys.readouterr().err
    assert main(bare_args("--voxel-size", "4", "2")) == 2
    assert "--voxel-size 4 2: raw has 3 spatial axes" in capsys.readouterr().err


def test_a_checkpoint_carrying_objects_needs_trust_checkpoint(setup, capsys):
    tmp_path, _, whole = setup
    evil = str(tmp_path / "evil.pt")
    torch.save({"model_state_dict": network().state_dict(), "extra": Extra()}, evil)
    code = main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", evil))
    err = capsys.readouterr().err
    assert code == 2 and evil in err and "--trust-checkpoint" in err
    assert main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", evil, "--trust-checkpoint")) == 0
    assert_matches_whole(zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"][:], whole)


class Extra:
    """Not a tensor: torch's weights-only loader refuses it."""


def test_two_local_workers_run_quietly_shut_down_cleanly_and_end_with_a_summary(bare_volume):
    """The console script as a user runs it: exit 0, no traceback (e.g.
    CommClosedError at shutdown), none of distributed's INFO lines, and a
    last line saying what was written, where and how fast."""
    tmp_path, whole = bare_volume
    script = os.path.join(os.path.dirname(sys.executable), "dpowder")
    done = subprocess.run(
        [script, *bare_args("--voxel-size", "4", "2", "2", "--workers", "2")],
        cwd=tmp_path, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "CommClosedError" not in done.stderr
    assert "distributed." not in done.stderr and "8787" not in done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(
        r"dpowder predict: wrote pred \(20, 20, 20\) float32 to out.zarr: 8 blocks, 8,000 voxels in [\d.]+ s "
        r"\([\d,]+ voxels/s, 2 local workers\)", last,
    ), last  # fmt: skip
    assert_matches_whole(zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"][:], whole)
