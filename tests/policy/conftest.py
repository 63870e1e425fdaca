"""The policy pack's modules are imported the way its runtime imports them: from policy/ on sys.path."""

import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parents[2] / "policy"
if str(PACK_DIR) not in sys.path:
    sys.path.insert(0, str(PACK_DIR))
