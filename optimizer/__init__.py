"""The optimizer: signal plans, their safety rules, and (to come) the methods that make them.

- :mod:`optimizer.plan` — the plan model and its published contract (``control.plan.proposed.v1``);
- :mod:`optimizer.safety` — the rules every plan passes before it is published or applied;
- :mod:`optimizer.sumo_tls` — plans as SUMO tlLogic files, and applied to a running simulation;
- :mod:`optimizer.webster` — Webster's cycle and splits from critical flow ratios.
"""
