// packages_parse_bench <Packages.xz>: how long kbuild takes to read every paragraph of a Debian
// Packages index, against `xz -dc FILE > /dev/null` (decompression alone) on the same file.
// Best of three runs each; the target is a ratio <= 1.3.
#include "util/process.h"

#include <kbuild/deb.hpp>
#include <kbuild/types.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

namespace {

constexpr int kRuns = 3;
constexpr double kTargetRatio = 1.3;

double best_seconds(const std::function<void()>& run) {
    double best = 1e300;
    for (int i = 0; i < kRuns; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run();
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        best = std::min(best, elapsed.count());
    }
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: packages_parse_bench <Packages.xz>\n");
        return 2;
    }
    const std::string path = argv[1];
    if (!std::filesystem::is_regular_file(path)) {
        std::fprintf(stderr, "packages_parse_bench: %s: no such file\n", path.c_str());
        return 1;
    }
    try {
        long paragraphs = 0;
        long headers = 0;
        const double kbuild_seconds = best_seconds([&] {
            paragraphs = 0;
            headers = 0;
            kbuild::deb::read_paragraphs(path, [&](const kbuild::deb::Paragraph& paragraph) {
                ++paragraphs;
                if (paragraph.get("Package").substr(0, 14) == "linux-headers-") ++headers;
            });
        });

        kbuild::ProcessOptions discard;
        discard.log = "/dev/null";
        const double xz_seconds = best_seconds([&] {
            const kbuild::ProcessResult r = kbuild::run_process({"xz", "-dc", path}, discard);
            if (r.exit_code != 0) throw kbuild::Error("xz -dc " + path + ": exit " + std::to_string(r.exit_code));
        });

        const double ratio = kbuild_seconds / xz_seconds;
        std::printf("packages_parse: %ld paragraphs, %ld linux-headers packages\n", paragraphs, headers);
        std::printf("packages_parse: kbuild %.2f s, xz -dc %.2f s, ratio %.2f (target <= %.1f)\n", kbuild_seconds,
                    xz_seconds, ratio, kTargetRatio);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "packages_parse_bench: %s\n", e.what());
        return 1;
    }
}
