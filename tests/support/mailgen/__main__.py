"""``python -m tests.support.mailgen``: the command the demo data's README and the benchmark run."""

import sys

from tests.support.mailgen.cli import main

sys.exit(main())
