"""The ``timbre`` command: the composition root that builds models, stores and services once
and hands them to the library (`timbre`), the ingest jobs (`ingest`) and the API (`app`).

Exit codes: 0 = everything succeeded; 1 = finished, but some inputs failed (each is reported);
2 = could not run (bad settings, missing or broken model files, unusable store).
"""

from timbre.cli import (  # noqa: F401 (registers)
    duplicates,
    ingest,
    models,
    quickstart,
    reanalyse,
    relabel,
    search,
    serve,
    store,
)
from timbre.cli.app import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, app

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_PARTIAL", "app", "main"]


def main() -> None:
    app()
