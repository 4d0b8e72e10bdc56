"""The suite's own setup: only integration tests make pytest re-run itself through sudo."""
from tests.conftest import needs_sudo

UNIT = ["/src/tests/unit/test_trace.py"]
INTEGRATION = ["/src/tests/integration/test_seed.py"]


def test_a_user_running_unit_tests_is_never_sent_through_sudo():
    assert not needs_sudo(1000, True, UNIT, no_sudo=False)


def test_a_user_selecting_an_integration_test_is():
    assert needs_sudo(1000, True, UNIT + INTEGRATION, no_sudo=False)
    assert not needs_sudo(0, True, INTEGRATION, no_sudo=False)         # already root
    assert not needs_sudo(1000, False, INTEGRATION, no_sudo=False)     # no sudo to use
    assert not needs_sudo(1000, True, INTEGRATION, no_sudo=True)       # VPCLAB_NO_SUDO
