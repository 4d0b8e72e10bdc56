"""`vpclab`: the command line. One module per verb in `vpclab.commands`.

User mistakes surface as a message and exit code 2 (bad input/environment)
or 1 (a check failed); never as a traceback.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from vpclab.commands import (
    capture, compare, demo, diagram, down, execute, flows, lab, mapping, move, run, stats, status,
    trace, up, validate, vm,
)
from vpclab.errors import EXIT_BAD_INPUT, VpclabError
from vpclab.model.names import check_lab_name

VERBS = [validate, up, status, execute, down, run, capture, compare, diagram, mapping, stats,
         flows, trace, move, vm, demo, lab]

EPILOG = """examples:
  vpclab demo                                   the seed end to end: up, capture, ping, compare, down
  vpclab validate topologies/multi-vpc.yaml     check a topology file (no root needed)
  vpclab up topologies/seed.yaml                start a lab in the background
  vpclab exec seed ZIGI-VM1 -- ping -c 1 10.0.0.185
  vpclab capture seed --on ZIGI-VM1,ZIGI-VM2 -o cap -- ZIGI-VM1 ping -c 1 10.0.0.185
  vpclab compare cap traces/seed                does the capture show the seed's order?
  vpclab diagram cap                            its sequence diagram (cap/diagram.svg, .md)
  vpclab down seed                              remove the lab and everything it made

exit codes: 0 ok, 1 a check failed, 2 bad input or environment"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpclab", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Emulate the inside of an AWS VPC on one Linux machine: hosts, virtual "
                    "routers (Open vSwitch), VMs (Mininet) and the mapping service (os-ken).")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for verb in VERBS:
        sub = verb.add_parser(verbs)
        sub.set_defaults(func=verb.main, needs_root=getattr(verb, "NEEDS_ROOT", True))
    return parser


def ensure_root(argv: list[str]) -> None:
    """Re-run this same command through sudo, with this same interpreter."""
    if os.geteuid() == 0:
        return
    if shutil.which("sudo") is None:
        raise VpclabError("this command needs root (network namespaces, Open vSwitch): "
                          "run it as root")
    # no bytecode written as root into the user's checkout (they could not delete it)
    os.execvp("sudo", ["sudo", "--", "env", "PYTHONDONTWRITEBYTECODE=1", sys.executable, "-m",
                       "vpclab", *argv])


class PipeSafeStream:
    """stdout that goes quiet, instead of raising, once its reader is gone
    (`vpclab status | head -1`): what vpclab was doing still finishes properly."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def _silence(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not isinstance(sys.stdout, PipeSafeStream):
        sys.stdout = PipeSafeStream(sys.stdout)
    parser = build_parser()
    # what follows `--` is a command for a node (exec, capture), never vpclab's options
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    if cut < len(argv):
        args.command = argv[cut + 1:]
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        if getattr(args, "lab", None) is not None:   # it becomes a path: check it first
            check_lab_name(args.lab)
        if args.needs_root:
            ensure_root(argv)
        return args.func(args)
    except VpclabError as exc:
        print(f"vpclab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vpclab: interrupted", file=sys.stderr)
        return 130
