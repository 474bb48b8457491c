"""The ``timbre`` command: the composition root that builds models, stores and services once
and hands them to the library (`timbre`), the ingest jobs (`ingest`) and the API (`app`).
Exit codes: :class:`timbre.errors.ExitCode`."""

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
from timbre.cli.app import app
from timbre.errors import ExitCode

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        if exc.code == ExitCode.INTERRUPTED:
            # The command has closed its store and stopped its workers; tearing the interpreter
            # down can take seconds, and Ctrl-C must end the job now.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ExitCode.INTERRUPTED)
        raise
