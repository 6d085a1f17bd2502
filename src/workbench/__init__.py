"""pCR fusion workbench: radiomics + deep CNN features for pCR prediction from DCE-MRI.

The heavy optional libraries (TensorFlow, CatBoost, XGBoost, SHAP, Panel, PyRadiomics) are
imported lazily by the functions that need them, and the ``workbench`` command imports the
pipeline only once a command runs, so ``import workbench`` and ``workbench --help`` stay
instant. The package map is in the README ("Data flow and code map").
"""

__version__ = "0.1.0"
