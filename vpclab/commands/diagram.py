"""vpclab diagram CAPTURE [-o FILE]: the sequence diagram of a capture folder."""
from pathlib import Path

from vpclab.packets.diagram import draw_for_user
from vpclab.errors import EXIT_OK

NEEDS_ROOT = False


def add_parser(verbs):
    p = verbs.add_parser(
        "diagram", help="draw the sequence diagram of a capture folder",
        description="Draw the seed's kind of sequence diagram from a capture folder (made by "
                    "`vpclab capture` or `vpclab demo`): lanes for each captured VM, its virtual "
                    "router, the mapping service; arrows in time order for every packet, the "
                    "encapsulated hop between hosts and each mapping lookup.",
        epilog="example: vpclab diagram captures/seed-demo-20261126-120000 -o seed.svg")
    p.add_argument("capture", type=Path)
    p.add_argument("-o", "--output", type=Path,
                   help="FILE.svg, FILE.png or FILE.md (mermaid); default: CAPTURE/diagram.svg "
                        "and CAPTURE/diagram.md")
    return p


def main(args) -> int:
    for path in draw_for_user(args.capture, args.output):
        print(f"wrote {path}")
    return EXIT_OK
