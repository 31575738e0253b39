"""GPU architectures the kernels are built and tested for, per CUDA toolkit major version.

CUDA 13 dropped Volta (sm_70) from nvcc and NVRTC, so its list starts at Turing (sm_75).
"""

from __future__ import annotations

ARCHS_BY_CUDA: dict[int, tuple[str, ...]] = {
    12: ("sm_70", "sm_80", "sm_90"),
    13: ("sm_75", "sm_80", "sm_90"),
}


def archs_for(cuda_major: int) -> tuple[str, ...]:
    """The architectures for CUDA ``cuda_major``; ValueError names the supported majors."""
    if cuda_major not in ARCHS_BY_CUDA:
        raise ValueError(f"archs: expected a CUDA major version in {sorted(ARCHS_BY_CUDA)}, got {cuda_major}")
    return ARCHS_BY_CUDA[cuda_major]
