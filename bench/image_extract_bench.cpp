// image_extract_bench <image.bin.bz2> <pattern>...: takes the kernel tree out of a compressed
// developer-container image with kbuild's in-process reader (bzip2 blocks decoded on demand,
// ext4 read by libext2fs), against `bunzip2 -c` of the whole image to /dev/null alone, which is
// the least any tool that mounts the image must spend before it reads a file. Best of 2 each;
// prints the ratio (target: at most 1.1).
#include "bench_timing.h"
#include "unpack/disk_image.h"

#include <kbuild/types.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: image_extract_bench IMAGE.bin.bz2 PATTERN...\n");
        return 2;
    }
    const fs::path image = argv[1];
    const std::vector<std::string> patterns(argv + 2, argv + argc);
    std::string pattern = (fs::temp_directory_path() / "kbuild-image-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return 1;
    const fs::path work = pattern;

    double reader = 1e9;
    kbuild::ImageExtractStats stats;
    for (int run = 0; run < 2; ++run) {
        fs::remove_all(work / "out");
        const auto start = std::chrono::steady_clock::now();
        try {
            stats = kbuild::extract_from_image(image, work / "out", patterns);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return 1;
        }
        reader = std::min(reader, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    fs::remove_all(work);
    const double bunzip2 = kbuild::bench::best_of(2, {"sh", "-c", "bunzip2 -c \"$0\" >/dev/null", image.string()});

    std::printf("image extract (%.0f MB compressed; %lld files, %.0f MB of tree from %s):\n",
                static_cast<double>(fs::file_size(image)) / 1e6, static_cast<long long>(stats.entries),
                static_cast<double>(stats.bytes) / 1e6, stats.where.c_str());
    std::printf("  kbuild in process %.2f s, bunzip2 of the whole image %.2f s: ratio %.2f (target <= 1.1)\n", reader,
                bunzip2, reader / bunzip2);
    return 0;
}
