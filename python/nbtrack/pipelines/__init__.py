"""Notebooks as pipelines: papermill executions recorded as notebook runs.

``rerun`` re-executes a run and judges whether it reproduced, ``sweep`` executes a
parameter grid, ``executors`` says where executions run (``local``, ``dask``),
``bundle`` moves runs between stores. Nothing is imported here: papermill and Dask
load only when a pipeline runs.
"""
