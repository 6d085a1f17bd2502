"""Pure, geometry-preserving SimpleITK operations (read, check, N4, resample, z-score)."""
