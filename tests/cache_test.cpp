// The cache's entries: leased entries are never evicted (by this process or another), eviction
// goes least recently used first down to the bound, and only dead processes' leftovers are
// removed. `kbuild cache list|prune` as a user runs them.
#include "fetch/cache.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;
using namespace std::chrono_literals;

namespace {

// An owner no process can be: above the largest pid_max (2^22).
const std::string kDeadOwner = "4194305";

// A cache entry of `kilobytes` KiB of real data, last used `age` ago.
fs::path make_entry(const Cache& cache, const std::string& relative, int kilobytes, std::chrono::minutes age) {
    const fs::path entry = cache.dir() / relative;
    fs::create_directories(entry);
    test::write_file(entry / "data", std::string(static_cast<std::size_t>(kilobytes) * 1024, 'x'));
    { const auto lease = cache.lease(entry); }
    const fs::path lock = cache.dir() / "locks" / relative;
    fs::last_write_time(lock, fs::file_time_type::clock::now() - age);
    return entry;
}

std::vector<std::string> names(const std::vector<Cache::Entry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.kind + "/" + e.path.filename().string());
    return out;
}

// A child process that takes `what` (lease an entry, or only live/<pid>), says so, and waits
// to be killed.
class Holder {
public:
    Holder(const fs::path& cache_dir, const fs::path& entry) {
        int ready[2];
        EXPECT_EQ(::pipe(ready), 0);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            const Cache cache(cache_dir);
            std::optional<Cache::Lease> lease;
            if (!entry.empty()) lease.emplace(cache.lease(entry));
            (void)!::write(ready[1], "1", 1);
            ::pause();
            ::_exit(0);
        }
        ::close(ready[1]);
        char byte = 0;
        EXPECT_EQ(::read(ready[0], &byte, 1), 1);
        ::close(ready[0]);
    }
    ~Holder() { stop(); }
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = 0;
    }
    std::string owner() const { return std::to_string(pid_); }

private:
    pid_t pid_ = 0;
};

}  // namespace

TEST(Cache, EvictsLeastRecentlyUsedFirstDownToTheBound) {
    test::TempDir dir;
    const Cache cache(dir.path());
    make_entry(cache, "trees/old", 400, 30min);
    make_entry(cache, "downloads/middle", 400, 20min);
    make_entry(cache, "prepared/new", 400, 10min);

    EXPECT_EQ(names(cache.entries()), (std::vector<std::string>{"trees/old", "downloads/middle", "prepared/new"}));
    const auto pruned = cache.prune(900 * 1024);
    EXPECT_EQ(names(pruned.evicted), (std::vector<std::string>{"trees/old"}));
    EXPECT_FALSE(fs::exists(dir / "trees/old"));
    EXPECT_TRUE(fs::exists(dir / "downloads/middle/data"));
    EXPECT_LE(pruned.kept, 900u * 1024);
    EXPECT_EQ(names(cache.entries()), (std::vector<std::string>{"downloads/middle", "prepared/new"}));
}

// A run's eviction renames at once and leaves the removal (seconds for a tree) to its caller.
TEST(Cache, ADeferredEvictionIsOutOfItsNameAtOnceAndRemovedByTheCaller) {
    test::TempDir dir;
    const Cache cache(dir.path());
    make_entry(cache, "trees/old", 400, 30min);
    make_entry(cache, "trees/new", 400, 10min);
    const auto pruned = cache.prune(500 * 1024, /*remove_now=*/false);
    EXPECT_EQ(names(pruned.evicted), (std::vector<std::string>{"trees/old"}));
    EXPECT_FALSE(fs::exists(dir / "trees/old"));
    ASSERT_EQ(pruned.doomed.size(), 1u);
    EXPECT_TRUE(fs::exists(pruned.doomed[0] / "data"));
    EXPECT_NE(pruned.doomed[0].filename().string().find("old.evict-"), std::string::npos);
    EXPECT_EQ(names(cache.entries()), (std::vector<std::string>{"trees/new"}));  // not an entry
    EXPECT_EQ(cache.remove_leftovers(), 0);                                      // this process's, and it runs
    fs::remove_all(pruned.doomed[0]);
}

TEST(Cache, ALeasedEntryIsNeverEvictedAndUsingItMakesItRecent) {
    test::TempDir dir;
    const Cache cache(dir.path());
    const fs::path used = make_entry(cache, "trees/used", 100, 60min);
    make_entry(cache, "trees/unused", 100, 5min);
    {
        const auto lease = cache.lease(used);
        const auto entries = cache.entries();
        ASSERT_EQ(names(entries), (std::vector<std::string>{"trees/unused", "trees/used"}));
        EXPECT_TRUE(entries.back().in_use);
        const auto pruned = cache.prune(0);
        EXPECT_EQ(names(pruned.evicted), (std::vector<std::string>{"trees/unused"}));
        EXPECT_EQ(pruned.in_use, 1);
        EXPECT_TRUE(fs::exists(used / "data"));
    }
    EXPECT_EQ(names(cache.prune(0).evicted), (std::vector<std::string>{"trees/used"}));
    EXPECT_TRUE(cache.entries().empty());
}

