"""vpclab run FILE: up, the interactive Mininet CLI with display names, then down."""
from vpclab import lifecycle
from vpclab.commands.up import add_lab_options
from vpclab.errors import EXIT_OK, VpclabError


def add_parser(verbs):
    p = verbs.add_parser("run", help="start a lab with an interactive Mininet CLI",
                         description="Bring the lab up in the foreground and open the Mininet "
                                     "CLI, where display names work (ZIGI-VM1 ping ZIGI-VM2). "
                                     "The lab is removed when the CLI exits (exit, Ctrl-D).")
    add_lab_options(p)
    return p


def main(args) -> int:
    topology, text = lifecycle.prepare(args.file, args.name, args.mode)
    state, proc = lifecycle.start_runner(topology, text, interactive=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        code = proc.wait()
    finally:
        lifecycle.down(state.name)
    failed = [e for e in state.progress.read() if e["event"] == "failed"]
    if failed:
        raise VpclabError(failed[-1]["error"])
    return EXIT_OK if code == 0 else code
