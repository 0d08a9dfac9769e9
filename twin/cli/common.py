"""What every ``twin`` command shares: the typer application, ``--version``, and the mapping of
errors to exit statuses (book/contracts.md §1).

Exit status: 0 success; 2 bad input (one paragraph on stderr naming the field or path, the
value and what is allowed, no traceback); 1 any other failure.
"""

from __future__ import annotations

import os
import sys
from functools import wraps
from typing import Annotated

import typer

from twin.core.errors import TwinInputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Digital twin of fast X-ray ptychography and ptycho-tomography.")


def package_version() -> str:
    """The installed distribution's version (``ptycho-twin``), else the package's own.

    Returns
    -------
    str
        The version, e.g. ``"0.1.0"``.
    """
    from importlib import metadata

    try:
        return metadata.version("ptycho-twin")
    except metadata.PackageNotFoundError:
        from twin import __version__

        return __version__


def _version(value: bool) -> None:
    if value:
        typer.echo(f"twin {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")]
          = False) -> None:
    """Digital twin of fast X-ray ptychography and ptycho-tomography."""


def fail(code: int, message: str) -> None:
    """Print ``twin: error: message`` on stderr and exit with ``code``.

    Parameters
    ----------
    code : int
        The exit status (2 bad input, 1 any other failure).
    message : str
        One paragraph, without the ``twin: error:`` prefix.
    """
    typer.echo(f"twin: error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn):
    """Map library errors to the exit statuses of book/contracts.md §1.

    Parameters
    ----------
    fn : callable
        A command's function.

    Returns
    -------
    callable
        ``fn`` with :class:`~twin.core.errors.TwinInputError` → exit 2, a closed pipe → exit 0,
        any other exception → exit 1 with a one-line message (``TWIN_DEBUG=1``: the traceback).
    """

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except TwinInputError as exc:
            fail(2, str(exc))
        except BrokenPipeError:
            # the reader went away (`twin forecast … | head`): not an error of twin's
            sys.stdout = open(os.devnull, "w")
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            fail(1, "interrupted")
        except Exception as exc:  # noqa: BLE001 - the contract: exit 1, a message, no trace
            if os.environ.get("TWIN_DEBUG"):
                raise
            fail(1, f"{type(exc).__name__}: {exc} (set TWIN_DEBUG=1 for a traceback)")

    return wrapper


def scheduler_address(scheduler: str | None) -> str | None:
    """The Dask scheduler a command uses: ``--scheduler``, else ``$TWIN_DASK_SCHEDULER``.

    Parameters
    ----------
    scheduler : str or None
        The ``--scheduler`` flag's value.

    Returns
    -------
    str or None
        An address, or None for a local cluster.
    """
    return scheduler or os.environ.get("TWIN_DASK_SCHEDULER") or None


def say(message: str) -> None:
    """Echo a progress or log line on stderr (stdout stays the command's result)."""
    typer.echo(message, err=True)
