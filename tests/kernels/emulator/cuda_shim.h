// CPU shim for running unchanged CUDA C kernels: force-included (g++ -include cuda_shim.h)
// before a .cu file. Models: the thread hierarchy (threadIdx/blockIdx thread_local, one real
// thread per CUDA thread of a block), __syncthreads as a barrier across the block that, as on
// sm_70+, waits only for the block's threads that have not exited (returned from the kernel), and
// __shared__ as static storage (valid because blocks run one after another) that the launcher
// fills with 0xFF bytes (NaN floats, -1 ints) before every block, so a read of shared memory the
// block has not written shows up. grid.py finds that storage in the library's symbol table and
// registers it (emu_set_shared): the kernels' __shared__ statics only, never the C++ runtime's
// own function-local statics. Threads of one phase meeting different __syncthreads statements
// (divergence, undefined in CUDA) are reported. Two schedules (launch.h): parallel (threads run
// freely between barriers) and serial (threads run one at a time between barriers in a fixed
// order that alternates direction each phase: deterministic, and a missing __syncthreads makes a
// thread read shared data its peers have not written yet).
// Not modelled: warp shuffles/votes, atomics, dynamic shared memory, cooperative groups.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
#include <math.h>
#include <memory>
#include <mutex>
#include <semaphore>
#include <utility>
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

// The library's __shared__ storage, registered once after loading (see grid.py).
inline std::vector<std::pair<char*, std::size_t>> shared_ranges;

// Fill all shared memory with 0xFF bytes; called while no thread of the grid runs kernel code.
inline void poison_shared() {
    for (const auto& [p, n] : shared_ranges) std::memset(p, 0xFF, n);
}

// A __syncthreads statement: threads of one phase must all be at the same one.
struct Site {
    const char* file;
    int line;
    bool operator==(const Site& o) const { return line == o.line && std::strcmp(file, o.file) == 0; }
};

// How the threads of a block meet at __syncthreads and at the end of each block. A thread that
// has returned from the kernel counts as arrived at every later barrier of its block; the next
// block starts when all threads have returned, after shared memory is poisoned again.
struct BlockSync {
    virtual ~BlockSync() = default;
    virtual void start(unsigned tid) = 0;                   // before the thread's first block
    virtual void barrier(unsigned tid, Site site) = 0;      // __syncthreads
    virtual void exit(unsigned tid, bool last_block) = 0;   // the thread returned from the kernel
    bool divergent = false;  // threads of one phase met different __syncthreads statements
   protected:
    void note(Site site, bool first) {
        if (first) phase_site = site;
        else if (!(site == phase_site)) divergent = true;
    }
    Site phase_site{"", 0};
};

// Threads run freely between barriers. A mutex guards the counts; threads sleep on atomic
// generation counters (futex), so a phase that opens wakes them without a lock to queue on.
struct ParallelSync final : BlockSync {
    explicit ParallelSync(unsigned n) : n(n) {}
    void start(unsigned) override {}
    void barrier(unsigned, Site site) override {
        std::unique_lock lock(mutex);
        note(site, arrived == 0);
        if (++arrived + exited == n) return open(lock);
        const unsigned long long seen = phase.load();
        lock.unlock();
        phase.wait(seen);
    }
    void exit(unsigned, bool last_block) override {
        std::unique_lock lock(mutex);
        if (++exited == n) {  // every thread has returned: the block is over
            exited = 0;
            if (!last_block) poison_shared();
            block.fetch_add(1);
            lock.unlock();
            block.notify_all();
            return;
        }
        const unsigned long long seen = block.load();
        if (arrived > 0 && arrived + exited == n) open(lock);  // the rest wait at a barrier
        else lock.unlock();
        if (!last_block) block.wait(seen);
    }
    void open(std::unique_lock<std::mutex>& lock) {
        arrived = 0;
        phase.fetch_add(1);
        lock.unlock();
        phase.notify_all();
    }
    const unsigned n;
    unsigned arrived = 0, exited = 0;
    std::atomic<unsigned long long> phase{0}, block{0};
    std::mutex mutex;
};

// One thread runs at a time; the turn passes in thread order (reversed on odd phases) to the next
// thread that is neither at the barrier nor returned, and a phase ends when none is left. Each
// thread sleeps on its own semaphore, so passing the turn wakes exactly one thread. Only the turn
// holder runs, so the state needs no lock.
struct SerialSync final : BlockSync {
    enum State : unsigned char { ready, waiting, returned };
    explicit SerialSync(unsigned n) : n(n), state(n, ready), wake(n) {
        for (auto& w : wake) w = std::make_unique<std::binary_semaphore>(0);
    }
    unsigned at(unsigned pos) const { return phase % 2 == 0 ? pos : n - 1 - pos; }
    unsigned pos_of(unsigned tid) const { return phase % 2 == 0 ? tid : n - 1 - tid; }
    unsigned first_ready(unsigned from) const {
        for (unsigned p = from; p < n; ++p)
            if (state[at(p)] == ready) return at(p);
        return n;
    }
    // The thread that runs next (n: nobody).
    unsigned pass(unsigned tid, bool last_block) {
        if (const unsigned next = first_ready(pos_of(tid) + 1); next < n) return next;
        ++phase;  // every thread is at the barrier or has returned
        first_arrival = true;
        bool over = true;
        for (auto s : state) over = over && s == returned;
        if (over && last_block) return n;
        if (over) poison_shared();
        for (auto& s : state)  // a returned thread stays so until the block is over
            if (over || s == waiting) s = ready;
        return first_ready(0);
    }
    void hand_over(unsigned tid, unsigned to, bool wait) {
        if (to == tid) return;
        if (to < n) wake[to]->release();
        if (wait) wake[tid]->acquire();
    }
    void start(unsigned tid) override {
        if (tid != 0) wake[tid]->acquire();
    }
    void barrier(unsigned tid, Site site) override {
        note(site, first_arrival);
        first_arrival = false;
        state[tid] = waiting;
        hand_over(tid, pass(tid, false), true);
    }
    void exit(unsigned tid, bool last_block) override {
        state[tid] = returned;
        hand_over(tid, pass(tid, last_block), !last_block);
    }
    const unsigned n;
    unsigned phase = 0;
    bool first_arrival = true;
    std::vector<State> state;
    std::vector<std::unique_ptr<std::binary_semaphore>> wake;
};

inline BlockSync* block_sync = nullptr;

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

#define __syncthreads() (::emu::block_sync->barrier(::emu::flat_tid, ::emu::Site{__FILE__, __LINE__}))
