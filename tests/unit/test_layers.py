"""The layering the design promises, checked by ``scripts/check-layers`` on the real tree."""

import ast
import runpy
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-layers"


def test_no_layer_breach() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_sees_each_kind_of_breach() -> None:
    """An import of typer, sumolib's reader, a parser given a net, a lookup of a net element."""
    check = runpy.run_path(str(SCRIPT))
    tree = ast.parse(
        "import typer\n"
        "net = sumolib.net.readNet('x.net.xml')\n"
        "root = ET.parse(net_file)\n"
        "found = root.findall('junction')\n"
        "fine = ET.parse(tls_file).findall('tlLogic')\n"
        "text = ET.fromstring(net_text)\n"
    )
    assert ("typer", 1) in check["imported"](tree)
    flagged = sorted(
        {n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and check["parses_a_net"](n)}
    )
    assert flagged == [2, 3, 4, 6]
    assert check["cycles"]({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b", "a"]]
