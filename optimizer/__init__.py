"""The optimizer: demand → methods → search by simulation → safe plans proposed to an operator.

- :mod:`optimizer.plans` — the plan model, its safety rules, plans as SUMO programs;
- :mod:`optimizer.demand` — movement flows from a scenario's own routes, or routes from the lake's counts;
- :mod:`optimizer.methods` — webster, green wave, coordinated, adaptive and SUMO's own tools, each a
  registered controller;
- :mod:`optimizer.search` — CMA-ES within a budget, one method's search, region by region (the
  simulations run on :mod:`sim.executor`);
- :mod:`optimizer.proposing` — the plan store, proposing, the city pipeline, the result files;
- :mod:`optimizer.resco_benchmark` — every method on the eight RESCO scenarios.
"""
