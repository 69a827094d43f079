"""The files a finished optimisation leaves for people, beside the store the controllers read.

- ``<scenario>-<method>.json``: scenario, method, the search (budget, evaluations, convergence),
  the evaluation (KPIs of both, paired differences) and the plan's signals or the policy's
  parameters;
- ``<scenario>-<method>.tls.add.xml`` (a plan): the plan as a SUMO additional file, to load with
  ``sumo -a`` or run with the ``signal-plan`` controller.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import write_atomic
from optimizer.plans.model import NetworkPlan
from optimizer.plans.sumo_programs import write_tls

if TYPE_CHECKING:
    from optimizer.search.optimize import Optimized


def file_stem(scenario: str, method: str) -> str:
    """``<scenario>-<method>``: a ``.sumocfg`` file by its stem, a scenario name with ``_`` for ``/``."""
    name = Path(scenario).stem if scenario.endswith(".sumocfg") else scenario.replace("/", "_")
    return f"{name}-{method}"


def _signals(plan: NetworkPlan) -> list[dict[str, Any]]:
    return [
        {
            "tls_id": signal.tls_id,
            "cycle_s": signal.cycle_s,
            "offset_s": signal.offset_s,
            "phases": [phase.to_record() for phase in signal.phases],
        }
        for signal in plan.signals
    ]


def write_results(
    folder: Path, scenario: str, found: Optimized, evaluation: dict[str, Any], budget_s: float
) -> dict[str, Any]:
    """Write the files of ``found`` (searched within ``budget_s``, judged by ``evaluation``) into
    ``folder``; returns the JSON document as written, plus ``plan_json``: where it was written."""
    stem = file_stem(scenario, found.method)
    search = {k: v for k, v in found.to_dict().items() if k not in ("tls", "policy", "format")}
    search["budget_s"] = budget_s
    document: dict[str, Any] = {
        "scenario": scenario,
        "method": found.method,
        "search": search,
        "evaluation": evaluation,
    }
    if found.plan is not None:
        document["signals"] = _signals(found.plan)
        document["tls_file"] = str(write_tls(found.plan, folder / f"{stem}.tls.add.xml"))
    if found.policy is not None:
        document["policy"] = found.policy
    plan_json = write_atomic(folder / f"{stem}.json", json.dumps(document, indent=1, default=str) + "\n")
    return {**document, "plan_json": str(plan_json)}
