"""The one base of every error a user can act on.

The CLI prints these as one line naming what was wrong (exit status 2) instead of a
traceback; anything else is a bug and keeps its traceback.
"""


class CitybrainError(Exception):
    """A failure caused by input, configuration or an unreachable service, not by our code."""
