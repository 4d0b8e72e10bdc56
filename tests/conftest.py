"""Integration tests need root; a user with sudo gets pytest re-run through sudo."""
import os
import shutil
import sys


def pytest_configure(config):
    if os.geteuid() != 0 and shutil.which("sudo") and not os.environ.get("VPCLAB_NO_SUDO"):
        print("vpclab tests: root needed for the integration tests; re-running with sudo",
              file=sys.stderr)
        # as root, write nothing into the user's checkout (bytecode caches would be root's)
        os.execvp("sudo", ["sudo", "--", "env", "PYTHONDONTWRITEBYTECODE=1", sys.executable,
                           "-m", "pytest", *config.invocation_params.args])