TEST(Cache, AnotherProcesssLeaseKeepsItsEntryUntilItDies) {
    test::TempDir dir;
    const Cache cache(dir.path());
    const fs::path entry = make_entry(cache, "trees/theirs", 100, 60min);
    Holder other(dir.path(), entry);
    EXPECT_TRUE(cache.prune(0).evicted.empty());
    EXPECT_TRUE(fs::exists(entry / "data"));
    other.stop();  // SIGKILL: the kernel drops its lock
    EXPECT_EQ(names(cache.prune(0).evicted), (std::vector<std::string>{"trees/theirs"}));
}

TEST(Cache, ALeaseTakenBeforeTheEntryExistsKeepsItOnceMade) {
    test::TempDir dir;
    const Cache cache(dir.path());
    const fs::path entry = dir / "trees/coming";
    const auto lease = cache.lease(entry);
    fs::create_directories(entry);
    test::write_file(entry / "data", "tree");
    lease.set_size(4096);
    const auto entries = cache.entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_TRUE(entries.front().in_use);
    EXPECT_TRUE(cache.prune(0).evicted.empty());
}

TEST(Cache, OnlyDeadProcessesLeftoversAreRemoved) {
    test::TempDir dir;
    const Cache cache(dir.path());
    Holder live(dir.path(), {});
    const std::string mine = std::to_string(::getpid());
    std::vector<fs::path> dead_ones, kept;
    for (const auto& owner : {kDeadOwner, live.owner(), mine}) {
        auto& list = owner == kDeadOwner ? dead_ones : kept;
        list.push_back(dir / ("trees/abc.part-" + owner + "-0"));
        list.push_back(dir / ("prepared/def.part-" + owner + "-1"));
        list.push_back(dir / ("work/" + owner + "-2"));
        list.push_back(dir / ("trees/ghi.evict-" + owner + "-3"));
        for (const auto& d : {list[list.size() - 4], list[list.size() - 3], list[list.size() - 2], list.back()})
            fs::create_directories(d / "sub");
        list.push_back(dir / ("prepared/def.part-" + owner + "-1.log"));
        list.push_back(dir / ("downloads/key/linux.deb.part-" + owner + "-4"));
        fs::create_directories(dir / "downloads/key");
        test::write_file(list[list.size() - 2], "log");
        test::write_file(list.back(), "half a download");
    }
    test::write_file(dir / "downloads/key/linux.deb", "a whole download");

    EXPECT_EQ(cache.remove_leftovers(), static_cast<int>(dead_ones.size()));
    for (const auto& p : dead_ones) EXPECT_FALSE(fs::exists(p)) << p;
    for (const auto& p : kept) EXPECT_TRUE(fs::exists(p)) << p;
    EXPECT_TRUE(fs::exists(dir / "downloads/key/linux.deb"));

    live.stop();  // killed: what it owned is a leftover now
    EXPECT_EQ(cache.remove_leftovers(), 6);
    for (const auto& p : kept) EXPECT_EQ(fs::exists(p), p.string().find(mine) != std::string::npos) << p;
}

TEST(Cache, SizesReadAndWritten) {
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("512M"), 512ull << 20);
    EXPECT_EQ(parse_size("20G"), 20ull << 30);
    EXPECT_EQ(parse_size("1.5T"), 3ull << 39);
    EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
    EXPECT_EQ(test::error_of([] { parse_size("lots"); }),
              "size 'lots': not a size (bytes, or a number followed by K, M, G or T)");
    EXPECT_EQ(size_text(1536), "1.5 KiB");
    EXPECT_EQ(size_text(20ull << 30), "20.0 GiB");
    EXPECT_EQ(size_text(12), "12 B");
}

TEST(Cache, ListAndPruneFromTheCommandLine) {
    test::TempDir dir;
    const fs::path cache_dir = dir / "cache";
    {
        const Cache cache(cache_dir);
        make_entry(cache, "trees/old", 300, 30min);
        make_entry(cache, "downloads/new", 300, 1min);
        fs::create_directories(cache_dir / ("work/" + kDeadOwner + "-0"));
    }
    const auto list = test::run_kbuild({"--cache-dir", cache_dir.string(), "cache", "list", "--output", "json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    const Json doc = Json::parse(list.out);
    ASSERT_EQ(doc["entries"].size(), 2u);
    EXPECT_EQ(doc["entries"][0]["kind"], "trees");
    EXPECT_EQ(doc["entries"][0]["in_use"], false);
    EXPECT_GE(doc["entries"][0]["bytes"].get<std::uint64_t>(), 300u * 1024);

    const auto table = test::run_kbuild({"--cache-dir", cache_dir.string(), "--cache-max", "1G", "cache", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("KIND"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("2 entries"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("(at most 1.0 GiB)"), std::string::npos) << table.out;

    const auto pruned = test::run_kbuild({"--cache-dir", cache_dir.string(), "cache", "prune", "--max", "400K"});
    ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
    EXPECT_EQ(test::lines_with(pruned.err, "1 leftovers of killed runs removed, 1 entries evicted"), 1) << pruned.err;
    EXPECT_FALSE(fs::exists(cache_dir / "trees/old"));
    EXPECT_TRUE(fs::exists(cache_dir / "downloads/new/data"));
    EXPECT_FALSE(fs::exists(cache_dir / ("work/" + kDeadOwner + "-0")));

    const auto bad = test::run_kbuild({"--cache-dir", cache_dir.string(), "--cache-max", "lots", "cache", "list"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_EQ(test::lines_with(bad.err, "--cache-max: size 'lots': not a size"), 1) << bad.err;
}
