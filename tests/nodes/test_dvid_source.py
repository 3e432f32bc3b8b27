"""DvidSource against a local HTTP server speaking DVID's info, raw and roi
endpoints: voxel size and extent from info (x, y, z reversed to z, y, x),
known grayscale and label values at known world coordinates, ROI masks."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import dpowder as gp

RAW = gp.ArrayKey("RAW")
LABELS = gp.ArrayKey("LABELS")
MASK = gp.ArrayKey("MASK")
UUID = "abc123"
GRAY = (np.arange(8 * 16 * 24) % 251).astype(np.uint8).reshape(8, 16, 24)  # z, y, x, from voxel (0, 0, 0)
LABEL = np.arange(8 * 16 * 24, dtype=np.uint64).reshape(8, 16, 24) * 1000003
SPANS = [[0, 0, 0, 0], [0, 1, 1, 2]]  # block (z=0, y=0, x=0) and (0, 1, x=1..2)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, body, content_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[:3] != ["api", "node", UUID]:
            self.send_error(404)
            return
        instance, endpoint = parts[3], parts[4:]
        volumes = {"grayscale": (GRAY, "uint8blk"), "segmentation": (LABEL, "labelmap")}
        if instance in volumes and endpoint == ["info"]:
            data, type_name = volumes[instance]
            info = {
                "Base": {"TypeName": type_name},
                "Extended": {"VoxelSize": [4, 4, 40], "MinPoint": [0, 0, 0], "MaxPoint": [23, 15, 7]},
            }
            self._send(json.dumps(info).encode(), "application/json")
        elif instance in volumes and endpoint[:2] == ["raw", "0_1_2"]:
            sx, sy, sz = map(int, endpoint[2].split("_"))
            ox, oy, oz = map(int, endpoint[3].split("_"))
            data = volumes[instance][0][oz : oz + sz, oy : oy + sy, ox : ox + sx]
            self._send(np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes())
        elif instance == "mito-roi" and endpoint == ["roi"]:
            self._send(json.dumps(SPANS).encode(), "application/json")
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def request(**rois):
    r = gp.BatchRequest()
    for key, (offset, shape) in rois.items():
        r[gp.ArrayKey(key)] = gp.ArraySpec(roi=gp.Roi(offset, shape))
    return r


def test_grayscale_and_labels_at_known_world_coordinates(server):
    source = gp.DvidSource("127.0.0.1", server, UUID, {RAW: "grayscale", LABELS: "segmentation"})
    with gp.build(source):
        assert source.spec[RAW].voxel_size == gp.Coordinate((40, 4, 4))
        assert source.spec[RAW].roi == gp.Roi((0, 0, 0), (320, 64, 96))
        assert source.spec[RAW].dtype == np.uint8 and source.spec[LABELS].dtype == np.uint64
        batch = source.request_batch(request(RAW=((40, 8, 12), (80, 12, 20)), LABELS=((280, 60, 92), (40, 4, 4))))
    np.testing.assert_array_equal(batch[RAW].data, GRAY[1:3, 2:5, 3:8])
    assert batch[LABELS].data.tolist() == [[[LABEL[7, 15, 23]]]]


def test_roi_mask(server):
    source = gp.DvidSource("127.0.0.1", server, UUID, {}, masks={MASK: "mito-roi"})
    with gp.build(source):
        assert source.spec[MASK].roi == gp.Roi((0, 0, 0), (32, 64, 96))
        batch = source.request_batch(request(MASK=((0, 30, 30), (1, 4, 4))))
    # y 30, 31 are block y=0 (only x block 0 -> x 30, 31 inside); y 32, 33 block y=1 (x blocks 1-2 -> x 32, 33)
    assert batch[MASK].data[0].tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]


def test_unreachable_instance_is_named(server):
    source = gp.DvidSource("127.0.0.1", server, UUID, {RAW: "nothing"})
    with pytest.raises(gp.DpowderError, match="instance 'nothing'"):
        with gp.build(source):
            pass
