import sys

from inventory_bronze.cli import main

sys.exit(main())
