"""Modules that find the checkout from their own place find the real one (the packages
moved them one folder down once: examples, the runner and the service depend on it)."""
import pytest

from vpclab.running import fabric, lifecycle, venv


@pytest.mark.parametrize("module", [fabric, lifecycle, venv])
def test_repo_is_the_checkout(module):
    assert (module.REPO / "setup.sh").is_file() and (module.REPO / "vpclab" / "__init__.py").is_file()
