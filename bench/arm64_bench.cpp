// An arm64 kernel cross-built on this x86_64 machine against the same module built for the
// x86_64 kernel of the same version (the same Debian upload's arm64 and amd64 headers), both
// through `kbuild build --builder docker --force` with warm caches; best of 3 each.
// Target: arm64 / x86_64 at most 1.2.
// Usage: arm64_bench <kbuild> <module-src> <cache-dir>
#include "bench_timing.h"

#include <kbuild/types.hpp>

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
    const fs::path out = fs::temp_directory_path() / "kbuild-arm64-bench";
    // The newest arm64 kernel's ABI, and the amd64 kernel of the same ABI.
    const ProcessResult crawl =
        run_process({kbuild, "--quiet", "--cache-dir", cache, "crawl", "--distro", "debian", "--arch", "arm64",
                     "--option", kSuites, "--kernel", "^6\\.1\\.0-[0-9]+-arm64$", "--latest", "1", "--output", "json"});
    if (crawl.exit_code != 0) {
        std::fprintf(stderr, "crawl failed: %s\n", crawl.err.c_str());
        return 1;
    }
    const std::string arm64 = Json::parse(crawl.out)["releases"].at(0)["kernelrelease"];
    const std::string abi = arm64.substr(0, arm64.size() - std::string("-arm64").size());
    auto build = [&](const std::string& arch, const std::string& release) {
        return std::vector<std::string>{kbuild,
                                        "--quiet",
                                        "--cache-dir",
                                        cache,
                                        "build",
                                        "--distro",
                                        "debian",
                                        "--arch",
                                        arch,
                                        "--option",
                                        kSuites,
                                        "--kernel",
                                        "^" + release + "$",
                                        "--builder",
                                        "docker",
                                        "--module-src",
                                        module,
                                        "--out",
                                        out.string(),
                                        "--force"};
    };
    const std::string amd64 = abi + "-amd64";
    seconds_of(build("amd64", amd64));  // warm: packages, trees, images
    seconds_of(build("arm64", arm64));
    const double x86 = best_of(3, build("amd64", amd64));
    const double cross = best_of(3, build("arm64", arm64));
    std::printf("%s (x86_64, native): %.2f s\n", amd64.c_str(), x86);
    std::printf("%s (arm64, cross-compiled): %.2f s\n", arm64.c_str(), cross);
    std::printf("ratio arm64 / x86_64: %.2f (target: at most 1.2)\n", cross / x86);
    fs::remove_all(out);
    return 0;
}
