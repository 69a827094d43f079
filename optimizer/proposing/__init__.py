"""Proposing: the plan store, the proposal rules, the city pipeline and the files left for people."""
