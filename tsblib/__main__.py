"""`python -m tsblib`: see tsblib.cli."""
import sys

from tsblib.cli import main

sys.exit(main())
