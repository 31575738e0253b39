// Grid launcher for the CPU emulator: included after the shim and the .cu sources by the
// generated registry (see grid.py). emu_launch(name, grid, block, args, serial, seed) behaves like
// cuLaunchKernel: args[i] points at the i-th kernel parameter; serial picks the schedule; a
// nonzero seed runs the blocks in a shuffled order (one permutation per seed, kernel and grid).
// Returns 0, 1 (unknown kernel) or 2 (threads of a block diverged at a barrier).
// emu_set_shared(n, addresses, sizes) registers the library's __shared__ storage (grid.py).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
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

// The blocks of a grid in the order they run: x fastest, or a permutation drawn from seed,
// the kernel name and the grid (reproducible: the same launch gets the same order).
inline std::vector<dim3> block_order(const char* name, dim3 grid, std::uint64_t seed) {
    std::vector<dim3> order;
    order.reserve(static_cast<std::size_t>(grid.x) * grid.y * grid.z);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) order.push_back({bx, by, bz});
    if (seed != 0) {
        std::uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name and the grid
        for (const char* c = name; *c; ++c) h = (h ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
        for (unsigned v : {grid.x, grid.y, grid.z}) h = (h ^ v) * 1099511628211ull;
        std::mt19937_64 rng(h);
        std::shuffle(order.begin(), order.end(), rng);
    }
    return order;
}

// Blocks run in sequence; the threads of a block are real threads. Each thread walks the
// whole grid; a block starts when every thread has returned from the previous one, so
// __shared__ storage is never touched by two blocks at once, and is poisoned in between.
// Returns false when threads of a block diverged at a barrier.
inline bool run_grid(const char* name, const Erased& fn, dim3 grid, dim3 block, void** args,
                     bool serial, std::uint64_t seed) {
    const unsigned nthreads = block.x * block.y * block.z;
    const std::vector<dim3> order = block_order(name, grid, seed);
    ParallelSync parallel(nthreads);
    SerialSync serialized(nthreads);
    BlockSync* sync = serial ? static_cast<BlockSync*>(&serialized) : &parallel;
    block_sync = sync;
    block_dim = block;
    grid_dim = grid;
    poison_shared();
    std::vector<std::thread> pool;
    pool.reserve(nthreads);
    for (unsigned t = 0; t < nthreads; ++t) {
        pool.emplace_back([&, t] {
            flat_tid = t;
            thread_idx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            sync->start(t);
            for (std::size_t i = 0; i < order.size(); ++i) {
                block_idx = order[i];
                fn(args);
                sync->exit(t, i + 1 == order.size());
            }
        });
    }
    for (auto& th : pool) th.join();
    block_sync = nullptr;
    return !sync->divergent;
}

}  // namespace emu

#define EMU_KERNEL(name) {#name, ::emu::erase(&name)}
#define EMU_EXPORT extern "C" __attribute__((visibility("default")))
#define EMU_REGISTRY(...)                                                                   \
    static const ::emu::Entry emu_table[] = {__VA_ARGS__};                                  \
    EMU_EXPORT int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz,      \
                              unsigned bx, unsigned by, unsigned bz, void** args,           \
                              int serial, unsigned long long seed) {                        \
        for (const auto& e : emu_table)                                                     \
            if (std::strcmp(e.name, name) == 0) {                                           \
                const dim3 g{gx, gy, gz}, b{bx, by, bz};                                    \
                return ::emu::run_grid(name, e.fn, g, b, args, serial != 0, seed) ? 0 : 2;  \
            }                                                                               \
        return 1;                                                                           \
    }                                                                                       \
    EMU_EXPORT void emu_set_shared(int n, char** addresses, const unsigned long* sizes) {   \
        ::emu::shared_ranges.clear();                                                       \
        for (int i = 0; i < n; ++i) ::emu::shared_ranges.emplace_back(addresses[i], sizes[i]); \
    }
