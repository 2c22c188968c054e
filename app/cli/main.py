"""Entry point of the ``exops`` console script."""

from __future__ import annotations

import typer

from app.cli.packs import list_packs, packs_app
from app.cli.run import resume, run
from app.settings import get_settings

cli = typer.Typer(
    name="exops",
    help="exops: operational exceptions through an agent graph, with auditable cases and playbooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(packs_app, name="packs")
cli.command("run")(run)
cli.command("resume")(resume)


@cli.command("start")
def start() -> None:
    """Start exops on embedded defaults: load and check the configured packs and show them."""
    settings = get_settings()
    list_packs(packs=settings.packs_dir)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
