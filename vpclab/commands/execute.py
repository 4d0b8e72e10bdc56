"""vpclab exec LAB NODE -- CMD: run a command inside a VM or host namespace."""
import os

from vpclab.errors import VpclabError
from vpclab.lab import Lab


def add_parser(verbs):
    p = verbs.add_parser("exec", help="run a command inside a VM or physical host",
                         description="Run CMD in the network namespace of NODE (a VM or host "
                                     "by its display name). CMD's output and exit code pass "
                                     "through.",
                         epilog="example: vpclab exec seed ZIGI-VM1 -- ping -c 1 10.0.0.185")
    p.add_argument("lab")
    p.add_argument("node", help="display name, e.g. ZIGI-VM1 or host1")
    p.add_argument("command", nargs="...", help="-- then the command (options first)")
    return p


def main(args) -> int:
    lab = Lab.attach(args.lab)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise VpclabError("no command given; e.g. vpclab exec LAB NODE -- ip addr")
    argv = lab.command(args.node, *command)
    os.execvp(argv[0], argv)      # the command owns the terminal: output and exit code pass through
