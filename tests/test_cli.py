"""``dpowder predict``: a zarr volume through a torch model (a factory plus
a checkpoint, or TorchScript) into a zarr dataset with voxel size and
offset, equal to one whole-volume forward pass; resume processes only the
blocks not done; misaligned existing output chunks are refused."""

import os

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
    np.testing.assert_array_equal(out[:], whole)  # 40^3 valid voxels: 2^3 blocks


def test_torchscript_model_and_resume_processes_only_blocks_not_done(setup):
    tmp_path, _, whole = setup
    script = str(tmp_path / "model.ts")
    torch.jit.save(torch.jit.script(network()), script)
    assert main(args(tmp_path, "--torchscript", script)) == 0
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r+")["pred"]
    np.testing.assert_array_equal(out[:], whole)
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
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "out.zarr"), mode="r")["pred"][:], whole)


def test_output_with_misaligned_chunks_is_refused(setup, capsys):
    tmp_path, checkpoint, _ = setup
    assert main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", checkpoint)) == 0
    code = main(args(tmp_path, "--model", "tests.test_cli:make_model", "--checkpoint", checkpoint, output_shape=(12, 12, 12)))
    assert code == 2
    assert "exists with chunks (20, 20, 20)" in capsys.readouterr().err
