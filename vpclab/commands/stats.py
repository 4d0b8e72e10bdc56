"""vpclab stats LAB [--json]: what the mapping service and each router did."""
import json

from vpclab.errors import EXIT_OK
from vpclab.lab import Lab
from vpclab.report import table


def add_parser(verbs):
    p = verbs.add_parser("stats", help="counters of the mapping service and of each router",
                         description="Per router: cached entries, hits (packets forwarded by "
                                     "mapping entries, from flow counters), misses (packet-ins), "
                                     "unknown targets, misses limited (dropped by the ports' "
                                     "meters), invalidations, evictions, expiries. Service: "
                                     "lookups, answers, unknown targets, changes applied.")
    p.add_argument("lab")
    p.add_argument("--json", action="store_true")
    return p


def main(args) -> int:
    stats = Lab.attach(args.lab).stats()
    if args.json:
        print(json.dumps(stats, indent=1))
        return EXIT_OK
    service = stats["service"]
    print("mapping service: " + ", ".join(f"{k} {v}" for k, v in service.items()) + "\n")
    keys = ["cached_entries", "hits", "misses", "unknown", "misses_limited", "receive_check_failed",
            "invalidations", "evictions", "expired"]
    rows = [[host, "yes" if r["connected"] else "NO"] +
            ["-" if r[k] is None else str(r[k]) for k in keys] for host, r in stats["routers"].items()]
    print(table(["ROUTER", "CONNECTED", "CACHED", "HITS", "MISSES", "UNKNOWN", "LIMITED",
                 "CHECK FAILED", "INVALIDATIONS", "EVICTIONS", "EXPIRED"], rows))
    return EXIT_OK
