"""Loaders that build a :class:`~workbench.cohort.table.CohortTable` from each data source.

One module per source; :data:`workbench.cohort.LOADERS` names them and imports each only when
it is called, so this package imports nothing itself.
"""
