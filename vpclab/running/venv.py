"""Run a script with this checkout's .venv, whichever `python` started it.

`sudo python examples/first_ping.py` starts Debian's (or any) python3, which lacks
os-ken and scapy; the script's first lines import this module (standard library
only, so any Python 3 can) and call `use_checkout_venv()`, which re-runs the same
script with `.venv/bin/python`. As root, bytecode is not written: a `__pycache__`
owned by root would land in the user's checkout.
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]      # vpclab/running/ -> the checkout
VENV = REPO / ".venv"


def use_checkout_venv() -> None:
    """Re-exec this script with the checkout's venv python, unless it already runs there."""
    sys.dont_write_bytecode = True
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    python = VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"vpclab: {python} is missing; run {REPO / 'setup.sh'} first")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    os.execve(str(python), [str(python), *sys.argv], env)
