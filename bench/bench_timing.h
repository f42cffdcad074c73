// What every benchmark here does: time a command (it must succeed), and keep the best of N.
#pragma once

#include "util/process.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace kbuild::bench {

inline double seconds_of(const std::vector<std::string>& argv) {
    const auto start = std::chrono::steady_clock::now();
    const ProcessResult r = run_process(argv);
    if (r.exit_code != 0) {
        std::fprintf(stderr, "%s failed (%d):\n%s%s\n", argv[0].c_str(), r.exit_code, r.out.c_str(), r.err.c_str());
        std::exit(1);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline double best_of(int runs, const std::vector<std::string>& argv) {
    double best = 1e9;
    for (int i = 0; i < runs; ++i) best = std::min(best, seconds_of(argv));
    return best;
}

}  // namespace kbuild::bench
