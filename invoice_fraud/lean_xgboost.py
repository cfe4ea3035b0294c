"""xgboost for the serving process, without the scikit-learn integration it never uses.

``import xgboost`` imports scikit-learn when it is installed (for ``XGBClassifier``'s base
classes), and scikit-learn brings scipy, pandas and pyarrow: about 100 MB of RSS and 2 s
of start-up per worker, for a service that only calls a ``Booster``. Training needs
scikit-learn, so it stays a dependency; the service imports xgboost through
:func:`import_xgboost`, which hides scikit-learn from xgboost's one import attempt.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def import_xgboost() -> ModuleType:
    """Return ``xgboost``, importing it without scikit-learn if nothing imported it yet.

    If xgboost or scikit-learn is already loaded (a training process, a test session), this
    is a plain import: nothing already imported changes behaviour.
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return importlib.import_module("xgboost")
    # A None entry makes `import sklearn` raise ImportError; xgboost.compat catches it and
    # leaves its scikit-learn wrappers without their base classes. Removed right after, so
    # the rest of the process imports scikit-learn normally.
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("xgboost")
    finally:
        del sys.modules["sklearn"]
