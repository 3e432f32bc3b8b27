"""The dask dashboard works where the ``dashboard`` (or ``demo``) extra is
installed: ``client.dashboard_link`` serves the status page, not "Dask needs
bokeh>=3.1.0". Limits: checks the page is served, not what it draws."""

import urllib.request

import pytest

pytestmark = pytest.mark.cluster  # starts a (thread-worker) LocalCluster

bokeh = pytest.importorskip("bokeh", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")


def test_dashboard_link_serves_the_status_page():
    from distributed import Client, LocalCluster
    from packaging.version import Version

    assert Version(bokeh.__version__) >= Version("3.1")
    # in-process workers: only the dashboard is under test
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, Client(cluster) as client:
        with urllib.request.urlopen(client.dashboard_link, timeout=60) as response:
            page = response.read().decode()
    assert response.status == 200
    assert "needs bokeh" not in page and "bokeh" in page.lower()
