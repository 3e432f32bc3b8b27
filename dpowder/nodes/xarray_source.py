"""``XarraySource``: an array from an xarray ``DataArray`` or ``Dataset``."""

from ..array import Array
from ..batch import Batch
from ..errors import PipelineConfigError, PipelineSetupError
from ..io.lazy import to_numpy
from .batch_provider import BatchProvider


class XarraySource(BatchProvider):
    """Provides an ``xarray.DataArray`` (or one variable of an
    ``xarray.Dataset``) as an array, beyond gunpowder.

    Spatial dims are those with numeric coordinates, in world units, at the
    *begin corner* of each voxel (dpowder's convention, see
    ``dpowder.io.xarray`` and docs/xarray.md): the voxel size is the
    coordinate step and the ROI's offset the first coordinate. Dims without
    coordinates are channels. The dims' names are kept in the provided
    array's ``attrs["dims"]``. Dask-backed data (e.g. from
    ``xarray.open_zarr``) is read lazily: a request computes only the chunks
    its ROI touches, inside the task that serves it.

    Args:

        key (ArrayKey): The key to provide the array under.

        data (xarray.DataArray or xarray.Dataset): The data.

        variable (str, optional): The variable to provide, if ``data`` is a
            ``Dataset``.

        interpolatable (bool, optional): Whether the array is
            interpolatable; guessed from the dtype if not given.
    """

    def __init__(self, key, data, variable=None, interpolatable=None):
        import xarray as xr

        if isinstance(data, xr.Dataset):
            if variable is None:
                raise PipelineConfigError(
                    f"XarraySource({key}): data is a Dataset; name the variable to provide "
                    f"(one of {sorted(map(str, data.data_vars))})"
                )
            if variable not in data.data_vars:
                raise PipelineConfigError(
                    f"XarraySource({key}): the Dataset has no variable {variable!r}; it has "
                    f"{sorted(map(str, data.data_vars))}"
                )
            data = data[variable]
        elif not isinstance(data, xr.DataArray):
            raise PipelineConfigError(
                f"XarraySource({key}): data must be an xarray DataArray or Dataset, got {type(data).__name__}"
            )
        elif variable is not None:
            raise PipelineConfigError(f"XarraySource({key}): variable is only for a Dataset")
        self.key = key
        self.data = data
        self.variable = variable
        self.interpolatable = interpolatable

    def setup(self):
        from ..io.xarray import array_from_xarray, is_spatial

        try:
            self.array = array_from_xarray(self.data, self.interpolatable)
        except ValueError as e:
            raise PipelineSetupError(f"{self.describe()}: cannot read {self.key} from the DataArray: {e}") from e
        spatial = [d for d in self.data.dims if is_spatial(self.data, d)]
        self.array.attrs["dims"] = [str(d) for d in self.data.dims if d not in spatial] + [str(d) for d in spatial]
        self.provides(self.key, self.array.spec)

    def provide(self, request):
        batch = Batch()
        if self.key in request:
            if self.array.spec.nonspatial:
                array = self.array
            else:
                array = self.array.crop(request[self.key].roi, copy=False)
            batch[self.key] = Array(to_numpy(array.data), array.spec.copy(), dict(array.attrs))
        return batch
