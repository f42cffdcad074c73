// Container builds against local ones, and parallel builds against serial ones, all through
// `kbuild build --force` with warm caches (packages downloaded, trees unpacked, images built).
// Usage: builders_bench <kbuild> <module-src> <cache-dir>
#include "bench_timing.h"

#include <kbuild/types.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kbuild;
using bench::best_of;
using bench::seconds_of;

namespace {

const char* const kSuites = "suites=bookworm,bookworm-updates,bookworm-security";

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <kbuild> <module-src> <cache-dir>\n", argv[0]);
        return 2;
    }
    const std::string kbuild = argv[1], module = fs::absolute(argv[2]), cache = fs::absolute(argv[3]);
    const fs::path out = fs::temp_directory_path() / "kbuild-builders-bench";
    auto build = [&](const std::string& builder, const std::string& kernel, int latest, int jobs) {
        return std::vector<std::string>{kbuild,
                                        "--quiet",
                                        "--cache-dir",
                                        cache,
                                        "build",
                                        "--distro",
                                        "debian",
                                        "--option",
                                        kSuites,
                                        "--kernel",
                                        kernel,
                                        "--latest",
                                        std::to_string(latest),
                                        "--jobs",
                                        std::to_string(jobs),
                                        "--builder",
                                        builder,
                                        "--module-src",
                                        module,
                                        "--out",
                                        out.string(),
                                        "--force"};
    };
    const std::string one = "^6\\.1\\.0-[0-9]+-amd64$";
    const std::string four = "^6\\.1\\.0-[0-9]+-(cloud-|rt-)?amd64$";
    seconds_of(build("docker", four, 4, 2));  // warm: packages, trees, image

    const double docker = best_of(3, build("docker", one, 1, 1));
    const double local = best_of(3, build("local", one, 1, 1));
    std::printf("container: docker %.2f s, local %.2f s, ratio %.2f (target <= 1.2)\n", docker, local, docker / local);
    const double serial = best_of(2, build("docker", four, 4, 1));
    const double parallel = best_of(2, build("docker", four, 4, 2));
    std::printf("jobs: 4 kernels --jobs 1 %.2f s, --jobs 2 %.2f s, speed-up %.2f (target >= 1.7)\n", serial, parallel,
                serial / parallel);
    fs::remove_all(out);
    return 0;
}
