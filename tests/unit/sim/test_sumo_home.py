"""libsumo imported through :func:`sim.sumo_home.import_libsumo`: stdout stays clean and only the
measured pyarrow warning is hidden."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
IMPORT = "from sim.sumo_home import import_libsumo; import_libsumo(); import_libsumo()"


def _python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter (libsumo prints its warning once per process, on import)."""
    env = dict(os.environ)
    env.pop("LIBSUMO_AS_TRACI", None)  # set to "quiet" it would skip libsumo's check altogether
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_installed_libsumo_imports_without_the_pyarrow_warning():
    """The real libsumo with the installed pyarrow. Should this fail after a pyarrow or SUMO
    upgrade, measure again (see ``sim.sumo_home._ARROW_WARNING``) before widening the filter."""
    done = _python(IMPORT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "pyarrow" not in done.stderr and "libarrow" not in done.stderr


def _fake_libsumo(root: Path, pyarrow_version: str, arrow_so_version: str) -> Path:
    """A ``libsumo`` that prints what the real one prints (its ``__init__``'s two ``print``
    calls, verbatim) and one more line."""
    package = root / "libsumo"
    package.mkdir(parents=True)
    package.joinpath("__init__.py").write_text(
        textwrap.dedent(f"""
            pyarrow_version, sumo_arrow_so_version = {pyarrow_version!r}, {arrow_so_version!r}
            print("Warning! pyarrow is installed with version %s which might be incompatible with libsumo "
                  "which is compiled against libarrow%s." % (pyarrow_version, sumo_arrow_so_version))
            print(" Try to uninstall pyarrow or install a matching pyarrow version, "
                  "if you encounter problems.")
            print("something else libsumo says")
        """)
    )
    return root


def test_only_the_measured_pair_is_hidden_and_the_rest_goes_to_stderr(tmp_path):
    measured = _python(IMPORT, _fake_libsumo(tmp_path / "measured", "26.0.1", "2300"))
    assert measured.returncode == 0, measured.stderr
    assert measured.stdout == ""
    assert measured.stderr == "something else libsumo says\n"

    unmeasured = _python(IMPORT, _fake_libsumo(tmp_path / "unmeasured", "27.0.0", "2300"))
    assert unmeasured.returncode == 0, unmeasured.stderr
    assert unmeasured.stdout == ""
    assert "pyarrow is installed with version 27.0.0" in unmeasured.stderr
    assert unmeasured.stderr.endswith("something else libsumo says\n")
