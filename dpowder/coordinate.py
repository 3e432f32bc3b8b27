"""Coordinates in world units or voxels: funlib.geometry's ``Coordinate``.

dpowder uses the field's shared geometry types so that ROIs interoperate with
daisy and funlib.persistence without conversion.
"""

from funlib.geometry import Coordinate

__all__ = ["Coordinate"]
