// CPU shim for running unchanged CUDA C kernels: force-included (g++ -include cuda_shim.h)
// before a .cu file. Models: the thread hierarchy (threadIdx/blockIdx thread_local, one real
// thread per CUDA thread of a block), __syncthreads as a barrier across the block, __shared__ as
// static storage (valid because blocks run one after another). Two schedules (launch.h):
// parallel (threads run freely between barriers, std::barrier) and serial (threads run one at a
// time between barriers in a fixed order that alternates direction each phase: deterministic,
// and a missing __syncthreads makes a thread read shared data its peers have not written yet).
// Not modelled: warp shuffles/votes, atomics, dynamic shared memory, cooperative groups.
#pragma once

#include <barrier>
#include <cstddef>
#include <math.h>
#include <memory>
#include <semaphore>
#include <vector>

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
inline thread_local unsigned flat_tid = 0;
inline dim3 block_dim;
inline dim3 grid_dim;

// How the threads of a block meet at __syncthreads and at the end of each block (block_end).
struct BlockSync {
    virtual ~BlockSync() = default;
    virtual void start(unsigned tid) = 0;                 // before the thread's first block
    virtual void sync(unsigned tid, bool block_end) = 0;  // a barrier
    virtual void finish(unsigned tid) = 0;                // after the thread's last block
    bool divergent = false;  // some threads met __syncthreads while others ended the block
};

struct ParallelSync final : BlockSync {
    explicit ParallelSync(unsigned n) : bar(n) {}
    void start(unsigned) override {}
    void sync(unsigned, bool) override { bar.arrive_and_wait(); }
    void finish(unsigned) override {}
    std::barrier<> bar;
};

// One thread runs at a time; the turn passes in thread order (reversed on odd phases) and a
// phase ends when every thread has reached the barrier. Each thread sleeps on its own
// semaphore, so passing the turn wakes exactly one thread. Only the turn holder runs, so the
// state needs no lock. If the threads of a phase disagree on the barrier (divergence, undefined
// in CUDA), the phase rule is dropped and the turn goes round-robin so the launch still ends.
struct SerialSync final : BlockSync {
    explicit SerialSync(unsigned n) : n(n), done(n, false), wake(n) {
        for (auto& w : wake) w = std::make_unique<std::binary_semaphore>(0);
    }
    unsigned at(unsigned pos) const { return phase % 2 == 0 ? pos : n - 1 - pos; }
    unsigned pos_of(unsigned tid) const { return phase % 2 == 0 ? tid : n - 1 - tid; }
    unsigned next_alive(unsigned tid) const {
        for (unsigned k = 1; k <= n; ++k)
            if (!done[(tid + k) % n]) return (tid + k) % n;
        return n;
    }
    // The thread that runs next (n: nobody).
    unsigned pass(unsigned tid, bool arrive, bool block_end) {
        if (arrive && !divergent) {
            if (arrived == 0) kind = block_end;
            else if (kind != block_end) divergent = true;
        }
        if (divergent) return next_alive(tid);
        const unsigned next = pos_of(tid) + 1;
        if (arrive && ++arrived == n) {
            arrived = 0;
            ++phase;
            return at(0);
        }
        return next < n ? at(next) : n;
    }
    void hand_over(unsigned tid, unsigned to, bool wait) {
        if (to == tid) return;
        if (to < n) wake[to]->release();
        if (wait) wake[tid]->acquire();
    }
    void start(unsigned tid) override {
        if (tid != 0) wake[tid]->acquire();
    }
    void sync(unsigned tid, bool block_end) override {
        hand_over(tid, pass(tid, true, block_end), true);
    }
    void finish(unsigned tid) override {
        done[tid] = true;
        hand_over(tid, pass(tid, false, false), false);
    }
    unsigned n, arrived = 0, phase = 0;
    bool kind = false;
    std::vector<bool> done;
    std::vector<std::unique_ptr<std::binary_semaphore>> wake;
};

inline BlockSync* block_sync = nullptr;

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { emu::block_sync->sync(emu::flat_tid, false); }
