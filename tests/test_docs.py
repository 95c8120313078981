"""The documents that describe the tool are checked against the tool."""

from pathlib import Path

from neuro_deploy.cli.reference import markdown

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_is_the_commands_own_help():
    written = (REPO / "docs" / "cli.md").read_text()
    assert written == markdown(), "docs/cli.md differs from the command line's help: run `make docs`"


def test_cli_reference_covers_every_command_and_option():
    from neuro_deploy.cli import cli

    text = (REPO / "docs" / "cli.md").read_text()
    for name, command in cli.commands.items():
        assert f"## `neuro-deploy {name}`" in text
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in text, f"{name} {opt} missing from docs/cli.md"
