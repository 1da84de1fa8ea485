"""The model registry: versions, aliases with their history, flavors, lineage, packaging.

The public functions (``nbtrack.log_model``, ``nbtrack.load_model``,
``nbtrack.models_list``...) live in ``nbtrack.registry.api``; this package's
``__init__`` imports nothing heavy, so the store can use its value objects.
"""
