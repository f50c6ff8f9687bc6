"""python -m localdlt.localfs FOLDER: compile the in-process local file system classes into FOLDER."""

import sys

from localdlt.localfs import main

sys.exit(main())
