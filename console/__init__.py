"""The operator console: its HTTP API, pages and the map's layers."""
