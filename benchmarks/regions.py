"""A lake network searched as one against the same network searched region by region, in one run.

Demand comes from a fused lake (default: the one ``make demo`` leaves in ``var/demo``), over its
newest consecutive fused quarter hours (at most an hour, as the ``citybrain_optimize`` DAG picks
them). Both searches get the same budget on the same executor; both plans are then run on the
whole network, with the current programs (``fixed``), on seeds 1..K. Prints one JSON object;
progress goes to stderr.
Usage: python benchmarks/regions.py [--lake var/demo/lake] [--region-signals 4]
       [--budget-minutes 2.5] [--seeds 5]
"""

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and its lake.py would hide the lake package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402

from core.settings import Settings  # noqa: E402
from lake.delta import filled_slots  # noqa: E402
from lake.tables import DEMAND_TABLES, latest_period  # noqa: E402
from optimizer.demand.lake_counts import lake_scenario  # noqa: E402
from optimizer.plans.sumo_programs import render_tls  # noqa: E402
from optimizer.proposing.pipeline import METHOD, optimize_by_region  # noqa: E402
from optimizer.search.optimize import mean_delays, optimize  # noqa: E402
from optimizer.search.regions import partition  # noqa: E402
from sim.executor import Trial, open_executor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=ROOT / "var" / "demo" / "lake")
    parser.add_argument("--region-signals", type=int, default=4)
    parser.add_argument("--budget-minutes", type=float, default=2.5)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    console = Console(stderr=True)
    period = latest_period(filled_slots(args.lake, DEMAND_TABLES), None, timedelta(hours=1))
    if period is None:
        parser.error(f"--lake {args.lake}: expected a lake with fused gold counts (run `make demo` first)")
    budget_s = args.budget_minutes * 60
    with tempfile.TemporaryDirectory(prefix="citybrain-regions-") as work:
        settings = Settings(var_dir=Path(work), lake_uri=str(args.lake.resolve()))
        city = lake_scenario(settings, *period, Path(work) / "demand")
        regions = partition(city.net_file, args.region_signals)
        result: dict = {"scenario": city.name, "budget_s": budget_s}
        with open_executor(settings) as executor:
            console.log(f"searching {city.name} as one network ({budget_s:.0f} s)")
            began = time.perf_counter()
            whole = optimize(
                city, METHOD, executor, budget_s=budget_s, demand_dir=settings.sim_dir / "demand"
            )
            result["whole"] = {
                "wall_s": round(time.perf_counter() - began, 1),
                "evaluations": whole.evaluations,
            }
            console.log(f"searching its {len(regions)} regions ({budget_s:.0f} s each, at once)")
            began = time.perf_counter()
            merged, searched = optimize_by_region(settings, city, period, regions, executor, budget_s)
            result["regions"] = {
                "wall_s": round(time.perf_counter() - began, 1),
                "evaluations": merged.evaluations,
                "each": [
                    {"name": r.name, "signals": list(r.signals), "evaluations": s.evaluations}
                    for r, s in searched
                ],
            }
            plans = {
                "fixed": ("fixed", {}),
                "whole": ("signal-plan", {"tls_xml": render_tls(whole.plan)}),
                "regions": ("signal-plan", {"tls_xml": render_tls(merged.plan)}),
            }
            seeds = list(range(1, args.seeds + 1))
            console.log(f"running the current programs and both plans on seeds 1–{args.seeds}")
            trials = [Trial(city, name, seed, options) for name, options in plans.values() for seed in seeds]
            delays = dict(zip(plans, mean_delays(executor, trials, len(seeds)), strict=True))
    result["resco_delay"] = {label: round(delay, 2) for label, delay in delays.items()}
    result["regions_vs_whole"] = round(delays["regions"] / delays["whole"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
