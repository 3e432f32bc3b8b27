"""CsvPointsSource: points at known world positions (scaled), ids from a
column (as strings) or the row index, a header skipped, the ROI from the
points, requests selecting exactly the points inside."""

import numpy as np

import dpowder as gp

POINTS = gp.GraphKey("POINTS")


def request(offset, shape):
    r = gp.BatchRequest()
    r[POINTS] = gp.GraphSpec(roi=gp.Roi(offset, shape))
    return r


def test_row_index_ids_scale_and_roi(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("1,2,3\n4,5,6\n7,8,9\n")
    source = gp.CsvPointsSource(str(path), POINTS, spatial_cols=[0, 1, 2], scale=(10, 1, 2))
    with gp.build(source):
        assert source.spec[POINTS].roi == gp.Roi((10, 2, 6), (61, 7, 13))
        graph = source.request_batch(request((30, 2, 6), (41, 7, 13)))[POINTS]
    assert {n.id: n.location.tolist() for n in graph.nodes} == {1: [40, 5, 12], 2: [70, 8, 18]}


def test_header_id_column_and_delimiter(tmp_path):
    path = tmp_path / "points.tsv"
    path.write_text("name\tz\ty\nalpha\t1.5\t2\nbeta\t10\t20\n")
    points_spec = gp.GraphSpec(roi=gp.Roi((0, 0), (100, 100)))
    source = gp.CsvPointsSource(
        str(path), POINTS, spatial_cols=[1, 2], points_spec=points_spec, id_col=0, delimiter="\t"
    )
    with gp.build(source):
        assert source.spec[POINTS].roi == gp.Roi((0, 0), (100, 100))
        graph = source.request_batch(request((0, 0), (5, 5)))[POINTS]
    nodes = list(graph.nodes)
    assert [n.id for n in nodes] == ["alpha"]
    np.testing.assert_array_equal(nodes[0].location, [1.5, 2])


def test_a_2d_points_spec_accepts_a_3d_request_filtered_on_every_column(tmp_path):
    """As gunpowder (funlib containment compares the spec's leading axes
    only): the request's ROI comes back, and the points are selected on all
    three spatial columns, also the one the spec does not have."""
    path = tmp_path / "points.csv"
    path.write_text("1,2,3\n1,2,50\n50,2,3\n9.5,0,9.99\n")
    points_spec = gp.GraphSpec(roi=gp.Roi((0, 0), (100, 100)))
    source = gp.CsvPointsSource(str(path), POINTS, spatial_cols=[0, 1, 2], points_spec=points_spec)
    with gp.build(source) as p:
        graph = p.request_batch(request((0, 0, 0), (10, 10, 10)))[POINTS]
    assert graph.spec.roi == gp.Roi((0, 0, 0), (10, 10, 10))
    assert {n.id: n.location.tolist() for n in graph.nodes} == {0: [1, 2, 3], 3: [9.5, 0, np.float32(9.99).item()]}


def test_a_3d_request_on_2d_columns_filters_the_leading_axes(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("1,2\n1,20\n")
    points_spec = gp.GraphSpec(roi=gp.Roi((0, 0), (100, 100)))
    source = gp.CsvPointsSource(str(path), POINTS, spatial_cols=[0, 1], points_spec=points_spec)
    with gp.build(source) as p:
        graph = p.request_batch(request((0, 0, 0), (10, 10, 10)))[POINTS]
    assert graph.spec.roi == gp.Roi((0, 0, 0), (10, 10, 10))
    assert [n.id for n in graph.nodes] == [0]
