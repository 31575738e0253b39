"""The bounds every checkpoint load rests on (module attributes, read at each call).

A file that breaks one is refused with :class:`~gpunet.io.CheckpointError` before the bytes it
describes are read; :func:`gpunet.io.save` refuses to write what :func:`gpunet.io.load` would
refuse, so anything saved loads.
"""

from __future__ import annotations

#: Nesting of dicts and lists in a saved object (the object itself is level 1).
MAX_DEPTH = 100
#: Size of the JSON metadata of an ``.npz`` checkpoint (``__meta__``).
MAX_META_BYTES = 16 * 2**20
#: Size of a safetensors header (the safetensors library's own limit).
MAX_SAFETENSORS_HEADER = 100_000_000
#: Members of an ``.npz`` checkpoint (the metadata included).
MAX_MEMBERS = 100_000
#: Size of one ``.npy`` header inside an ``.npz`` (NumPy writes under 200 bytes for any shape).
MAX_NPY_HEADER = 65_536
#: Uncompressed / compressed bytes: gpunet stores members uncompressed (ratio 1); deflate can
#: reach about 1000 on constant data, which is what a zip bomb is made of.
MAX_RATIO = 100
#: Uncompressed bytes allowed on top of ``MAX_RATIO`` x the compressed size (small members of a
#: compressed ``.npz`` written by NumPy's ``savez_compressed`` may compress very well).
RATIO_ALLOWANCE = 2**20
#: Bytes read from a member at a time (the only memory ``load`` uses beyond the arrays it returns).
CHUNK_BYTES = 2**20
