"""vpclab run FILE: up, the interactive Mininet CLI with display names, then down."""
from vpclab.commands.up import add_lab_options
from vpclab.errors import EXIT_OK
from vpclab.lab import Lab


def add_parser(verbs):
    p = verbs.add_parser("run", help="start a lab with an interactive Mininet CLI",
                         description="Bring the lab up in the foreground and open the Mininet "
                                     "CLI, where display names work (ZIGI-VM1 ping ZIGI-VM2). "
                                     "The lab is removed when the CLI exits (exit, Ctrl-D).")
    add_lab_options(p)
    return p


def main(args) -> int:
    code = Lab(args.file, name=args.name, mode=args.mode).interact()
    return EXIT_OK if code == 0 else code
