"""The LocalCluster the tests/test_dask_*.py modules share: two single-threaded worker
processes, no dashboard, localhost only (started once per module: about a second)."""

import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
