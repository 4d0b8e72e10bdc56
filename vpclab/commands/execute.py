"""vpclab exec LAB NODE -- CMD: run a command inside a VM or host namespace."""
import os

from vpclab import lifecycle
from vpclab.errors import VpclabError
from vpclab.shell import in_netns_of
from vpclab.state import process_start_time


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
    state = lifecycle.running_lab(args.lab)
    nodes = state.nodes()
    info = nodes.get(args.node)
    if info is None:
        raise VpclabError(f"lab {args.lab!r} has no node {args.node!r}; nodes: {', '.join(nodes)}")
    if process_start_time(info["pid"]) != info["start"]:
        raise VpclabError(f"node {args.node!r} of lab {args.lab!r} is gone; "
                          f"`vpclab down {args.lab}` then `vpclab up` again")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise VpclabError("no command given; e.g. vpclab exec LAB NODE -- ip addr")
    argv = in_netns_of(info["pid"], command)
    os.execvp(argv[0], argv)
