"""The ``timbre`` command's Typer apps and logging set-up (exit codes: :class:`ExitCode`)."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, TextIO

import typer
from typer._click import Context
from typer._click import exceptions as click  # typer 0.29 carries its own copy of click
from typer.core import TyperGroup

from timbre.errors import ExitCode, TimbreError


class _PlainErrors(TyperGroup):
    """The root command, with usage and Timbre errors on one plain line (``error: Invalid
    value for '--bpm': ...``) instead of a usage banner, a framed box or a traceback."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else ""
            more = f" (see `{where} --help`)" if where else ""
            typer.echo(f"error: {exc.format_message()}{more}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)  # click's code for an abort (a refused confirmation)
        sys.exit(code if isinstance(code, int) else ExitCode.OK)

    def invoke(self, ctx: Context) -> Any:
        """Runs a command; a Timbre error ends it with one line and exit code 2."""
        try:
            return super().invoke(ctx)
        except TimbreError as exc:
            raise fail(exc) from exc


app = typer.Typer(
    cls=_PlainErrors,
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


QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "huggingface_hub", "filelock", "faiss", "mcp")
"""Libraries whose INFO lines mean nothing to a producer (FAISS's reads like a failure)."""

DETAIL_LOGGERS = (
    "timbre.search.holders",
    "timbre.embedding.runtime",
    "timbre.embedding.onnx_export",
)
"""Timbre's own bookkeeping (snapshot served, model loaded): for a service's log only."""


class _PlainFormatter(logging.Formatter):
    """One line per record, for people: the message, prefixed by its level when above INFO."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        if record.exc_info and record.levelno >= logging.ERROR:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _show_warning_once(message: Warning | str, *_: Any, **__: Any) -> None:
    """Python warnings as one plain line each, each text once per process (not the source
    line that raised it, and not again from every place that loads the same models)."""
    text = str(message)
    if text in _shown:
        return
    _shown.add(text)
    sys.stderr.write(f"warning: {text}\n")


_shown: set[str] = set()


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: bool) -> None:
    """Logging and warnings of a command: plain lines on stderr; --verbose for the details
    (timestamps, logger names, every library's INFO and DEBUG lines)."""
    handler = _StderrHandler()
    if verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_PlainFormatter())
        warnings.showwarning = _show_warning_once
    with contextlib.suppress(ImportError):
        # It adds its own stderr handler on import: each of its warnings came out twice.
        import huggingface_hub.utils.logging  # noqa: F401
    root = logging.getLogger()
    # Replace only our own handler (quickstart sets up again for each step it runs).
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StderrHandler)]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in DETAIL_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
        logger.handlers.clear()
        logger.propagate = True


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    setup_logging(verbose)
    # A fatal signal (SIGBUS from a memory-mapped write the disk could not back, SIGSEGV)
    # leaves at least the Python stacks on stderr instead of nothing.
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr without a file
        faulthandler.enable()


def fail(exc: BaseException) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(ExitCode.FAILED)
