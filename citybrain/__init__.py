"""citybrain: a city traffic brain. This package holds the CLI and the settings object."""

__version__ = "0.1.0"
