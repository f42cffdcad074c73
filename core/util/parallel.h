// The one way kbuild spreads independent items over threads: downloads, targets, bundles.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace kbuild {

// Calls work(i) once for each i in [0, count), on up to `threads` threads (this one among
// them), and returns when all are done. Each thread first calls setup(), which returns that
// thread's work: state a thread keeps (a plugin instance) lives in it. work must not throw.
template <class Setup>
void parallel_for(std::size_t count, std::size_t threads, Setup setup) {
    std::atomic<std::size_t> next{0};
    auto run = [&] {
        auto work = setup();
        for (std::size_t i = next++; i < count; i = next++) work(i);
    };
    const std::size_t n = std::max<std::size_t>(1, std::min(threads, count));
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < n; ++t) pool.emplace_back(run);
    run();
    for (auto& thread : pool) thread.join();
}

}  // namespace kbuild
