"""The ``turret`` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each command or group; imported lazily so `turret --help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "projects": ("turret.cli.projects", "projects"),
    "serve": ("turret.cli.serve", "serve"),
    "ui": ("turret.cli.ui", "ui"),
    "landing": ("turret.cli.landing", "landing"),
    "fields": ("turret.cli.fields", "fields"),
    "cluster": ("turret.cli.cluster", "cluster"),
    "topics": ("turret.cli.topics", "topics"),
    "journeys": ("turret.cli.journeys", "journeys"),
    "pipeline": ("turret.cli.pipeline", "pipeline"),
    "up": ("turret.cli.services", "up"),
    "down": ("turret.cli.services", "down"),
    "status": ("turret.cli.services", "status"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr = COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="turret")
def cli() -> None:
    """Turret: topics and journeys from your users' prompts, self-hosted."""


def main() -> None:
    cli()
