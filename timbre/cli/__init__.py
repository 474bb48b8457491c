"""The ``timbre`` command: the composition root that builds models, stores and services once
and hands them to the library (`timbre`), the ingest jobs (`ingest`) and the API (`app`).

Exit codes: 0 = everything succeeded; 1 = finished, but some inputs failed (each is reported);
2 = could not run (bad settings, missing or broken model files, unusable store); 3 = crashed
on an unexpected error (``timbre ingest``); 130 = interrupted (Ctrl-C).
"""

import logging
import os
import sys

from timbre.cli import (  # noqa: F401 (registers)
    duplicates,
    evaluate,
    ingest,
    mcp,
    models,
    quickstart,
    reanalyse,
    relabel,
    search,
    serve,
    store,
    watch,
)
from timbre.cli.app import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, app

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_PARTIAL", "app", "main"]


EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:
            # Interrupted: the command has closed its store and stopped its workers. Tearing
            # the interpreter down (torch, OpenBLAS, every module's garbage) can take seconds
            # on a busy machine, and Ctrl-C must end the job now.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        raise
