"""``CsvPointsSource``: points from a CSV file."""

import csv

import numpy as np

from ..batch import Batch
from ..coordinate import Coordinate
from ..errors import DataSourceError
from ..graph import Graph, Node
from ..graph_spec import GraphSpec
from ..roi import Roi
from .batch_provider import BatchProvider


class CsvPointsSource(BatchProvider):
    """Read a set of points from a comma-separated-values text file. Each
    line in the file represents one point, e.g. ``z y x (id)``. This reads
    all points into memory at setup; a request selects the points inside its
    ROI (vectorised) on every spatial column, and the graph comes back with
    the request's ROI. As in gunpowder, a ``points_spec`` with fewer axes
    than the request accepts it (its leading axes are compared), and the
    points are still selected on all ``spatial_cols``.

    Args:

        filename (string): The file to read from.

        points (GraphKey): The key of the points set to create.

        spatial_cols (list[int]): The columns of the csv that hold the
            coordinates of the points (in the order that you want them to be
            used in training).

        points_spec (GraphSpec, optional): An optional GraphSpec to overwrite
            the points specs automatically determined from the CSV file. This
            is useful to set the Roi manually.

        scale (scalar or array-like): An optional scaling to apply to the
            coordinates of the points read from the CSV file. This is useful
            if the points refer to voxel positions to convert them to world
            units.

        id_col (int, optional): The column of the csv that holds an id for
            each point. If not provided, the index of the rows are used as
            the ids. When read from file, ids are left as strings and not
            cast to anything.

        delimiter (str, optional): Delimiter to pass to the csv reader.
            Defaults to ",".
    """

    def __init__(self, filename, points, spatial_cols, points_spec=None, scale=None, id_col=None, delimiter=","):
        self.filename = filename
        self.points = points
        self.spatial_cols = list(spatial_cols)
        self.points_spec = points_spec
        self.scale = scale
        self.id_col = id_col
        self.delimiter = delimiter

    def setup(self):
        self._parse_csv()
        if self.points_spec is not None:
            self.provides(self.points, self.points_spec)
            return
        if len(self.data):
            begin = Coordinate(np.floor(self.data.min(axis=0)).astype(int))
            end = Coordinate(np.ceil(self.data.max(axis=0)).astype(int) + 1)
            roi = Roi(begin, end - begin)
        else:
            roi = Roi((None,) * self.ndims, (None,) * self.ndims)
        self.provides(self.points, GraphSpec(roi=roi))

    def provide(self, request):
        batch = Batch()
        if self.points not in request:
            return batch
        roi = request[self.points].roi
        inside = np.ones(len(self.data), dtype=bool)
        for d in range(self.ndims):
            if roi.begin[d] is not None:
                inside &= self.data[:, d] >= roi.begin[d]
            if roi.end[d] is not None:
                inside &= self.data[:, d] < roi.end[d]
        ids = self.ids[inside] if self.ids is not None else np.flatnonzero(inside)
        nodes = [Node(id=i if isinstance(i, str) else int(i), location=p) for i, p in zip(ids, self.data[inside])]
        spec = self.spec[self.points].copy()
        spec.roi = roi
        batch[self.points] = Graph(nodes, [], spec)
        return batch

    def _parse_csv(self):
        try:
            with open(self.filename, "r", newline="") as f:
                sample = f.read(1024)
                f.seek(0)
                try:
                    has_header = csv.Sniffer().has_header(sample) if sample else False
                except csv.Error:
                    has_header = False
                rows = list(csv.reader(f, delimiter=self.delimiter))
        except OSError as e:
            raise DataSourceError(f"{self.describe()}: cannot read '{self.filename}' ({e})") from e
        rows = [r for r in rows[1 if has_header else 0 :] if r]
        try:
            self.data = np.array([[float(r[c]) for c in self.spatial_cols] for r in rows], dtype=np.float32).reshape(
                len(rows), len(self.spatial_cols)
            )
        except (ValueError, IndexError) as e:
            raise DataSourceError(
                f"{self.describe()}: '{self.filename}' has a row without numbers in columns {self.spatial_cols} ({e})"
            ) from e
        self.ids = np.array([r[self.id_col] for r in rows]) if self.id_col is not None else None
        self.ndims = len(self.spatial_cols)
        if self.scale is not None:
            self.data *= np.asarray(self.scale, dtype=np.float32)
