"""Morphology on binary maps in world units (gunpowder's ``morphology``):
growing regions by a radius and ball-shaped structuring elements."""

from typing import Optional, Sequence, Union

import numpy as np

__all__ = ["enlarge_binary_map", "create_ball_kernel"]


def enlarge_binary_map(
    binary_map: np.ndarray,
    radius: Union[float, Sequence[float]],
    voxel_size: Optional[Sequence[float]],
    ring_fraction: Optional[float] = None,
    in_place: bool = False,
) -> Optional[np.ndarray]:
    """Enlarge the regions marked with 1 in a binary map.

    A voxel is set if its centre lies within ``radius`` world units of a set
    voxel's centre (Euclidean, anisotropic voxels respected).

    Args:

        binary_map (numpy array): Zeros, and ones where the regions to grow
            are (regions can already cover many voxels).

        radius (float or array-like of float): How far to grow, in world
            units; one value per axis grows an ellipsoid.

        voxel_size (array-like, optional): The voxel size of ``binary_map``
            in world units; ``None`` means 1 on every axis.

        ring_fraction (float, optional): If given, grow a ring instead: the
            voxels within ``(1 - ring_fraction) * radius`` of the regions
            (the regions included) are cleared.

        in_place (bool, optional): Write the result into ``binary_map``
            (which must be writable) and return ``None``.

    Returns:

        A boolean array of the shape of ``binary_map``, or ``None`` if
        ``in_place``. A map with one value only (no region, or all region)
        is returned as it is, even with ``in_place``, as gunpowder does.
    """
    from scipy.ndimage import distance_transform_edt

    binary_map = np.asarray(binary_map) if not in_place else binary_map
    if len(np.unique(binary_map)) == 1:
        return binary_map
    if voxel_size is None:
        # gunpowder takes binary_map.shape[0] axes here (a crash unless that
        # equals ndim); one per axis is what it means
        voxel_size = (1,) * binary_map.ndim
    # distances in units of the radius: grown is <= 1
    sampling = np.asarray(voxel_size, dtype=np.float32) / np.asarray(radius, dtype=np.float32)
    background = np.logical_not(binary_map)
    distance = distance_transform_edt(background, sampling=sampling)
    grown = distance <= 1.0
    if ring_fraction is not None:
        grown[distance <= 1.0 - ring_fraction] = False
    if in_place:
        binary_map[...] = grown
        return None
    return grown


def create_ball_kernel(radius: Union[float, Sequence[float]], voxel_size: Sequence[float]) -> np.ndarray:
    """A ball-shaped structuring element.

    Args:

        radius (float or array-like of float): The radius of the ball, in
            world units.

        voxel_size (array-like): The voxel size of the kernel, in world
            units.

    Returns:

        A ``uint8`` array, 1 inside the ball, of shape ``2 * ceil(radius /
        voxel_size) + 1`` per axis: e.g. ``voxel_size=(2, 1, 1)``,
        ``radius=5`` gives shape ``(7, 11, 11)``.
    """
    radius_voxels = np.ceil(np.asarray(radius) / np.asarray(voxel_size)).astype(int)
    shape = tuple(int(s) for s in radius_voxels * 2 + 1)
    kernel = np.zeros(shape, dtype=np.uint8)
    kernel[tuple(s // 2 for s in shape)] = 1
    enlarge_binary_map(kernel, radius, voxel_size, in_place=True)
    return kernel
