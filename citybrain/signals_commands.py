"""``citybrain signals``: the signal configuration (NEMA phases, overlaps, detector channels) as a file.

The configuration is derived from the network model; an agency whose phase numbers or detector
channels differ writes it out, corrects it by hand, checks it, and points
``CITYBRAIN_SIGNAL_CONFIG`` at it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from citybrain.terminal import JsonFlag, emit, settings

signals_app = typer.Typer(help="Signal configuration: phases, overlaps and detector channels per signal.")

NetworkOption = Annotated[
    str | None,
    typer.Option("--network", help="Scenario whose network it is for (default CITYBRAIN_LAKE_NETWORK)."),
]


def _network(name: str | None):  # noqa: ANN202 - sim.network.Network, imported late
    from sim.network import for_scenario
    from sim.scenarios import resolve

    s = settings()
    return for_scenario(resolve(name or s.lake_network, s.sim_dir / "build")), name or s.lake_network


@signals_app.command("config")
def signals_config(
    network: NetworkOption = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the configuration derived from the network (not the file CITYBRAIN_SIGNAL_CONFIG names)."""
    from sim.signal_config import derive, render, write

    model, name = _network(network)
    configuration = derive(model, name)
    if output is None:
        sys.stdout.write(render(configuration))
        return
    write(configuration, output)
    emit(
        as_json,
        {"network": name, "signals": len(configuration.signals), "path": str(output)},
        f"{len(configuration.signals)} signals of {name} written to {output}",
    )


@signals_app.command("check")
def signals_check(
    file: Annotated[Path, typer.Argument(help="A signal configuration JSON file.")],
    network: NetworkOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a configuration against its schema and the network; exit status 2 naming the first problem."""
    from sim.signal_config import read

    model, name = _network(network)
    configuration = read(file, model)
    emit(
        as_json,
        {"path": str(file), "network": name, "signals": len(configuration.signals), "ok": True},
        f"{file}: {len(configuration.signals)} signals, consistent with {name}",
    )
