"""An xarray session on the prediction: open the affinities as a lazy
``xarray.DataArray`` with world coordinates (nm) and analyse a region by
coordinates, not voxel indices.
"""

from dpowder.io import open_xarray

from demo_common import PREDICTION, VOXEL_SIZE


def open_prediction():
    """The affinities as a DataArray, read lazily from the zarr container
    (dask: only the chunks an analysis touches are read)."""
    return open_xarray(str(PREDICTION), "affinities")


def main():
    affinities = open_prediction()
    print(f"xarray: {affinities.name or 'affinities'} dims {affinities.dims}, shape {affinities.shape}, "
          f"z from {int(affinities.z[0])} to {int(affinities.z[-1])} nm")
    # a region of the held-out slab, in world units: 3 µm deep from z = 8 µm,
    # 30 µm in y, x from 50 µm
    region = affinities.sel(z=slice(8000, 11000), y=slice(15000, 45000), x=slice(50000, 66000))
    mean_affinity = region.mean(dim=[d for d in region.dims if d in ("z", "y", "x")])
    inside = (region.mean(dim=region.dims[0]) > 0.5)
    voxel_volume_um3 = (VOXEL_SIZE[0] * VOXEL_SIZE[1] * VOXEL_SIZE[2]) / 1e9
    profile = region.mean(dim=[d for d in region.dims if d not in ("z",)])
    print(f"xarray: region {dict(region.sizes)}; mean affinity per channel {[round(float(v), 3) for v in mean_affinity.values]}")
    print(f"xarray: predicted nucleus interior in the region: {int(inside.sum())} voxels = "
          f"{float(inside.sum()) * voxel_volume_um3:.1f} µm³ ({100 * float(inside.mean()):.1f}% of the region)")
    print("xarray: mean affinity by depth: " + ", ".join(
        f"{int(z)} nm: {float(v):.2f}" for z, v in zip(profile.z.values, profile.values)))


if __name__ == "__main__":
    main()
