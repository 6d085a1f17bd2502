"""pCR fusion workbench: radiomics + deep CNN features for pCR prediction from DCE-MRI.

Heavy dependencies (SimpleITK, TensorFlow, CatBoost, Panel) are imported lazily by the
modules that need them, so ``import workbench`` and ``workbench --help`` stay instant.
"""

__version__ = "0.1.0"
