"""The ``timbre`` command's Typer apps, logging set-up and exit codes.

Exit codes: 0 = everything succeeded; 1 = finished, but some inputs failed (each is reported);
2 = could not run (bad settings, missing or broken model files, unusable store); 3 = crashed on
an unexpected error (``timbre ingest``); 130 = interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import sys
from typing import Annotated

import typer

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Timbre: semantic search for audio sample libraries.",
)
models_app = typer.Typer(no_args_is_help=True, help="Model files: download, random bundles.")
app.add_typer(models_app, name="models")
store_app = typer.Typer(
    no_args_is_help=True, help="The vector store: snapshots, re-index publication."
)
app.add_typer(store_app, name="store")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpx2", "httpcore", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    _setup_logging(verbose)
    # A fatal signal (SIGBUS from a memory-mapped write the disk could not back, SIGSEGV)
    # leaves at least the Python stacks on stderr instead of nothing.
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr without a file
        faulthandler.enable()


def fail(exc: BaseException) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(EXIT_FAILED)
