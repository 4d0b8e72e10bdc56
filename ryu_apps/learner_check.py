"""A learner's receive check, in place of the service's own (classroom exercise 06).

The learner writes, Ryu-app style, one function (hook "check_source"):

    def check_source(router, arrival, mappings):
        # a tunnelled packet reached `router` from a source it has not verified yet
        return True             # deliver it (and trust that source), or False: drop it

`router` is the receiving virtual router (its host, its underlay IP, its VMs' ports);
`arrival` is what the packet says: the header's VNI, the outer source (the sending host's
underlay IP) and the inner source and destination; `mappings` is the mapping service's
whole table, each with the host (and its underlay IP) the VM lives on.

The service asks it for every tunnelled packet its router cannot match yet, and carries
the verdict out as its own check would (vpclab.router.pipeline.decide_verdict). A failed call or
a malformed answer drops the packet: a receive check fails closed.
"""
from __future__ import annotations

from ryu_apps.learner_part import BadAnswer, LearnerPart, NoAnswer, mapping_argument, \
    router_argument, short
from vpclab.router.mapping import MappingTable
from vpclab.router.pipeline import Miss, Router


def parse_verdict(result: object) -> bool:
    if not isinstance(result, bool):
        raise BadAnswer(f"check_source returns True (deliver the packet) or False (drop it), "
                        f"not {short(result)}")
    return result


def arrival_argument(miss: Miss) -> dict:
    return {"vni": miss.vni, "outer_src": str(miss.tun_src), "src_ip": str(miss.target),
            "src_mac": miss.eth_src, "dst_ip": str(miss.destination), "dst_mac": miss.eth_dst}


class LearnerReceiveCheck(LearnerPart):
    HOOK = "check_source"

    def accepts(self, router: Router, miss: Miss, table: MappingTable) -> bool:
        """The learner's verdict on one tunnelled packet (False if it gave none)."""
        where = dict(host=router.host, claimed_source=str(miss.target),
                     outer_source=str(miss.tun_src), vni=miss.vni)
        try:
            verdict, output = self.ask(
                "check_source", (router_argument(router, self.underlay_ip(router.host)),
                                 arrival_argument(miss), [mapping_argument(m) for m in table]),
                parse_verdict, **where)
        except NoAnswer:
            return False
        self.answered("check_source", output, **where, accepted=verdict)
        return verdict
