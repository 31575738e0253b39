// CPU shim for running unchanged CUDA C kernels: force-included (g++ -include cuda_shim.h)
// before a .cu file. Models: the thread hierarchy (threadIdx/blockIdx thread_local, one real
// thread per CUDA thread of a block), __syncthreads as a std::barrier across the block,
// __shared__ as static storage (valid because blocks run one after another). Not modelled:
// warp shuffles/votes, atomics, dynamic shared memory, cooperative groups.
#pragma once

#include <barrier>
#include <cstddef>
#include <math.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

namespace emu {
inline thread_local dim3 thread_idx;
inline thread_local dim3 block_idx;
inline dim3 block_dim;
inline dim3 grid_dim;
inline std::barrier<>* block_barrier = nullptr;
}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
