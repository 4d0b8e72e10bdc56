"""The Geneve option that carries ENI identity, as OVS and os-ken need to see it.

OVS matches a Geneve option only through a TLV map (option class/type/length
-> one of its `tun_metadata` fields), which a controller installs with the
Nicira NXT_TLV_TABLE_MOD message, as ovn-controller does for OVN's port keys.
os-ken 4.2 has neither that message nor the `tun_metadata0` field, so both
are added here, and nowhere else knows how.
"""
from __future__ import annotations

import struct

from os_ken.lib import type_desc
from os_ken.ofproto import ofproto_v1_3, oxm_fields

from vpclab.router.pipeline import ENI_FIELD, ENI_OPTION_CLASS, ENI_OPTION_LEN, ENI_OPTION_TYPE

NXT_TLV_TABLE_MOD = 24            # Nicira experimenter message subtype
NXTTMC_ADD = 0
NXM_NX_TUN_METADATA0 = 40         # NXM_1 field number of tun_metadata0
NXTTMFC_ALREADY_MAPPED = 20       # its experimenter error type: the map is already there


class _AnyLength(int):
    """OVS reports a tun_metadata value trimmed to its significant bytes (a flow's
    `set_field:0x2->tun_metadata0` comes back 1 byte long), while os-ken insists
    that every value has its field's size. This size is the option's 8 bytes where
    os-ken writes a header, and agrees with any length where it checks one."""

    def __ne__(self, other) -> bool:
        return False


class _OptionValue(type_desc.TypeDescr):
    """The option as an integer: written as 8 bytes, read at whatever length OVS used."""

    size = _AnyLength(ENI_OPTION_LEN)

    @staticmethod
    def to_user(binary: bytes) -> int:
        return int.from_bytes(binary, "big")

    @staticmethod
    def from_user(value: int) -> bytes:
        return value.to_bytes(ENI_OPTION_LEN, "big")


def register_field() -> None:
    """Teach os-ken's OpenFlow 1.3 codec `tun_metadata0`, for matches, packet-ins,
    flow statistics, set-field and move actions. Idempotent."""
    if any(f.name == ENI_FIELD for f in ofproto_v1_3.oxm_types):
        return
    ofproto_v1_3.oxm_types.append(oxm_fields.NiciraExtended1(ENI_FIELD, NXM_NX_TUN_METADATA0, _OptionValue))
    oxm_fields.generate(ofproto_v1_3.__name__)


def tlv_map_add(datapath):
    """NXT_TLV_TABLE_MOD ADD {class, type, len} -> tun_metadata0, as raw bytes in an
    experimenter message (what `ovs-ofctl add-tlv-map` sends)."""
    parser = datapath.ofproto_parser
    body = struct.pack("!H6x", NXTTMC_ADD) + struct.pack(
        "!HBBH2x", ENI_OPTION_CLASS, ENI_OPTION_TYPE, ENI_OPTION_LEN, 0)   # index 0 = tun_metadata0
    return parser.OFPExperimenter(datapath, experimenter=0x00002320, exp_type=NXT_TLV_TABLE_MOD,
                                  data=body)


def is_already_mapped(msg) -> bool:
    """A router reconnecting to a restarted service already has the map: not an error."""
    return msg.type == 0xFFFF and getattr(msg, "experimenter", None) == 0x00002320 and \
        getattr(msg, "exp_type", None) == NXTTMFC_ALREADY_MAPPED
