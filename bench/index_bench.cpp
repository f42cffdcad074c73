// index_bench [DIR]: what recording a target in <out>/index.json costs at 10, 1,000 and 10,000
// records: Index::put (a journal line, index.json rewritten once per records / 4 puts) against
// the way it was done before, reimplemented here and measured in the same run (find, sort,
// the whole file written to a temporary file and renamed over index.json on every put). Each
// figure is microseconds a put, over enough puts to include the Index's rewrites (four records
// rewritten a put, amortised, from 1,024 records on; fewer below). The target is a ratio at
// 10,000 records of at most 0.01.
#include "sample_record.h"

#include "output/artifacts.h"

#include <kbuild/types.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using kbuild::TargetRecord;

namespace {

constexpr double kTargetRatio = 0.01;

TargetRecord record(size_t n, size_t round) {
    return kbuild::bench::sample_record(n, round);
}

// index.json as it was kept before the journal: every put rewrote the whole file.
class RewritingIndex {
public:
    explicit RewritingIndex(fs::path dir) : dir_(std::move(dir)), path_(dir_ / "index.json") {}
    void put(const TargetRecord& record) {
        auto it = std::find_if(records_.begin(), records_.end(), [&](const TargetRecord& r) {
            return kbuild::target_key(r) == kbuild::target_key(record);
        });
        if (it != records_.end())
            *it = record;
        else
            records_.push_back(record);
        std::sort(records_.begin(), records_.end(), [](const TargetRecord& a, const TargetRecord& b) {
            return kbuild::target_key(a) < kbuild::target_key(b);
        });
        fs::create_directories(dir_);
        const fs::path temporary = path_.string() + ".tmp";
        {
            std::ofstream out(temporary, std::ios::trunc);
            out << kbuild::Json{{"schema", kbuild::kSchema}, {"targets", records_}}.dump(2) << '\n';
        }
        fs::rename(temporary, path_);
    }
    // The records, as if put one by one (which would take minutes at 10,000).
    void fill(size_t size) {
        for (size_t n = 0; n < size; ++n) records_.push_back(record(n, 0));
        put(record(0, 0));
    }

private:
    fs::path dir_, path_;
    std::vector<TargetRecord> records_;
};

double seconds_of(const std::function<void()>& run) {
    const auto start = std::chrono::steady_clock::now();
    run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Microseconds a put of an existing target's new record, `puts` of them, into an index of
// `size` records (filled beforehand).
template <class AnyIndex>
double micros_a_put(AnyIndex& index, size_t size, size_t puts) {
    const double seconds = seconds_of([&] {
        for (size_t i = 0; i < puts; ++i) index.put(record(i % size, 1 + i / size));
    });
    return seconds * 1e6 / static_cast<double>(puts);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const fs::path dir =
            argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / ("index_bench-" + std::to_string(::getpid()));
        double index_at_largest = 0, rewriting_at_largest = 0;
        for (const size_t size : {10u, 1000u, 10000u}) {
            fs::remove_all(dir);
            double index_us = 0;
            {
                kbuild::Index index(dir / "index");
                for (size_t n = 0; n < size; ++n) index.put(record(n, 0));
                index.flush();
                // Four whole rounds of journal lines, each ending in a rewrite of index.json.
                index_us = micros_a_put(index, size, 4 * (std::max<size_t>(256, size / 4) + 1));
            }
            RewritingIndex rewriting(dir / "rewriting");
            rewriting.fill(size);
            const double rewriting_us = micros_a_put(rewriting, size, std::max<size_t>(20, 20000 / size));
            std::printf("index: %zu records: Index::put %.1f us, rewrite on every put %.1f us\n", size, index_us,
                        rewriting_us);
            index_at_largest = index_us;
            rewriting_at_largest = rewriting_us;
        }
        fs::remove_all(dir);
        std::printf(
            "index: at 10000 records, Index::put %.1f us, rewrite on every put %.1f us, ratio %.4f (target <= %.2f)\n",
            index_at_largest, rewriting_at_largest, index_at_largest / rewriting_at_largest, kTargetRatio);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "index_bench: %s\n", e.what());
        return 1;
    }
}
