"""Entry point of the ``exops`` console script."""

from __future__ import annotations

import typer

from app.cli.bench import bench
from app.cli.evals import eval_app
from app.cli.llm import llm_app
from app.cli.memory import memory_app
from app.cli.packs import packs_app
from app.cli.run import resume, run
from app.cli.server import db_app, keys_app, serve, start, tenants_app, worker
from app.cli.simulate import simulate

cli = typer.Typer(
    name="exops",
    help="exops: operational exceptions through an agent graph, with auditable cases and playbooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(packs_app, name="packs")
cli.add_typer(db_app, name="db")
cli.add_typer(tenants_app, name="tenants")
cli.add_typer(keys_app, name="keys")
cli.add_typer(memory_app, name="memory")
cli.add_typer(eval_app, name="eval")
cli.add_typer(llm_app, name="llm")
cli.command("run")(run)
cli.command("resume")(resume)
cli.command("serve")(serve)
cli.command("worker")(worker)
cli.command("start")(start)
cli.command("simulate")(simulate)
cli.command("bench")(bench)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
