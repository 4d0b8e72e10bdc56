"""Fuzzing the topology loader: whatever a file holds, the answer is a Topology or a
TopologyError listing issues, never another exception (a traceback for the user)."""
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpclab.model.validation import TopologyError, parse_topology

KEYS = ["name", "description", "encap", "mapping", "hosts", "vpcs", "vms", "mode", "idle_timeout",
        "max_entries", "miss_rate", "underlay_ip", "cidr", "vni", "vpc", "host", "ip", "mac", "eni",
        "host1", "host2", "ZIGI-VPC1", "ZIGI-VM1", "bogus"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**25), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(
                        ["seed", "geneve", "vxlan", "preload", "on-demand", "10.0.0.0/24",
                         "10.0.0.148", "192.168.100.1", "02:00:5e:ad:58:40", "eni-0b2c", "host1",
                         "ZIGI-VPC1", "10.0.0.0/33", "01:00:5e:00:00:01"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8))
def test_any_structure_gives_a_topology_or_listed_issues(raw):
    try:
        parse_topology(yaml.safe_dump(raw), "fuzz.yaml")
    except TopologyError as exc:
        assert exc.issues and all(str(i) for i in exc.issues)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_topology_or_listed_issues(text):
    try:
        parse_topology(text, "fuzz.yaml")
    except TopologyError as exc:
        assert exc.issues


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))


SEED = yaml.safe_load(open(__file__.rsplit("/tests/", 1)[0] + "/topologies/multi-vpc.yaml"))
SEED_PATHS = [p for p in _paths(SEED) if p]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_valid_topology_with_one_part_replaced_never_crashes(data):
    """Mutation fuzzing: one leaf or section of a valid file replaced by anything."""
    import copy
    raw = copy.deepcopy(SEED)
    path = data.draw(st.sampled_from(SEED_PATHS))
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = data.draw(VALUES)
    try:
        parse_topology(yaml.safe_dump(raw), "fuzz.yaml")
    except TopologyError as exc:
        assert exc.issues and all(i.path for i in exc.issues if i.message != "the file is empty")
