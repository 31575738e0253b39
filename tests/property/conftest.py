"""Make ``property_strategies`` (the shared strategies beside these tests) importable under
``--import-mode=importlib``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
