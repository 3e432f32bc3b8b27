"""Voxel size and offset of a dataset, in the two conventions the field uses.

Read, in this order of precedence:

1. funlib / gunpowder attributes on the dataset itself: ``resolution`` (or
   ``voxel_size``) and ``offset``, world units, one value per spatial axis.
2. OME-NGFF ``multiscales`` (0.4 as ``attrs["multiscales"]``, 0.5 as
   ``attrs["ome"]["multiscales"]``) on the dataset or on a group above it
   that lists the dataset in ``datasets[].path``: the dataset's ``scale`` and
   ``translation`` transformations, composed with the multiscale's own, over
   the non-channel ``axes``.

Written: both, so that gunpowder, funlib, napari/neuroglancer (OME-NGFF) and
xarray readers agree. The translation written to OME-NGFF is dpowder's offset,
the world position of the *begin corner* of the first voxel (funlib's
convention, and dpowder's xarray convention, see ``dpowder.io.xarray``).

Pyramids: a level's translation is read relative to level 0 by voxel
centres, as the NGFF tools (ome-zarr-py's ``write_image``, ngff-zarr) place
downsampled levels: level ``k`` (voxel size ``s_k``, translation ``t_k``)
starts at the corner ``t_k - (s_k - s_0) / 2``. So every level of such a
pyramid spans the same world ROI as level 0, and level 0 (and any
single-level dataset) keeps its translation as its corner offset.
"""

from ..coordinate import Coordinate
from ..errors import DataError

VOXEL_SIZE_ATTRIBUTES = ("resolution", "voxel_size")
OFFSET_ATTRIBUTES = ("offset",)
LOOKED_FOR = (
    "'resolution' or 'voxel_size' (funlib/gunpowder) on the dataset, or OME-NGFF "
    "'multiscales' coordinateTransformations (scale) on the dataset or a group above it"
)


class Metadata:
    """What a dataset's attributes say about its spatial layout.

    Attributes:

        voxel_size (Coordinate or None): World units per voxel, spatial axes.
        offset (Coordinate or None): World position of the first voxel's
            begin corner.
        axis_names (list of str or None): Names of all axes, channels first.
        channel_axes (int or None): How many leading axes are channels.
        found_in (str): Where it was read from, for messages.
    """

    def __init__(self, voxel_size=None, offset=None, axis_names=None, channel_axes=None, found_in=None):
        self.voxel_size = voxel_size
        self.offset = offset
        self.axis_names = axis_names
        self.channel_axes = channel_axes
        self.found_in = found_in


def _integral(values, what, where):
    out = []
    for v in values:
        if float(v) != int(round(float(v))):
            raise DataError(
                f"{what} {list(values)} in {where} is not integral; dpowder's world units are integers "
                f"(e.g. nm): pass array_specs={{KEY: ArraySpec(voxel_size=...)}} in integer units"
            )
        out.append(int(round(float(v))))
    return Coordinate(out)


def _multiscales(attrs):
    if "ome" in attrs and isinstance(attrs["ome"], dict) and "multiscales" in attrs["ome"]:
        return attrs["ome"]["multiscales"]
    return attrs.get("multiscales")


def _compose(transforms, ndim):
    scale = [1.0] * ndim
    translation = [0.0] * ndim
    for t in transforms or ():
        if t.get("type") == "scale" and "scale" in t:
            scale = [s * f for s, f in zip(scale, t["scale"])]
            translation = [tr * f for tr, f in zip(translation, t["scale"])]
        elif t.get("type") == "translation" and "translation" in t:
            translation = [tr + d for tr, d in zip(translation, t["translation"])]
    return scale, translation


def _level_transform(multiscale, dataset, ndim):
    """Scale and translation of one multiscale level: its own
    transformations, then the multiscale's."""
    scale, translation = _compose(dataset.get("coordinateTransformations"), ndim)
    top_scale, top_translation = _compose(multiscale.get("coordinateTransformations"), ndim)
    scale = [s * t for s, t in zip(scale, top_scale)]
    translation = [tr * t + d for tr, t, d in zip(translation, top_scale, top_translation)]
    return scale, translation


def _axes(multiscale, ndim):
    axes = multiscale.get("axes")
    if axes is None:
        names = ["c", "z", "y", "x"][-ndim:] if ndim <= 4 else [f"d{i}" for i in range(ndim)]
        return names, [n == "c" for n in names]
    names, channel = [], []
    for a in axes:
        if isinstance(a, dict):
            names.append(a.get("name"))
            channel.append(a.get("type") == "channel")
        else:
            names.append(a)
            channel.append(a == "c")
    return names, channel


def from_ome(attrs, dataset_path, ndim, where):
    """``Metadata`` from OME-NGFF ``multiscales`` in ``attrs`` for the dataset
    at ``dataset_path`` (relative to the group holding ``attrs``; ``None``:
    the first, i.e. full-resolution, dataset). ``None`` if not listed."""
    for multiscale in _multiscales(attrs) or ():
        for ds in multiscale.get("datasets", ()):
            if dataset_path is not None and ds.get("path", "").strip("/") != dataset_path.strip("/"):
                continue
            names, channel = _axes(multiscale, ndim)
            scale, translation = _level_transform(multiscale, ds, len(names))
            scale0, _ = _level_transform(multiscale, multiscale["datasets"][0], len(names))
            # NGFF places a level by its voxel centres: a level of voxel size
            # s, translation t, aligned with level 0 (voxel size s0), has its
            # first voxel's begin corner at t - (s - s0) / 2; level 0's
            # translation is its corner offset (dpowder's and funlib's)
            corner = [t - (s - s0) / 2 for t, s, s0 in zip(translation, scale, scale0)]
            spatial = [i for i, c in enumerate(channel) if not c]
            found_in = f"OME-NGFF multiscales of {where} (dataset path '{ds.get('path')}')"
            return Metadata(
                voxel_size=_integral([scale[i] for i in spatial], "OME-NGFF scale", found_in),
                offset=_integral([corner[i] for i in spatial], "OME-NGFF translation (as a corner offset)", found_in),
                axis_names=names,
                channel_axes=sum(channel),
                found_in=found_in,
            ), ds.get("path")
    return None


