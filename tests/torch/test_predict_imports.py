"""torch.Predict run in a plain process (no dask.distributed client, Scan on
threads) does not import ``distributed`` to find out whether it runs on one
of its workers: that import costs about a second, paid in the first block."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    import dpowder as gp
    from dpowder.torch import Predict

    raw, pred = gp.ArrayKey("RAW"), gp.ArrayKey("PRED")
    spec = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)), voxel_size=(1, 1, 1))
    data = np.arange(512, dtype=np.float32).reshape(8, 8, 8)
    model = torch.nn.Conv3d(1, 1, 1, bias=False)
    torch.nn.init.constant_(model.weight, 2.0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = model

        def forward(self, x):
            return self.conv(x[None, None])[0, 0]

    reference = gp.BatchRequest()
    reference[raw] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 8, 8)))
    reference[pred] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (4, 8, 8)))
    pipeline = (
        gp.ArraySource(raw, gp.Array(data, spec))
        + Predict(Net(), inputs={0: raw}, outputs={0: pred}, device="cpu")
        + gp.Scan(reference, num_workers=2)
    )
    request = gp.BatchRequest()
    request[pred] = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)))
    with gp.build(pipeline):
        batch = pipeline.request_batch(request)
    assert np.array_equal(batch[pred].data, data * 2), batch[pred].data
    print("distributed" in sys.modules)
    """
)


def test_predict_in_a_plain_process_does_not_import_distributed():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
