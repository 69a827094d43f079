"""Where SUMO lives: the ``eclipse-sumo`` package, whose folder is a complete ``SUMO_HOME``.

Unset, libsumo points ``SUMO_HOME`` at a folder without ``tools/`` and ``sumo-rl`` refuses
to import, so every SUMO-facing module calls :func:`ensure_sumo_home` first.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import sys
from pathlib import Path


@functools.cache
def ensure_sumo_home() -> Path:
    """Set ``SUMO_HOME`` to the installed SUMO (unless the user set a valid one) and return it.

    Also points SUMO's bundled PROJ at the ``proj.db`` the wheel ships: PROJ does not find it
    by itself (``pj_obj_create: Cannot find proj.db``) and then cannot resolve ``EPSG:``
    codes. pyproj keeps using its own data, so this is safe for the whole process.
    """
    configured = os.environ.get("SUMO_HOME")
    if configured and (Path(configured) / "bin").is_dir():
        home = Path(configured)
    else:
        import sumo

        home = Path(sumo.SUMO_HOME)
        os.environ["SUMO_HOME"] = str(home)
    proj_dir = home / "data" / "proj"
    if (proj_dir / "proj.db").exists():
        os.environ.setdefault("PROJ_LIB", str(proj_dir))  # read by the PROJ 6 the wheel bundles
        os.environ.setdefault("PROJ_DATA", str(proj_dir))  # its name from PROJ 9.1 on
    return home


# libsumo's ``__init__`` prints (to stdout, no ``warnings``) this pair of lines whenever the
# installed pyarrow's major.minor differs from the Arrow its wheel bundles: libsumo 1.28 bundles
# libarrow 23.0 (``buildConfig.ARROW_SO_VERSION`` 2300) and we pin pyarrow 26. The two never meet:
# the wheel loads its own hash-renamed copy (``libsumo.libs/libarrow-bff6286d.so.2300.1.0``),
# Python loads both extensions RTLD_LOCAL, and libsumo's API passes no Arrow objects. Measured
# with pyarrow 26.0.1 imported first (issue 12): resco/cologne1, seed 1, fixed and max-pressure,
# gave the same KPIs to every digit over libsumo and over TraCI, and SUMO's own Parquet writer
# (``--fcd-output x.parquet``, the one user of that Arrow) wrote from libsumo a table equal to
# the ``sumo`` binary's. Only that measured pair is hidden: another pyarrow or SUMO shows it again.
_ARROW_WARNING = re.compile(
    r"Warning! pyarrow is installed with version 26\.\d+\.\d+ which might be incompatible with "
    r"libsumo which is compiled against libarrow2300\.\n"
    r" Try to uninstall pyarrow or install a matching pyarrow version, if you encounter problems\.\n"
)


def import_libsumo():  # noqa: ANN201 - the libsumo module
    """libsumo, imported quietly: what it prints goes to stderr, not stdout where it would
    corrupt ``--json`` output, less its pyarrow warning (see ``_ARROW_WARNING``)."""
    ensure_sumo_home()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            import libsumo
    finally:
        sys.stderr.write(_ARROW_WARNING.sub("", printed.getvalue(), count=1))
    return libsumo


def _seconds(t: float) -> str:
    """A time for SUMO's command line: ``25200`` or ``25200.5`` (never ``1e+06``)."""
    return str(int(t)) if float(t).is_integer() else repr(float(t))


def run_options(begin: float, end: float, seed: int, additional_files: list[str]) -> list[str]:
    """The options every citybrain run gives SUMO: window, seed, teleporting off (as RESCO
    runs), quiet logs, and the additional files (which replace the configuration's own, so
    callers pass those too)."""
    return [
        "--begin", _seconds(begin),
        "--end", _seconds(end),
        "--seed", str(seed),
        "--time-to-teleport", "-1",
        "--no-step-log", "true",
        "--no-warnings", "true",
        "--duration-log.disable", "true",
        "--additional-files", ",".join(additional_files),
    ]  # fmt: skip


def sumo_binary(name: str) -> str:
    """The path of a SUMO program (``sumo``, ``netconvert``, ``sumo-gui``...)."""
    path = ensure_sumo_home() / "bin" / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is not in the installed SUMO ({path.parent})")
    return str(path)
