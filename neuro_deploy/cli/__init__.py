"""The `neuro-deploy` command line: one module per command group, each command parses its options,
calls one function of a stage module and prints the result.

Every command reports bad input as one line on stderr and a non-zero exit; set
NEURO_DEPLOY_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import os
import sys

import click

from neuro_deploy.cli import (compile, crosscheck, deploy, demo, energy, models, run)
from neuro_deploy.cli.base import EXIT_FAILURE, EXIT_USAGE, cli
from neuro_deploy.errors import NeuroDeployError


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a timeout, a job killed) unwinds like Ctrl-C, so temporary files are removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn user errors into one line and a non-zero exit."""
    import signal

    from neuro_deploy.common import progress as progress_module

    args = sys.argv[1:] if argv is None else list(argv)
    if argv is None:
        signal.signal(signal.SIGTERM, _terminate)
    progress_module.verbosity = 0
    try:
        cli.main(args=args or ["--help"], prog_name="neuro-deploy", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, EOFError):  # click calls an EOFError an abort; it is a truncated input
            click.echo(f"neuro-deploy: error: unexpected end of an input file (empty or truncated): "
                       f"{exc.__context__ or 'EOFError'}", err=True)
            sys.exit(EXIT_USAGE)
        click.echo("neuro-deploy: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"neuro-deploy: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except NeuroDeployError as exc:
        click.echo(f"neuro-deploy: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("NEURO_DEPLOY_DEBUG") or progress_module.verbosity > 0:
            raise
        click.echo(f"neuro-deploy: internal error: {type(exc).__name__}: {exc} "
                   "(set NEURO_DEPLOY_DEBUG=1 for the traceback)", err=True)
        sys.exit(EXIT_FAILURE)
