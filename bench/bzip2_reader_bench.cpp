// bzip2_reader_bench <file.bz2>: how fast Bzip2Reader indexes a bzip2 file (the bit-level
// scan for block magics, alone and as the reader does it at open) and decodes all of it by
// sequential reads, on one thread and on all cores, against `bunzip2 -c FILE > /dev/null` on the
// same file. Best of three runs each (the whole decode once each for files over 200 MB).
#include "unpack/bzip2_reader.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

double best_seconds(int runs, const std::function<void()>& run) {
    double best = 1e300;
    for (int i = 0; i < runs; ++i) {
        const auto start = std::chrono::steady_clock::now();
        run();
        const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
        best = std::min(best, elapsed.count());
    }
    return best;
}

// CPU seconds (user + system) this process's threads, or its waited-for children, have used.
double cpu_seconds(int who) {
    struct rusage usage {};
    ::getrusage(who, &usage);
    const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Wall time (best of `runs`) and CPU time (per run, the mean) of `run`.
struct Timing {
    double wall = 0;
    double cpu = 0;
};

Timing timed(int runs, int who, const std::function<void()>& run) {
    const double cpu_before = cpu_seconds(who);
    const double wall = best_seconds(runs, run);
    return {wall, (cpu_seconds(who) - cpu_before) / runs};
}

// The file's bytes, mapped and read once so that the scan is timed from memory.
class MappedFile {
public:
    explicit MappedFile(const std::string& path) {
        const int fd = ::open(path.c_str(), O_RDONLY);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0) throw kbuild::Error(path + ": cannot open");
        size_ = static_cast<std::size_t>(st.st_size);
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) throw kbuild::Error(path + ": cannot map");
        data_ = static_cast<const unsigned char*>(p);
    }
    ~MappedFile() { ::munmap(const_cast<unsigned char*>(data_), size_); }
    const unsigned char* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    const unsigned char* data_ = nullptr;
    std::size_t size_ = 0;
};

std::uint64_t read_all(const std::string& path, unsigned threads) {
    kbuild::Bzip2Reader::Options options;
    options.threads = threads;
    kbuild::Bzip2Reader reader(path, options);
    std::vector<char> buf(std::size_t{4} << 20);
    std::uint64_t offset = 0;
    while (const std::size_t n = reader.read(offset, buf.data(), buf.size())) offset += n;
    return offset;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: bzip2_reader_bench <file.bz2>\n");
        return 2;
    }
    const std::string path = argv[1];
    try {
        const std::uint64_t compressed = std::filesystem::file_size(path);
        const int runs = compressed > (200u << 20) ? 1 : 3;
        const double mb = 1e6;

        std::size_t magics = 0;
        const double scan_seconds = best_seconds(3, [&] {
            const MappedFile file(path);
            magics = kbuild::find_bzip2_magics(file.data(), file.size()).size();
        });
        // The scan alone, the file already in memory.
        double scan_only = 1e300;
        {
            const MappedFile file(path);
            for (int i = 0; i < 3; ++i) {
                const auto start = std::chrono::steady_clock::now();
                magics = kbuild::find_bzip2_magics(file.data(), file.size()).size();
                const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
                scan_only = std::min(scan_only, took.count());
            }
        }
        std::size_t blocks = 0;
        const double open_seconds = best_seconds(3, [&] { blocks = kbuild::Bzip2Reader(path).block_count(); });
        std::printf("bzip2_reader: %s: %.1f MB compressed, %zu blocks, %zu magics\n", path.c_str(), compressed / mb,
                    blocks, magics);
        std::printf(
            "bzip2_reader: scan %.3f s (%.0f MB/s, one thread, from memory; %.3f s with "
            "the mapping); open %.3f s (%.0f MB/s: map and scan on every core)\n",
            scan_only, compressed / mb / scan_only, scan_seconds, open_seconds, compressed / mb / open_seconds);

        // The machine may be busy with other work: CPU time tells the cost of each way even
        // when wall time cannot show what parallel decoding gains.
        const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        std::uint64_t size = 0;
        const Timing one = timed(runs, RUSAGE_SELF, [&] { size = read_all(path, 1); });
        const Timing all = timed(runs, RUSAGE_SELF, [&] { size = read_all(path, cores); });
        kbuild::ProcessOptions discard;
        discard.log = "/dev/null";
        const Timing bunzip2 = timed(runs, RUSAGE_CHILDREN, [&] {
            const kbuild::ProcessResult r = kbuild::run_process({"bunzip2", "-c", path}, discard);
            if (r.exit_code != 0) throw kbuild::Error("bunzip2 -c " + path + ": exit " + std::to_string(r.exit_code));
        });
        const auto line = [&](const char* what, const Timing& t) {
            std::printf(
                "bzip2_reader: %-26s %7.2f s (%4.0f MB/s), CPU %7.2f s; bunzip2's time / "
                "this: wall %.2f, CPU %.2f\n",
                what, t.wall, size / mb / t.wall, t.cpu, bunzip2.wall / t.wall, bunzip2.cpu / t.cpu);
        };
        std::printf("bzip2_reader: %.1f MB decoded\n", size / mb);
        line("bunzip2 -c > /dev/null", bunzip2);
        line("Bzip2Reader, 1 thread", one);
        line(("Bzip2Reader, " + std::to_string(cores) + " threads").c_str(), all);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bzip2_reader_bench: %s\n", e.what());
        return 1;
    }
}
