"""Untrusted checkpoints run no code: a torch checkpoint carrying a pickled
object is refused by default by ``torch.Predict`` and ``torch.Train``
(``UntrustedCheckpointError`` naming the file and the opt-in) and loads with
``trust_checkpoint=True``; gunpowder-style dicts of tensors load by default.
jax parameters are written as ``.npz`` (no code) and round-trip exactly; a
pickled jax checkpoint loads only when trusted.

Limits: refusing is torch's ``weights_only`` unpickler's decision (what it
allows is torch's list of safe types), and ours for jax (anything that is
not our ``.npz`` layout)."""

import pickle
from collections import namedtuple

import numpy as np
import pytest

import dpowder as gp
from dpowder.checkpoints import UntrustedCheckpointError, load_jax_params, save_jax_params
from dpowder.errors import DataSourceError

torch = pytest.importorskip("torch")

RAW = gp.ArrayKey("CKPT_RAW")
PRED = gp.ArrayKey("CKPT_PRED")

RAN = []
State = namedtuple("State", ["count"])


def _run_code(tag):
    """What unpickling the payload calls: the code a checkpoint can carry."""
    RAN.append(tag)
    return Payload()


class Payload:
    def __reduce__(self):
        return _run_code, ("payload ran",)


@pytest.fixture(autouse=True)
def nothing_ran():
    RAN.clear()
    yield


def network():
    torch.manual_seed(3)
    return torch.nn.Conv3d(1, 1, 1)


def predict(checkpoint, **kwargs):
    data = np.arange(64, dtype=np.float32).reshape(1, 1, 4, 4, 4)
    source = gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)), voxel_size=(1, 1, 1))))
    node = gp.torch.Predict(
        network(), inputs={0: RAW}, outputs={0: PRED}, checkpoint=checkpoint, device="cpu", **kwargs
    )
    request = gp.BatchRequest()
    request[RAW] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)))
    request[PRED] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)))
    with gp.build(source + node, scheduler="sync") as p:
        return p.request_batch(request)[PRED].data, data


def trained_state():
    net = torch.nn.Conv3d(1, 1, 1)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.bias.fill_(1.0)
    return net.state_dict()


def test_predict_refuses_a_checkpoint_carrying_an_object_by_default(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": trained_state(), "extra": Payload()}, path)
    with pytest.raises(UntrustedCheckpointError) as error:
        predict(str(path))
    message = str(error.value)
    assert str(path) in message and "trust_checkpoint=True" in message
    assert "tests.test_checkpoints._run_code" in message  # the global it would call
    assert isinstance(error.value, DataSourceError)
    assert RAN == []  # nothing in the file ran


def test_predict_refuses_it_at_build_time_before_any_block_runs(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": trained_state(), "extra": Payload()}, path)
    source = gp.ArraySource(
        RAW,
        gp.Array(
            np.zeros((1, 1, 4, 4, 4), np.float32), gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 4, 4)), voxel_size=(1, 1, 1))
        ),
    )
    node = gp.torch.Predict(network(), inputs={0: RAW}, outputs={0: PRED}, checkpoint=str(path), device="cpu")
    with pytest.raises(UntrustedCheckpointError, match="trust_checkpoint=True"):
        with gp.build(source + node):
            pass
    assert RAN == []


def test_predict_loads_a_checkpoint_carrying_an_object_when_trusted(tmp_path):
    path = tmp_path / "trusted.pt"
    torch.save({"model_state_dict": trained_state(), "extra": Payload()}, path)
    out, data = predict(str(path), trust_checkpoint=True)
    assert RAN == ["payload ran"]
    np.testing.assert_array_equal(out, 2 * data + 1)


