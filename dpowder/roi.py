"""Regions of interest in world units: funlib.geometry's ``Roi``."""

from funlib.geometry import Roi

__all__ = ["Roi"]
