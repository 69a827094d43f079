"""Incidents: a plan for the signals around a closed road while it is closed, and the way back."""
