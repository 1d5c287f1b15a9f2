"""The ``csc-bayes`` command: a thin layer over the public Python API.

Each feature lives in its own module here with a ``register(app)`` function; heavy libraries
(PyMC, JAX) are imported inside the commands so that ``csc-bayes --help`` stays fast. Errors and
exit codes are decided in one place, :mod:`csc_bayes.cli._common` (its docstring has the table).
"""

from __future__ import annotations

import importlib

import typer

from csc_bayes import __version__
from csc_bayes.cli._common import CliGroup, example_epilog

app = typer.Typer(
    cls=CliGroup,
    name="csc-bayes",
    help=(
        "Bayesian multilevel models of children's social care demand across English local "
        "authorities: build the panel, fit, explain variation, find excess over expected need, "
        "predict for a named authority, plot and report."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: feature modules of this package that add commands, in the order --help lists them
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "data",
    "fit",
    "answers",
    "plots",
    "report",
    "batch",
    "backtest",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"csc-bayes {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """csc-bayes: transparent, repeatable models of children's social care demand."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"csc_bayes.cli.{_name}").register(app)


def _add_examples(group: typer.Typer, prefix: tuple[str, ...] = ()) -> None:
    """End every command's --help with its worked example (``_common.EXAMPLES``)."""
    for info in group.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        if info.epilog is None:
            info.epilog = example_epilog(" ".join((*prefix, name)))
    for sub in group.registered_groups:
        _add_examples(sub.typer_instance, (*prefix, sub.name or sub.typer_instance.info.name))


_add_examples(app)


def main() -> None:
    """Entry point of the ``csc-bayes`` console script (exit codes: see ``cli._common``)."""
    app()
