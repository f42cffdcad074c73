// fleet_sim_bench [DIR]: what kbuild's bookkeeping costs a target in a run of 10, 1,000 and
// 10,000 targets, with builds faked so that only it is left: each target leases a download and
// a tree in a cache bounded to room for two targets' (as a --cache-max run does), "fetches" and
// "unpacks" them (a 64 KiB file, a tree of 16 files of 4 KiB), records itself in index.json,
// lets go of its leases and keeps the cache bounded (Cache::prune, which also removes what it
// evicts). The manual way is the fake work alone, measured in the same run. Printed: the
// bookkeeping's microseconds a target at each size beside the fake work's, its ratio at 10,000
// targets to that at 10 (target at most 2: a target costs about the same however many came
// before), and the most entries the cache held (the bound's 4 or so, not thousands).
#include "sample_record.h"

#include "fetch/cache.h"
#include "output/artifacts.h"

#include <kbuild/types.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kbuild::Cache;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kDownloadBytes = 64 << 10, kTreeFiles = 16, kFileBytes = 4 << 10;
constexpr double kTargetRatio = 2;

void write_file(const fs::path& path, size_t bytes) {
    static const std::string block(kFileBytes, 'x');
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (size_t written = 0; written < bytes; written += block.size()) out << block;
}

// The fake fetch and unpack of target n into `download` and `tree`.
void fake_work(const fs::path& download, const fs::path& tree, size_t n) {
    fs::create_directories(download);
    write_file(download / ("linux-headers-" + std::to_string(n) + ".deb"), kDownloadBytes);
    fs::create_directories(tree);
    for (size_t f = 0; f < kTreeFiles; ++f) write_file(tree / ("h" + std::to_string(f)), kFileBytes);
}

struct Costs {
    double bookkeeping_us = 0, work_us = 0;  // a target
    size_t peak_entries = 0;
};

double micros_since(Clock::time_point start) {
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

Costs run(const fs::path& dir, size_t targets) {
    fs::remove_all(dir);
    Cache cache(dir / "cache");
    kbuild::Index index(dir / "out");
    const std::uint64_t bound = 2 * (kDownloadBytes + kTreeFiles * kFileBytes);
    Costs costs;
    double bookkeeping = 0, work = 0;
    for (size_t n = 0; n < targets; ++n) {
        const std::string key = std::to_string(n);
        const fs::path download = cache.dir() / "downloads" / key, tree = cache.dir() / "trees" / key;
        auto start = Clock::now();
        Cache::Lease download_lease = cache.lease(download), tree_lease = cache.lease(tree);
        bookkeeping += micros_since(start);

        start = Clock::now();
        fake_work(download, tree, n);
        work += micros_since(start);

        start = Clock::now();
        download_lease.set_size(kDownloadBytes);
        tree_lease.set_size(kTreeFiles * kFileBytes);
        index.put(kbuild::bench::sample_record(n));
        download_lease = {};
        tree_lease = {};
        cache.prune(bound);
        bookkeeping += micros_since(start);
        if (n % 100 == 0 || n + 1 == targets) costs.peak_entries = std::max(costs.peak_entries, cache.entries().size());
    }
    const auto start = Clock::now();
    index.flush();
    bookkeeping += micros_since(start);
    costs.bookkeeping_us = bookkeeping / static_cast<double>(targets);
    costs.work_us = work / static_cast<double>(targets);
    return costs;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const fs::path dir = argc > 1 ? fs::path(argv[1])
                                      : fs::temp_directory_path() / ("fleet_sim_bench-" + std::to_string(::getpid()));
        double at_smallest = 0, at_largest = 0;
        for (const size_t targets : {10u, 1000u, 10000u}) {
            const Costs costs = run(dir, targets);
            std::printf(
                "fleet_sim: %zu targets: bookkeeping (leases, index, prune) %.0f us a target; the fake fetch and "
                "unpack %.0f us; at most %zu cache entries\n",
                targets, costs.bookkeeping_us, costs.work_us, costs.peak_entries);
            if (at_smallest == 0) at_smallest = costs.bookkeeping_us;
            at_largest = costs.bookkeeping_us;
        }
        fs::remove_all(dir);
        std::printf(
            "fleet_sim: bookkeeping a target at 10,000 targets against at 10: %.0f / %.0f us, ratio %.2f "
            "(target <= %.0f)\n",
            at_largest, at_smallest, at_largest / at_smallest, kTargetRatio);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fleet_sim_bench: %s\n", e.what());
        return 1;
    }
}
