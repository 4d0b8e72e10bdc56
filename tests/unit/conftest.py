from pathlib import Path

import pytest

from vpclab.mapping import MappingTable
from vpclab.pipeline import routers_from_plan
from vpclab.plan import plan_fabric
from vpclab.validation import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture
def multi_vpc():
    return load_topology(TOPOLOGIES / "multi-vpc.yaml")


@pytest.fixture
def seed():
    return load_topology(TOPOLOGIES / "seed.yaml")


def routers_for(topology):
    table = MappingTable.from_topology(topology)
    return routers_from_plan(plan_fabric(topology), table), table