def test_predict_loads_a_plain_state_dict_by_default(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(trained_state(), path)
    out, data = predict(str(path))
    np.testing.assert_array_equal(out, 2 * data + 1)


def make_train(tmp_path, **kwargs):
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    return model, optimizer, gp.torch.Train(
        model, torch.nn.MSELoss(), optimizer, inputs={0: RAW}, outputs={0: PRED}, loss_inputs={0: PRED, 1: RAW},
        checkpoint_basename=str(tmp_path / "model"), device="cpu", **kwargs,
    )  # fmt: skip


def gunpowder_checkpoint(tmp_path, **extra):
    """What gunpowder's torch Train writes: the model's and the optimizer's
    state dicts (after one Adam step, so the optimizer has tensors)."""
    model = torch.nn.Conv3d(1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.ones(1, 1, 2, 2, 2)).sum().backward()
    optimizer.step()
    path = tmp_path / "model_checkpoint_7"
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(), **extra}, path)
    return path, model


def source():
    data = np.ones((1, 1, 2, 2, 2), dtype=np.float32)
    return gp.ArraySource(RAW, gp.Array(data, gp.ArraySpec(roi=gp.Roi((0, 0, 0), (2, 2, 2)), voxel_size=(1, 1, 1))))


def test_train_resumes_from_a_gunpowder_checkpoint_by_default(tmp_path):
    _, saved = gunpowder_checkpoint(tmp_path)
    model, optimizer, train = make_train(tmp_path)
    with gp.build(source() + train):
        assert train.iteration == 7
        torch.testing.assert_close(model.weight, saved.weight)
        assert optimizer.state_dict()["state"][0]["step"] == 1


def test_train_refuses_a_checkpoint_carrying_an_object_unless_trusted(tmp_path):
    path, saved = gunpowder_checkpoint(tmp_path, extra=Payload())
    _, _, train = make_train(tmp_path)
    with pytest.raises(UntrustedCheckpointError, match="trust_checkpoint=True") as error:
        with gp.build(source() + train):
            pass
    assert str(path) in str(error.value) and RAN == []
    model, _, train = make_train(tmp_path, trust_checkpoint=True)
    with gp.build(source() + train):
        assert train.iteration == 7 and RAN == ["payload ran"]
        torch.testing.assert_close(model.weight, saved.weight)


def test_jax_parameters_are_npz_and_round_trip_exactly(tmp_path):
    jax = pytest.importorskip("jax")
    params = {"w": np.float32(1.5), "layers": [{"k": np.arange(6.0).reshape(2, 3)}, (np.int64(2**40 + 1), None)]}
    path = tmp_path / "params"
    save_jax_params(jax, path, params)
    with np.load(path, allow_pickle=False) as archive:  # a zip of arrays: no code
        assert "__structure__" in archive.files
    loaded = load_jax_params(path)
    assert set(loaded) == {"w", "layers"} and loaded["w"] == np.float32(1.5)
    np.testing.assert_array_equal(loaded["layers"][0]["k"], np.arange(6.0).reshape(2, 3))
    assert (
        isinstance(loaded["layers"][1], tuple)
        and loaded["layers"][1][0] == 2**40 + 1
        and loaded["layers"][1][1] is None
    )


def test_pickled_jax_parameters_load_only_when_trusted(tmp_path):
    path = tmp_path / "old_checkpoint"
    with open(path, "wb") as f:
        pickle.dump({"w": np.float32(2.0), "extra": Payload()}, f)
    with pytest.raises(UntrustedCheckpointError, match="trust_checkpoint=True") as error:
        load_jax_params(path)
    assert str(path) in str(error.value) and RAN == []
    assert load_jax_params(path, trust_checkpoint=True)["w"] == np.float32(2.0)
    assert RAN == ["payload ran"]


def test_jax_parameters_with_custom_nodes_are_pickled_with_a_warning(tmp_path, caplog):
    jax = pytest.importorskip("jax")
    path = tmp_path / "params"
    save_jax_params(jax, path, {"opt": State(np.int32(3))})
    assert "writing a pickle" in caplog.text
    with pytest.raises(UntrustedCheckpointError):
        load_jax_params(path)
    assert load_jax_params(path, trust_checkpoint=True) == {"opt": State(np.int32(3))}
