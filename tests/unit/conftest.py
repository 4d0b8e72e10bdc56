from pathlib import Path

import pytest

from vpclab.router.inventory import Inventory
from vpclab.model.validation import load_topology

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture
def multi_vpc():
    return load_topology(TOPOLOGIES / "multi-vpc.yaml")


@pytest.fixture
def seed():
    return load_topology(TOPOLOGIES / "seed.yaml")


def routers_for(topology):
    inventory = Inventory.from_topology(topology)
    return inventory.routers(), inventory.table()
