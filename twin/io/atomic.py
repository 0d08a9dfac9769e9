"""Atomic writes: a file appears under its name complete or not at all (CONTRACTS §1).

Every writer of :mod:`twin.io` writes to a temporary name beside the target and renames it on
success (:func:`atomic_path`), so a failed or interrupted command leaves nothing under the
requested name. :func:`check_output_file` refuses, before any work, an output name that cannot
be written.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import secrets
import threading
from pathlib import Path

from twin.core.errors import TwinInputError

__all__ = ["atomic_path", "check_output_file", "remove_stale_temporaries"]

def check_output_file(path: str | Path, option: str = "-o/--output") -> Path:
    """Refuse, before any work, an output file name that names a directory or lies under a
    file (:class:`TwinInputError` naming ``option``).

    Parameters
    ----------
    path : str or Path
        The output file name.
    option : str
        The option or field that gave it, for the message.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path` (nothing is created).

    Raises
    ------
    TwinInputError
        When ``path`` is a directory, or its nearest existing parent is not a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise TwinInputError(option, str(path), "is a directory; give a file name, e.g. "
                             f"{path / 'out'}{path.suffix or ''}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TwinInputError(option, str(path), f"{parent} is a file, not a directory")
            break
    return path


# --- atomic writes: temporaries that never outlive their writer ---------------------------------
#
# A temporary is named ``.<name>.<pid>@<host>.<random>.part`` beside its target, so that a later
# write to the same target can tell its own leftovers (a dead writer on this host) from another
# live writer's. While one is open, SIGINT and SIGTERM remove every open temporary before the
# interpreter acts on the signal (SIGINT still raises KeyboardInterrupt; SIGTERM exits with
# status 143 through the usual unwinding, so locks and other files are released too).

_LIVE_TEMPORARIES: set[str] = set()
_PREVIOUS_HANDLERS: dict[int, object] = {}
_STALE_AGE_OTHER_HOST_S = 7 * 86400


def _host_tag() -> str:
    import re
    import socket

    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _remove_live_temporaries() -> None:
    for tmp in list(_LIVE_TEMPORARIES):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _LIVE_TEMPORARIES.discard(tmp)


_IN_HANDLER: set[int] = set()


def _on_signal(signum, frame):
    _remove_live_temporaries()
    previous = _PREVIOUS_HANDLERS.get(signum)
    # a handler installed over this one may chain back to it: call the chain once, not forever
    if callable(previous) and signum not in _IN_HANDLER:
        _IN_HANDLER.add(signum)
        try:
            return previous(signum, frame)
        finally:
            _IN_HANDLER.discard(signum)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install_signal_cleanup() -> None:
    """Route SIGINT/SIGTERM through :func:`_on_signal` (main thread only).

    Checked at every write, not once per process: a library that set its own handler since
    (and so displaced this one) is chained behind it, instead of leaving writes uncovered.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous in (signal.SIG_IGN, None) or previous is _on_signal:
            continue
        try:
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            continue
        _PREVIOUS_HANDLERS[sig] = previous


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries of earlier writes to ``path`` whose writer is gone.

    A temporary of this host is stale when its writer's process no longer exists; one of another
    host (a shared file system) when it is older than a week; one in the old unnamed form
    (``.<name>.<random>.part``) always. Returns the removed paths.

    Temporaries this process holds open, and files that cannot be removed, are left alone.

    Parameters
    ----------
    path : str or Path
        The target file whose temporaries (``.<name>.*.part`` beside it) are examined.

    Returns
    -------
    list of Path
        The removed temporaries; empty when ``path``'s directory does not exist.
    """
    import re
    import time

    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)@([A-Za-z0-9-]+)\.)?[^.]+\.part$")
    host = _host_tag()
    removed = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        m = pattern.match(p.name)
        if m is None or str(p) in _LIVE_TEMPORARIES:
            continue
        pid, where = m.group(1), m.group(2)
        if pid is None:
            stale = True
        elif where == host:
            stale = int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            try:
                stale = time.time() - p.stat().st_mtime > _STALE_AGE_OTHER_HOST_S
            except OSError:
                continue
        if stale:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def _create_temporary(name: str) -> None:
    """Create ``name``, failing if it exists; the mode is the one an ordinary ``open()`` gives
    (0666 less the umask: 0644 under 022), so colleagues on a shared file system can read it."""
    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    On any exception, and on SIGINT or SIGTERM, the temporary is removed (the target, if it
    existed, is untouched). Temporaries that earlier, killed writes to the same target left
    behind are removed first (:func:`remove_stale_temporaries`).

    Parameters
    ----------
    path : str or Path
        The file to write.
    """
    path = check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    _install_signal_cleanup()
    # The name is registered before the file exists, so a signal at any moment finds either no
    # file or a registered one. (Masking SIGINT around the creation is not enough: in a process
    # with other threads the kernel delivers a process-wide signal to one that does not mask it,
    # and Python then runs the handler in the main thread at once.)
    prefix = f".{path.name}.{os.getpid()}@{_host_tag()}."
    name = tmp = None
    try:
        while tmp is None:
            name = str(path.parent / f"{prefix}{secrets.token_hex(6)}.part")
            _LIVE_TEMPORARIES.add(name)
            try:
                _create_temporary(name)
            except FileExistsError:         # another writer's: not ours to remove
                _LIVE_TEMPORARIES.discard(name)
                name = None
                continue
            tmp = name
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if name is not None:
            Path(name).unlink(missing_ok=True)
        raise
    finally:
        if name is not None:
            _LIVE_TEMPORARIES.discard(name)
