"""Dask: a local cluster by default, any existing scheduler by address.

:func:`client_for` opens a client on either; :func:`run_ordered` maps a function over it with
the results in input order; :func:`map_ordered` does both for one call. A scheduler that cannot
be reached is bad input (exit 2 naming the address), not a crash.
"""

from __future__ import annotations

import contextlib
import os

from twin.core.errors import TwinInputError

#: Where a local cluster's dashboard listens: loopback only, a free port (issue 24: it listened
#: on every interface). ``TWIN_DASK_DASHBOARD`` overrides it ("0.0.0.0:8787" to share it, "" or
#: "none" for no dashboard).
DASHBOARD_DEFAULT = "127.0.0.1:0"


def dashboard_address() -> str | None:
    """The local cluster's dashboard address (``$TWIN_DASK_DASHBOARD``, else loopback)."""
    value = os.environ.get("TWIN_DASK_DASHBOARD", DASHBOARD_DEFAULT).strip()
    return None if value.lower() in ("", "none", "off") else value


#: Seconds to wait for an existing scheduler before calling it unreachable
#: (``TWIN_DASK_CONNECT_TIMEOUT_S`` overrides).
CONNECT_TIMEOUT_S = 20.0


def _connect_timeout_s() -> float:
    raw = os.environ.get("TWIN_DASK_CONNECT_TIMEOUT_S")
    if raw is None:
        return CONNECT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise TwinInputError("TWIN_DASK_CONNECT_TIMEOUT_S", raw, "a positive number of seconds")
    return value


@contextlib.contextmanager
def client_for(scheduler: str | None = None, n_workers: int | None = None,
               memory_limit_bytes: int | None = None):
    """A Dask client on ``scheduler`` or on a local cluster started (and closed) for the block.

    Parameters
    ----------
    scheduler : str or None
        Address of an existing scheduler (``tcp://host:8786``). ``None`` starts a local cluster
        of ``n_workers`` single-threaded worker processes (default: the CPU count, at most 8),
        its scheduler and dashboard bound to 127.0.0.1.
    n_workers : int or None
        Local workers.
    memory_limit_bytes : int or None
        Local workers' memory limit each (Dask pauses a worker at 80 % of it and restarts it at
        95 %); ``None``: the machine's memory shared equally.

    Raises
    ------
    TwinInputError
        ``--scheduler`` when no scheduler answers at the address (or it is malformed);
        ``TWIN_DASK_CONNECT_TIMEOUT_S`` when it is set but not a positive number of seconds.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        timeout = _connect_timeout_s()
        try:
            client = Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise TwinInputError("--scheduler", scheduler, (
                f"no Dask scheduler answered at this address within {timeout:g} s ({exc}); "
                "give a running scheduler's address (tcp://HOST:PORT), or none for a local "
                "cluster")) from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=n_workers or min(8, os.cpu_count() or 1),
                               threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=dashboard_address(), silence_logs=40,
                               memory_limit=(memory_limit_bytes if memory_limit_bytes
                                             else "auto"))
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: The name the sweep's streaming writer uses.
dask_client = client_for


def worker_memory_limits(client) -> list[int]:
    """Each worker's memory limit in bytes (0 where the worker has none).

    Parameters
    ----------
    client : dask.distributed.Client
        A client on the cluster.

    Returns
    -------
    list of int
        One limit per worker, bytes, in the scheduler's order of workers.
    """
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return [int(w.get("memory_limit") or 0) for w in workers.values()]


def run_ordered(client, fn, *iterables, progress: bool = False, desc: str = "",
                unit: str = "it", weights=None) -> list:
    """``[fn(*args) for args in zip(*iterables)]`` on ``client``, results in input order.

    One task per element; a task whose worker dies is run again elsewhere by the scheduler, so
    ``fn`` must give the same result when repeated. An exception raised by ``fn`` is raised
    here.

    Parameters
    ----------
    client : dask.distributed.Client
        The client the tasks are submitted to.
    fn : callable
        The function, run once per element (not treated as pure: never deduplicated).
    *iterables : iterable
        Its arguments, one iterable per positional argument, of equal lengths.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    desc, unit : str
        The bar's label and unit.
    weights : sequence of float, optional
        The progress each task counts for (default 1 each).

    Returns
    -------
    list
        ``fn``'s results in the order of the inputs; empty without inputs.
    """
    from dask.distributed import as_completed

    args = [list(it) for it in iterables]
    n = len(args[0]) if args else 0
    if n == 0:
        return []
    weights = [1] * n if weights is None else list(weights)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(weights), desc=desc, unit=unit)
    try:
        futures = client.map(fn, *args, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * n
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if bar is not None:
                bar.update(weights[i])
        return results
    finally:
        if bar is not None:
            bar.close()


def map_ordered(fn, *iterables, scheduler: str | None = None, n_workers: int | None = None,
                progress: bool = False, desc: str = "", unit: str = "it", weights=None) -> list:
    """``[fn(*args) for args in zip(*iterables)]`` evaluated on Dask, results in input order.

    Parameters
    ----------
    fn : callable
        The function, as in :func:`run_ordered`.
    *iterables : iterable
        Its arguments, one iterable per positional argument, of equal lengths.
    scheduler : str, optional
        Address of an existing scheduler; None starts a local cluster for the call
        (:func:`client_for`).
    n_workers : int, optional
        Single-threaded local worker processes (default: the CPU count, at most 8).
    progress : bool
        Show a progress bar (tqdm, on stderr).
    desc, unit : str
        The bar's label and unit.
    weights : sequence of float, optional
        The progress each task counts for (default 1 each).

    Returns
    -------
    list
        ``fn``'s results in the order of the inputs.

    Raises
    ------
    TwinInputError
        No scheduler answers at ``scheduler`` (:func:`client_for`).
    """
    with client_for(scheduler, n_workers) as client:
        return run_ordered(client, fn, *iterables, progress=progress, desc=desc, unit=unit,
                           weights=weights)
