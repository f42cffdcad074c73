// Download throughput of the fetcher against curl(1) on the same URLs: every run starts from an
// empty cache, the best of N runs is kept. Usage: fetch_bench [--runs N] [--jobs J] URL...
// (a large file from a server on 127.0.0.1 measures the client itself; packages from a mirror
// measure what a crawl sees).
#include "bench_timing.h"
#include "fetch/fetch.h"

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    int runs = 3;
    int jobs = 4;
    std::vector<kbuild::FetchRequest> requests;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--runs" && i + 1 < argc)
            runs = std::atoi(argv[++i]);
        else if (arg == "--jobs" && i + 1 < argc)
            jobs = std::atoi(argv[++i]);
        else
            requests.push_back({arg});
    }
    if (requests.empty()) {
        std::fprintf(stderr, "usage: fetch_bench [--runs N] [--jobs J] URL...\n");
        return 2;
    }
    const fs::path scratch = fs::temp_directory_path() / ("fetch_bench-" + std::to_string(::getpid()));
    double best = 1e9;
    std::int64_t bytes = 0;
    for (int run = 0; run < runs; ++run) {
        fs::remove_all(scratch);
        kbuild::FetchOptions options;
        options.cache_dir = scratch;
        options.jobs = jobs;
        kbuild::Fetcher fetcher(options);
        const auto start = std::chrono::steady_clock::now();
        bytes = 0;
        try {
            for (const auto& outcome : fetcher.fetch_all(requests)) bytes += outcome.file().size;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return 1;
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    fs::remove_all(scratch);
    // The manual way: curl(1), one URL after the other, to /dev/null.
    std::vector<std::string> curl{"curl", "-sSf", "--noproxy", "*"};
    for (const auto& request : requests) {
        curl.push_back("-o");
        curl.push_back("/dev/null");
        curl.push_back(request.url);
    }
    const double manual = kbuild::bench::best_of(runs, curl);
    const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
    std::printf("fetch: %.1f MiB in %.3f s (%.1f MiB/s, %d jobs); curl(1): %.3f s (%.1f MiB/s); ratio %.2f\n", mib,
                best, mib / best, jobs, manual, mib / manual, best / manual);
    return 0;
}
