// bundle_bench <release> <a.deb> <b.deb> <c.deb>: one kernel's header packages unpacked once,
// then written as a kernel bundle by kbuild's write_bundle (pruned, made relocatable, gzip) and,
// the manual way, by `tar -czf` of the whole unpacked tree; best of 3 each. Prints both times,
// both sizes, and the time ratio (kbuild / tar; lower is better).
#include "bench_timing.h"
#include "output/bundle_writer.h"
#include "unpack/extract.h"

#include <kbuild/types.hpp>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s RELEASE PACKAGE.deb...\n", argv[0]);
        return 2;
    }
    const std::string release = argv[1];
    std::string pattern = (fs::temp_directory_path() / "kbuild-bundle-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return 1;
    const fs::path work = pattern, root = work / "root";
    for (int i = 2; i < argc; ++i) kbuild::extract_archive(argv[i], root);
    const fs::path kernel_dir = root / "usr/src" / ("linux-headers-" + release);

    kbuild::Release r;
    r.release = release;
    r.distro = "debian";
    r.arch = "amd64";
    constexpr int kRuns = 3;
    double kbuild_s = 1e9, tar_s = 1e9;
    std::uintmax_t kbuild_bytes = 0, tar_bytes = 0;
    for (int run = 0; run < kRuns; ++run) {
        const auto start = std::chrono::steady_clock::now();
        const auto stats = kbuild::write_bundle(root, kernel_dir, r, "bench", work / "kbuild");
        kbuild_s = std::min(kbuild_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        kbuild_bytes = static_cast<std::uintmax_t>(stats.bytes);
        const fs::path tgz = work / "manual.tgz";
        tar_s = std::min(tar_s, kbuild::bench::seconds_of({"tar", "-C", root.string(), "-czf", tgz.string(), "."}));
        tar_bytes = fs::file_size(tgz);
    }
    fs::remove_all(work);
    std::printf("bundle %s: kbuild bundle %.2f s (%.1f MiB), tar -czf of the tree %.2f s (%.1f MiB): ratio %.2f\n",
                release.c_str(), kbuild_s, kbuild_bytes / 1048576.0, tar_s, tar_bytes / 1048576.0, kbuild_s / tar_s);
    return 0;
}
