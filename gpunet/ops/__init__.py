"""The op layer: the registry of implementations, the references (the spec) of the hot ops with
their shared argument checks, and the NumPy fast paths. ``gpunet.functional`` asks the registry
once per call; see :mod:`gpunet.ops.registry` for the rule and :mod:`gpunet.ops.catalog` for the table."""

from gpunet.ops import catalog, registry  # noqa: F401  (catalog registers every implementation)
