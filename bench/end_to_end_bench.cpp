// One kernel end to end with a warm cache (`kbuild build --force`: cached packages and tree,
// build, verify, index) vs a hand-run `make -C <headers> M=<module>` on the same headers.
// Usage: end_to_end_bench <kbuild> <module-src> <cache-dir> <release>
#include "bench_timing.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kbuild;
using bench::best_of;
using bench::seconds_of;

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s <kbuild> <module-src> <cache-dir> <release>\n", argv[0]);
        return 2;
    }
    const std::string kbuild = argv[1], module = fs::absolute(argv[2]), cache = fs::absolute(argv[3]),
                      release = argv[4];
    const fs::path out = fs::temp_directory_path() / "kbuild-bench-out";
    const std::vector<std::string> build = {kbuild,
                                            "--quiet",
                                            "--cache-dir",
                                            cache,
                                            "build",
                                            "--distro",
                                            "debian",
                                            "--option",
                                            "suites=bookworm,bookworm-updates,bookworm-security",
                                            "--kernel",
                                            "^" + release + "$",
                                            "--builder",
                                            "local",
                                            "--module-src",
                                            module,
                                            "--out",
                                            out.string(),
                                            "--force"};
    seconds_of(build);  // warm the cache: packages downloaded, tree unpacked

    fs::path root;
    for (const auto& tree : fs::directory_iterator(fs::path(cache) / "trees"))
        if (fs::is_directory(tree.path() / "usr/src" / ("linux-headers-" + release))) root = tree.path();
    if (root.empty()) {
        std::fprintf(stderr, "no unpacked tree for %s in %s\n", release.c_str(), cache.c_str());
        return 1;
    }
    // By hand: a fresh copy of the module built with the kernel's Makefile, as kbuild does.
    const fs::path copy = fs::temp_directory_path() / "kbuild-bench-module";
    const std::vector<std::string> by_hand = {
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        "mount -t overlay bench -o \"lowerdir=$1/usr:/usr\" /usr && rm -rf $2 && cp -r $3 $2 && "
        "make -C /usr/src/linux-headers-" +
            release + " M=$2 -j2 modules >/dev/null",
        "sh",
        root.string(),
        copy.string(),
        module};

    const double ours = best_of(3, build);
    const double manual = best_of(3, by_hand);
    std::printf(
        "end_to_end: kbuild build (warm cache) %.2f s, make by hand %.2f s, ratio %.2f "
        "(target <= 1.15)\n",
        ours, manual, ours / manual);
    fs::remove_all(copy);
    fs::remove_all(out);
    return 0;
}
