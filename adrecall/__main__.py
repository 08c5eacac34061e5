import sys

from adrecall.cli import main

sys.exit(main())
