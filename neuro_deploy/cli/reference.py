"""docs/cli.md, written from the command line's own help so the reference cannot drift from the tool:
`python -m neuro_deploy.cli.reference > docs/cli.md` (`make docs`); a test compares the two."""

from __future__ import annotations

import click

from neuro_deploy.cli import cli

WIDTH = 100
INTRO = """# Command reference

Generated from `neuro-deploy --help` and each command's `--help` by `make docs`
(`python -m neuro_deploy.cli.reference > docs/cli.md`); `tests/test_docs.py` fails when the two differ.
What the commands do together is in the README and `docs/guide.md`.
"""


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> tuple[str, click.Context]:
    ctx = click.Context(command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH,
                        help_option_names=["-h", "--help"])
    return command.get_help(ctx), ctx


def _sections(command: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    text, ctx = _help(command, path, parent)
    out = [f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n"]
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            out += _sections(command.get_command(ctx, name), [*path, name], ctx)
    return out


def markdown() -> str:
    """Every command's help, the group's first, then the commands in alphabetical order."""
    return "\n".join([INTRO, *_sections(cli, ["neuro-deploy"], None)])


if __name__ == "__main__":
    click.echo(markdown(), nl=False)
