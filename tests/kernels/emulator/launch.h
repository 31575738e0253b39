// Grid launcher for the CPU emulator: included after the shim and the .cu sources by the
// generated registry (see grid.py). emu_launch(name, grid, block, args, serial) behaves like
// cuLaunchKernel: args[i] points at the i-th kernel parameter; serial picks the schedule.
// Returns 0, 1 (unknown kernel) or 2 (threads of a block diverged at a barrier).
#pragma once

#include <cstring>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

namespace emu {

using Erased = std::function<void(void**)>;

template <typename... A, std::size_t... I>
void call(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<A*>(args[I])...);
}

template <typename... A>
Erased erase(void (*f)(A...)) {
    return [f](void** args) { call(f, args, std::index_sequence_for<A...>{}); };
}

struct Entry {
    const char* name;
    Erased fn;
};

// Blocks run in sequence; the threads of a block are real threads. Each thread walks the
// whole grid and meets the others at a barrier after every block, so __shared__ storage is
// never touched by two blocks at once.
// Returns false when the block's threads diverged at a barrier (detected by the serial schedule).
inline bool run_grid(const Erased& fn, dim3 grid, dim3 block, void** args, bool serial) {
    const unsigned nthreads = block.x * block.y * block.z;
    ParallelSync parallel(nthreads);
    SerialSync serialized(nthreads);
    BlockSync* sync = serial ? static_cast<BlockSync*>(&serialized) : &parallel;
    block_sync = sync;
    block_dim = block;
    grid_dim = grid;
    std::vector<std::thread> pool;
    pool.reserve(nthreads);
    for (unsigned t = 0; t < nthreads; ++t) {
        pool.emplace_back([&, t] {
            flat_tid = t;
            thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            sync->start(t);
            for (unsigned bz = 0; bz < grid.z; ++bz)
                for (unsigned by = 0; by < grid.y; ++by)
                    for (unsigned bx = 0; bx < grid.x; ++bx) {
                        block_idx = {bx, by, bz};
                        fn(args);
                        sync->sync(t, true);
                    }
            sync->finish(t);
        });
    }
    for (auto& th : pool) th.join();
    block_sync = nullptr;
    return !sync->divergent;
}

}  // namespace emu

#define EMU_KERNEL(name) {#name, ::emu::erase(&name)}
#define EMU_REGISTRY(...)                                                                   \
    static const ::emu::Entry emu_table[] = {__VA_ARGS__};                                  \
    extern "C" int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz,      \
                              unsigned bx, unsigned by, unsigned bz, void** args,           \
                              int serial) {                                                 \
        for (const auto& e : emu_table)                                                     \
            if (std::strcmp(e.name, name) == 0) {                                           \
                const dim3 g{gx, gy, gz}, b{bx, by, bz};                                    \
                return ::emu::run_grid(e.fn, g, b, args, serial != 0) ? 0 : 2;              \
            }                                                                               \
        return 1;                                                                           \
    }
