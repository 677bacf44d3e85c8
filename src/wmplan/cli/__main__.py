"""`python -m wmplan.cli ...` (and `torchrun ... -m wmplan.cli ...`): the `wmplan` command."""

import sys

from wmplan.cli.entry import main

sys.exit(main())
