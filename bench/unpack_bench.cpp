// unpack_bench <a.deb> <b.deb> <c.deb>: unpacks one kernel's header packages with kbuild's
// extract_archive and with `dpkg-deb -x`, each into a fresh directory under $TMPDIR (default
// /tmp), best of 3, and prints the speed-up (target: 1.5x).
#include "unpack/extract.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

constexpr int kRuns = 3;
constexpr double kTarget = 1.5;

// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class WorkDir {
public:
    WorkDir() {
        std::string pattern = (fs::temp_directory_path() / "kbuild-unpack-bench-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw kbuild::Error(pattern + ": mkdtemp failed");
        path_ = pattern;
    }
    ~WorkDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Wall time of one `unpack` into an empty `out`, removed afterwards.
double seconds(const fs::path& out, const std::function<void(const fs::path&)>& unpack) {
    fs::remove_all(out);
    fs::create_directories(out);
    ::sync();  // start from the same dirty-page state: writeback of the last run is not ours
    const auto start = std::chrono::steady_clock::now();
    unpack(out);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    fs::remove_all(out);
    return took.count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: unpack_bench <a.deb> <b.deb> <c.deb>\n";
        return 2;
    }
    const std::vector<fs::path> debs(argv + 1, argv + argc);
    try {
        const WorkDir work;
        const fs::path out = work.path() / "root";

        std::int64_t files = 0;
        const auto kbuild_unpack = [&](const fs::path& dest) {
            files = 0;
            for (const auto& deb : debs) files += kbuild::extract_archive(deb, dest).entries;
        };
        const auto dpkg_unpack = [&](const fs::path& dest) {
            for (const auto& deb : debs) {
                const auto r = kbuild::run_process({"dpkg-deb", "-x", deb.string(), dest.string()});
                if (r.exit_code != 0) throw kbuild::Error(deb.string() + ": dpkg-deb -x: " + r.err);
            }
        };
        // Alternated, so that both meet the same background load; the best run of each counts.
        double kbuild_s = 1e9;
        double dpkg_s = 1e9;
        for (int run = 0; run < kRuns; ++run) {
            kbuild_s = std::min(kbuild_s, seconds(out, kbuild_unpack));
            dpkg_s = std::min(dpkg_s, seconds(out, dpkg_unpack));
        }

        std::printf("unpack: kbuild %.2f s, dpkg-deb -x %.2f s, speed-up %.1fx (target >= %.1f)\n", kbuild_s, dpkg_s,
                    dpkg_s / kbuild_s, kTarget);
        std::printf("(%lld entries from %zu packages)\n", static_cast<long long>(files), debs.size());
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "unpack_bench: " << e.what() << "\n";
        return 1;
    }
}
