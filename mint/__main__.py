"""`python -m mint`: the `mint` command."""

import sys

from mint.cli import main


sys.exit(main())
