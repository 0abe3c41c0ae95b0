"""What the two development sinks share as commands (`python -m
services.notifications.devmail`, `... devsms`): a `--port`, their files under
`$RAPPORT_RUN_DIR/<folder>/`, one line saying where they listen (tests wait for it), and a
clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import click

from shared.run import stop_on_signals


class Sink(Protocol):
    def start(self) -> Sink: ...

    def stop(self) -> None: ...


def run_dir() -> Path:
    return Path(os.environ.get("RAPPORT_RUN_DIR", Path(__file__).resolve().parents[2] / ".run"))


def sink_command(
    name: str,
    folder: str,
    make: Callable[[int, Path], Sink],
    describe: Callable[[int, Path], str],
    *,
    summary: str,
    port: int,
    port_envvar: str | None = None,
) -> click.Command:
    """A click command that runs `make(port, directory)` until it is told to stop."""

    @click.command(
        name=name, help=summary, context_settings={"help_option_names": ["-h", "--help"]}
    )
    @click.option(
        "--port", type=int, default=port, envvar=port_envvar, show_default=True, show_envvar=True
    )
    def command(port: int) -> None:
        directory = run_dir() / folder
        stop = stop_on_signals()
        sink = make(port, directory).start()
        click.echo(f"{name}: {describe(port, directory)}")
        stop.wait()
        sink.stop()

    return command
