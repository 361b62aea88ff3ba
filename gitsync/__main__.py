import sys

from gitsync.cli.main import main

sys.exit(main())
