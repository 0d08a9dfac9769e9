"""Dask: a local cluster by default, any existing scheduler by address."""

from __future__ import annotations

import contextlib
import os

#: Where a local cluster's dashboard listens: loopback only, a free port (issue 24: it listened
#: on every interface). ``TWIN_DASK_DASHBOARD`` overrides it ("0.0.0.0:8787" to share it, "" or
#: "none" for no dashboard).
DASHBOARD_DEFAULT = "127.0.0.1:0"


def dashboard_address() -> str | None:
    """The local cluster's dashboard address (``$TWIN_DASK_DASHBOARD``, else loopback)."""
    value = os.environ.get("TWIN_DASK_DASHBOARD", DASHBOARD_DEFAULT).strip()
    return None if value.lower() in ("", "none", "off") else value


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None):
    """A Dask client of ``scheduler``, or of a local cluster of ``n_workers`` single-threaded
    processes (default: the CPU count, at most 8) that lasts as long as the block."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
        return
    with LocalCluster(n_workers=n_workers or min(8, os.cpu_count() or 1), threads_per_worker=1,
                      processes=True, dashboard_address=dashboard_address(),
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def map_ordered(fn, *iterables, scheduler: str | None = None, n_workers: int | None = None,
                progress: bool = False, desc: str = "", unit: str = "it", weights=None) -> list:
    """``[fn(*args) for args in zip(*iterables)]`` evaluated on Dask, results in input order.

    ``scheduler``: address of an existing scheduler; ``None`` starts a local cluster of
    ``n_workers`` single-threaded processes (default: the CPU count, at most 8) for the call.
    ``weights``: the progress each task counts for (default 1).
    """
    from dask.distributed import Client, LocalCluster, as_completed

    args = [list(it) for it in iterables]
    n = len(args[0])
    weights = [1] * n if weights is None else list(weights)
    if scheduler:
        cluster, client = None, Client(scheduler, timeout="20s")
    else:
        cluster = LocalCluster(n_workers=n_workers or min(8, os.cpu_count() or 1),
                               threads_per_worker=1, processes=True,
                               dashboard_address=dashboard_address(), silence_logs=40)
        client = Client(cluster)
    bar = None
    try:
        futures = client.map(fn, *args, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * n
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=sum(weights), desc=desc, unit=unit)
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if bar is not None:
                bar.update(weights[i])
        return results
    finally:
        if bar is not None:
            bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
