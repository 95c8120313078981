"""The command group, its global options, and what every command prints with.

Every command reports bad input as one line on stderr and a non-zero exit; set
NEURO_DEPLOY_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console

#: bundled models by name (any command taking a checkpoint resolves them), so help shows no install path
BUNDLED_MODEL = "vlifnet_small"
BUNDLED_DEPLOYABLE = "vlifnet_small_deployable"

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_OVERFLOW = 3  # --fail-on-overflow: the run's fixed-point sums wrapped or saturated

#: the option of every command that runs a network
fail_on_overflow_option = click.option(
    "--fail-on-overflow", is_flag=True,
    help="Exit with code 3 when a sum or state wrapped or saturated during the run (after writing every output).")


def console() -> Console:
    """Tables at full width in logs and pipes, where rich would otherwise assume 80 columns."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def typed_options() -> set[str]:
    """The current command's parameters given on the command line (not defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return {name for name in ctx.params if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}


def to_json(data: object) -> str:
    """JSON for scripts: plain floats rounded to 6 significant digits, no float noise."""
    import json

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (float, np.floating)):  # JSON has no NaN or Infinity
            return float(f"{float(value):.6g}") if np.isfinite(value) else None
        return value.item() if isinstance(value, np.generic) else value
    return json.dumps(clean(data), indent=1)


def format_metrics(scores: dict[str, float]) -> str:
    return (f"PSNR {scores['psnr']:.2f} dB  SSIM {scores['ssim']:.4f}  "
            f"(Y channel: PSNR {scores['psnr_y']:.2f} dB  SSIM {scores['ssim_y']:.4f})")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuro-deploy")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no notes of files written; results and errors only.")
@click.option("-v", "--verbose", is_flag=True,
              help="A progress line for every step in logs, and the traceback of an internal error.")
@click.option("--max-memory", metavar="SIZE",
              help="Refuse runs estimated to need more memory than this (e.g. 40G; 0: no limit) "
                   "[default: 90% of the memory available; env NEURO_DEPLOY_MAX_MEMORY].")
def cli(quiet: bool, verbose: bool, max_memory: str | None) -> None:
    """Deploy trained spiking (VLIF) deraining networks to Loihi fixed point.

    Bad input is one line on stderr and exit 2, an internal error exit 1. Shell completion:
    eval "$(_NEURO_DEPLOY_COMPLETE=bash_source neuro-deploy)" (zsh_source, fish_source)."""
    from neuro_deploy.common import memory
    from neuro_deploy.common import progress as progress_module

    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other")
    progress_module.verbosity = -1 if quiet else int(verbose)
    memory.override = None
    if max_memory is not None:
        memory.parse_size(max_memory)
        memory.override = max_memory


def note(text: str, err: bool = False) -> None:
    """A note on what was written: on stderr when stdout carries JSON (`err`), nothing with -q."""
    from neuro_deploy.common import progress as progress_module

    if progress_module.verbosity >= 0:
        click.echo(text, err=err)


def warn_overflow(overflow: dict, fail: bool) -> None:
    """One warning line on stderr naming the worst synapse and its layer when the run overflowed
    (`overflow`: `neuro_deploy.run.overflow.summarize`'s object); with `fail`, exit 3."""
    from neuro_deploy.run.overflow import warning

    line = warning(overflow)
    if line is not None:
        click.echo(line, err=True)
        if fail:
            sys.exit(EXIT_OVERFLOW)


def show_energy(report: dict, fmt: str, json_out: Path | None, plot: Path | None) -> None:
    """Print an energy report as a table, CSV or JSON (or not at all: "none"), and write its JSON and
    bar chart when asked."""
    import json

    from neuro_deploy.energy import report as energy_report

    if fmt == "json":
        click.echo(json.dumps(report, indent=1))
    elif fmt == "csv":
        click.echo(energy_report.to_csv(report), nl=False)
    elif fmt == "table":
        console().print(energy_report.table(report))
        click.echo("\n".join(energy_report.summary_lines(report)))
    for path, write in ((json_out, energy_report.write_json), (plot, energy_report.plot)):
        if path is not None:
            write(report, path)
            note(f"wrote {path}", err=fmt != "table")
