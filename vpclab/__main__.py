import sys

from vpclab.cli import main

sys.exit(main())
