"""Start os-ken with the mapping service: `python -m ryu_apps.launcher HOST PORT`.

os-ken 4.x dropped the `osken-manager` command; this is its minimal
equivalent (see PLATFORM.md). The AppManager import must come before the
config call because importing it registers the `--ofp-*` options.
"""
import logging
import os
import sys

from os_ken.lib import hub

hub.patch(thread=True)

from os_ken import cfg, log  # noqa: E402
from os_ken.base.app_manager import AppManager  # noqa: E402


def main() -> None:
    host, port = sys.argv[1], sys.argv[2]
    args = [f"--ofp-listen-host={host}", f"--ofp-tcp-listen-port={port}"]
    if os.environ.get("VPCLAB_DEBUG"):
        args.append("--verbose")
    cfg.CONF(args=args, project="os_ken")
    # errors in event handlers must reach mapping-service.log, not vanish
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.init_log()
    AppManager.run_apps(["ryu_apps.mapping_service"])


if __name__ == "__main__":
    main()
