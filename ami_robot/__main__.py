import sys

from ami_robot.cli import main

sys.exit(main())
