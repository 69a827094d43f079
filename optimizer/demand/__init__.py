"""Demand: movement flows from a scenario's own routes, and routes sampled from the lake's counts."""
