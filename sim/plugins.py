"""Loading the plugins that add controllers, KPIs and optimisation methods to their registries.

A registry loads, on its first use, the modules installed packages declare under its
entry-point group, then the modules named in ``CITYBRAIN_CONTROLLER_MODULES``: one setting for
every kind, so a researcher's one ``.py`` file may register a controller and the KPI it is
judged by. Loading on first use rather than at import lets a plugin import the module whose
registry it adds to.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeVar

from core.errors import CitybrainError

T = TypeVar("T")


class BadPlugin(CitybrainError, ImportError):
    """A plugin module, installed or named in CITYBRAIN_CONTROLLER_MODULES, that cannot be imported."""


def load_plugins(specs: list[str]) -> list[str]:
    """Import researchers' modules — an importable name or a ``.py`` file — so that their
    registrations run. Every process that uses a registry does it (the executor's workers too),
    so a name a configured module registers works wherever a built-in name does."""
    loaded = []
    for spec in specs:
        try:
            if spec.endswith(".py"):
                path = Path(spec).resolve()
                module_name = f"citybrain_plugin_{path.stem}"
                if module_name not in sys.modules:
                    module_spec = importlib.util.spec_from_file_location(module_name, path)
                    if module_spec is None or not path.is_file():
                        raise FileNotFoundError(f"no such file: {path}")
                    module = importlib.util.module_from_spec(module_spec)
                    sys.modules[module_name] = module
                    module_spec.loader.exec_module(module)
            else:
                importlib.import_module(spec)
        except Exception as exc:  # noqa: BLE001 - a researcher's module may fail in any way; name it
            raise BadPlugin(f"CITYBRAIN_CONTROLLER_MODULES: cannot import {spec!r}: {exc}") from exc
        loaded.append(spec)
    return loaded


@functools.cache
def load_group(group: str) -> None:
    """Import the modules installed packages declare under the entry-point ``group``, then the
    configured ones; once per process and group (a failure is retried on the next call)."""
    from core.settings import Settings

    for entry in entry_points(group=group):
        try:
            entry.load()
        except Exception as exc:  # noqa: BLE001 - an installed plugin may fail in any way; name it
            raise BadPlugin(f"{group} entry point {entry.name!r} ({entry.value}): {exc}") from exc
    load_plugins(Settings().controller_module_list)


class Registry(dict[str, T]):
    """One kind's items by name: ours as their modules register them, plugins' on first lookup.

    Controllers, KPIs and optimisation methods each keep one. Look names up through
    :meth:`loaded` and :meth:`named`, which load the kind's entry-point group and the configured
    modules first, so that a plugin's name works wherever a built-in one does.
    """

    def __init__(self, group: str, unknown: type[Exception]) -> None:
        super().__init__()
        self.group = group
        self.unknown = unknown

    def loaded(self) -> dict[str, T]:
        """Every item by name, in the order registered, the plugins' included."""
        load_group(self.group)
        return self

    def named(self, name: str) -> T:
        """The item ``name``; ``unknown(name)`` (an error listing the known names) if none."""
        try:
            return self.loaded()[name]
        except KeyError:
            raise self.unknown(name) from None
