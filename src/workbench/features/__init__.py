"""Feature extraction: radiomics (PyRadiomics + IBSI layer), kinetic and deep CNN features."""
