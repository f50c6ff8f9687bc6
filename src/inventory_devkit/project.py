"""The checkout the local tools work in: its configuration, bundle and `var/` folder.

Local tools only: a deployed pipeline is told where its configuration is (the pipeline setting
`inventory.config_path`), it never looks for it.
"""

from __future__ import annotations

from pathlib import Path

from inventory_bronze import config
from inventory_bronze.config import BronzeConfig

#: the repository root (src/inventory_devkit/project.py -> ..): an editable install of the checkout
ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "conf" / "tables.yml"
VAR = ROOT / "var"
#: the Spark jars scripts/setup fetches (tools/jars/pom.xml): Delta Lake and PostgreSQL's JDBC driver
JARS = ROOT / ".cache" / "jars"


def bronze_config() -> BronzeConfig:
    """The checkout's conf/tables.yml, read once per process."""
    return config.load_once(CONFIG_PATH)
