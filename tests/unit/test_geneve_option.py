"""The Geneve ENI option as os-ken must encode it for OVS (no switch needed: OVS's own
ovs-ofctl decodes the bytes)."""
import subprocess
from types import SimpleNamespace

from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from ryu_apps import geneve_option
from ryu_apps.ofmsg import flow_mod
from tests.unit.binaries import needs_binary
from vpclab.router.pipeline import CHECK, ENI_FIELD, Flow

geneve_option.register_field()
DECODED_BY_OVS = needs_binary("ovs-ofctl", "decodes the bytes as OVS reads them")
DATAPATH = SimpleNamespace(ofproto=ofproto_v1_3, ofproto_parser=parser, id=1)


def wire(msg) -> bytes:
    msg.xid = 1
    msg.serialize()
    return bytes(msg.buf)


def ofp_print(data: bytes) -> str:
    return subprocess.run(["ovs-ofctl", "ofp-print", data.hex()], capture_output=True, text=True).stdout


@DECODED_BY_OVS
def test_the_tlv_map_message_is_what_ovs_ofctl_add_tlv_map_sends():
    text = ofp_print(wire(geneve_option.tlv_map_add(DATAPATH)))
    assert "NXT_TLV_TABLE_MOD" in text and "ADD mapping table" in text
    assert " 0xffff  0x80       8  tun_metadata0" in text


@DECODED_BY_OVS
def test_setting_and_moving_the_option_encode_for_ovs():
    flow = Flow(CHECK, 100, {"metadata": 1001}, (("set", ENI_FIELD, 2), ("move", "reg0", ENI_FIELD, 32, 0, 32),
                                                 ("output", 1)))
    text = ofp_print(wire(flow_mod(DATAPATH, flow)))
    assert "set_field:0x2->tun_metadata0" in text
    assert "move:NXM_NX_REG0[]->NXM_NX_TUN_METADATA0[32..63]" in text


def test_the_field_reads_back_at_any_length_ovs_reports():
    """OVS reports set_field:0x2->tun_metadata0 one byte long; os-ken alone refuses that."""
    one_byte = bytes.fromhex("0019001000015001" "02" + "00" * 7)
    assert parser.OFPActionSetField.parser(one_byte, 0).key == ENI_FIELD
    assert parser.OFPActionSetField.parser(one_byte, 0).value == 2
    match = parser.OFPMatch(metadata=1001, tun_metadata0=(1 << 32, 0xFFFFFFFF << 32))
    buf = bytearray()
    match.serialize(buf, 0)
    assert dict(parser.OFPMatch.parser(bytes(buf), 0).items())[ENI_FIELD] == (1 << 32, 0xFFFFFFFF << 32)


def test_only_the_already_mapped_error_is_expected():
    def error(exp_type, experimenter=0x2320):
        return SimpleNamespace(type=0xFFFF, exp_type=exp_type, experimenter=experimenter)
    assert geneve_option.is_already_mapped(error(20))
    assert not geneve_option.is_already_mapped(error(21))
    assert not geneve_option.is_already_mapped(error(20, experimenter=0x1))
    assert not geneve_option.is_already_mapped(SimpleNamespace(type=5, code=20))