def read_metadata(attrs, ndim, where, parents=()):
    """The ``Metadata`` of a dataset with ``ndim`` axes.

    Args:

        attrs (mapping): The dataset's attributes.
        ndim (int): Number of axes of the dataset.
        where (str): The dataset's name and file, for messages.
        parents (sequence of (str, mapping, str)): ``(path of the dataset
            relative to the group, group attributes, group description)`` for
            each group above the dataset, nearest first.
    """
    voxel_size = next((attrs[a] for a in VOXEL_SIZE_ATTRIBUTES if a in attrs), None)
    offset = next((attrs[a] for a in OFFSET_ATTRIBUTES if a in attrs), None)
    axis_names = attrs.get("axis_names")
    if voxel_size is not None:
        voxel_size = _integral(voxel_size, "voxel size", where)
        offset = _integral(offset, "offset", where) if offset is not None else None
        return Metadata(voxel_size, offset, axis_names, None, f"attributes of {where}")
    candidates = [("", attrs, where)] + list(parents)
    for relative_path, group_attrs, group_where in candidates:
        found = from_ome(group_attrs, relative_path or None, ndim, group_where) if relative_path else None
        if found is None and not relative_path and _multiscales(group_attrs):
            found = from_ome(group_attrs, None, ndim, group_where)
        if found is not None:
            metadata = found[0]
            if offset is not None:
                metadata.offset = _integral(offset, "offset", where)
            return metadata
    return Metadata(None, None if offset is None else _integral(offset, "offset", where), axis_names)


def default_axis_names(spatial_dims, channel_dims=0):
    """``c``/``c0..`` for channels, then ``z, y, x`` (``t, z, y, x`` in 4D,
    ``d0..`` beyond)."""
    if spatial_dims <= 3:
        spatial = ["z", "y", "x"][3 - spatial_dims :]
    elif spatial_dims == 4:
        spatial = ["t", "z", "y", "x"]
    else:
        spatial = [f"d{i}" for i in range(spatial_dims)]
    channels = ["c"] if channel_dims == 1 else [f"c{i}" for i in range(channel_dims)]
    return channels + spatial


def funlib_attributes(voxel_size, offset, spatial_dims, channel_dims):
    """The attributes funlib and gunpowder read (funlib.persistence marks
    channel axes with a trailing ``^``)."""
    names = default_axis_names(spatial_dims, channel_dims)
    return {
        "resolution": [int(v) for v in voxel_size],
        "offset": [int(o) for o in offset],
        "voxel_size": [int(v) for v in voxel_size],
        "axis_names": [n + "^" for n in names[:channel_dims]] + names[channel_dims:],
    }


def ome_multiscale(name, dataset_path, voxel_size, offset, spatial_dims, channel_dims):
    """One OME-NGFF multiscale entry for a single-scale dataset, or ``None``
    where OME-NGFF cannot describe it (more than 3 spatial or 1 channel
    axes)."""
    if spatial_dims > 4 or (spatial_dims == 4 and channel_dims) or channel_dims > 1 or spatial_dims + channel_dims < 2:
        return None
    names = default_axis_names(spatial_dims, channel_dims)
    axes = []
    for n in names:
        if n == "c":
            axes.append({"name": n, "type": "channel"})
        elif n == "t":
            axes.append({"name": n, "type": "time"})
        else:
            axes.append({"name": n, "type": "space"})
    ones = [1] * channel_dims
    return {
        "version": "0.4",
        "name": name,
        "axes": axes,
        "datasets": [
            {
                "path": dataset_path,
                "coordinateTransformations": [
                    {"type": "scale", "scale": ones + [int(v) for v in voxel_size]},
                    {"type": "translation", "translation": [0] * channel_dims + [int(o) for o in offset]},
                ],
            }
        ],
    }


def add_ome_multiscale(group_attrs, entry, zarr_format):
    """``group_attrs`` (a dict) with ``entry`` added to its multiscales,
    replacing one for the same dataset path: OME-NGFF 0.4 for zarr format 2,
    0.5 (under ``ome``) for zarr format 3."""
    if zarr_format == 3:
        ome = dict(group_attrs.get("ome", {}))
        ome["version"] = "0.5"
        entry = {k: v for k, v in entry.items() if k != "version"}
        existing = list(ome.get("multiscales", []))
    else:
        ome = None
        existing = list(group_attrs.get("multiscales", []))
    path = entry["datasets"][0]["path"]
    existing = [m for m in existing if [d.get("path") for d in m.get("datasets", ())] != [path]]
    existing.append(entry)
    if ome is not None:
        ome["multiscales"] = existing
        return {"ome": ome}
    return {"multiscales": existing}
