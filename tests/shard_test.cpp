// Sharding over synthetic targets, as a fleet of N workers would split them, and merging the
// shards' indexes; and `kbuild index merge` as a user runs it.
#include "targets/shard.h"
#include "output/artifacts.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// n synthetic targets across the families' naming.
std::vector<Release> synthetic(size_t n) {
    const char* distros[] = {"debian", "ubuntu", "centos", "amazonlinux2", "flatcar"};
    std::vector<Release> releases;
    for (size_t i = 0; i < n; ++i) {
        Release r;
        r.distro = distros[i % 5];
        r.arch = "amd64";
        r.release = std::to_string(4 + i % 3) + "." + std::to_string(i % 97) + ".0-" + std::to_string(i) + "-generic";
        if (i % 11 == 0) r.variant = "20.04." + std::to_string(i % 4);
        releases.push_back(r);
    }
    return releases;
}

TEST(Shard, ParsesKOfNCountingFromZero) {
    EXPECT_EQ(parse_shard("0/1").count, 1u);
    EXPECT_EQ(parse_shard("6/7").index, 6u);
    for (const char* bad : {"7/7", "-1/3", "a/b", "3", "1/0", "/2", "1/", "99999999/100000000"}) {
        try {
            parse_shard(bad);
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()),
                      std::string("--shard ") + bad + ": expected K/N with 0 <= K < N (K counts from 0)");
        }
    }
}

// Which shard each target of the list lands in, by splitting the list as N workers do.
std::map<std::string, unsigned> placement(const std::vector<Release>& releases, unsigned n) {
    std::map<std::string, unsigned> shard_of_target;
    for (unsigned k = 0; k < n; ++k)
        for (const auto& r : releases_of_shard(releases, {k, n})) shard_of_target[r.distro + " " + release_id(r)] = k;
    return shard_of_target;
}

TEST(Shard, EveryTargetInExactlyOneShardAndNewKernelsMoveNone) {
    const auto all = synthetic(10000);
    // 100 new kernels among the old ones, not after them: a split by position would move most.
    const auto fresh = synthetic(10100);
    std::vector<Release> more;
    for (size_t i = 0; i < all.size(); ++i) {
        if (i % 100 == 0) more.push_back(fresh[all.size() + i / 100]);
        more.push_back(all[i]);
    }
    ASSERT_EQ(more.size(), 10100u);
    for (const unsigned n : {1u, 7u, 50u}) {
        std::multiset<std::string> placed;
        size_t smallest = all.size(), largest = 0;
        for (unsigned k = 0; k < n; ++k) {
            const auto mine = releases_of_shard(all, {k, n});
            for (const auto& r : mine) placed.insert(r.distro + " " + release_id(r));
            smallest = std::min(smallest, mine.size());
            largest = std::max(largest, mine.size());
        }
        EXPECT_EQ(placed.size(), all.size()) << n;
        for (const auto& r : all) EXPECT_EQ(placed.count(r.distro + " " + release_id(r)), 1u);
        // Balanced within 30% of the mean (binomial spread is far smaller).
        const double mean = static_cast<double>(all.size()) / n;
        EXPECT_GT(static_cast<double>(smallest), 0.7 * mean) << n;
        EXPECT_LT(static_cast<double>(largest), 1.3 * mean) << n;
        // 10,000 -> 10,100 targets, split again: every existing target keeps its shard.
        const auto before = placement(all, n), after = placement(more, n);
        ASSERT_EQ(after.size(), more.size()) << n;
        size_t moved = 0;
        for (const auto& [target, shard] : before) moved += after.at(target) != shard;
        EXPECT_EQ(moved, 0u) << n;
    }
}

TargetRecord record_for(const Release& r, const std::string& status) {
    TargetRecord t{r.distro, r.arch, r.release, "1", "hello"};
    t.variant = r.variant;
    t.status = *target_status(status);
    t.inputs = sha256_text(release_id(r));
    if (status == "built")
        t.artifacts = {{"hello-" + release_id(r) + ".ko", sha256_text("ko " + release_id(r)), r.release + " SMP"}};
    return t;
}

TEST(Shard, FiftyShardIndexesMergeIntoTheUnshardedOne) {
    test::TempDir dir;
    const auto all = synthetic(600);
    Index whole(dir / "whole");
    std::vector<fs::path> files;
    for (unsigned k = 0; k < 50; ++k) {
        Index shard(dir / ("shard-" + std::to_string(k)));
        for (const auto& r : releases_of_shard(all, {k, 50}))
            shard.put(record_for(r, r.release.size() % 3 ? "built" : "failed"));
        if (fs::exists(shard.path())) files.push_back(shard.path());
    }
    for (const auto& r : all) whole.put(record_for(r, r.release.size() % 3 ? "built" : "failed"));
    EXPECT_EQ(Json(merge_indexes(files)), Json(whole.records()));
}

TEST(Shard, MergeRefusesTwoOutcomesForOneTarget) {
    test::TempDir dir;
    const Release r = synthetic(1)[0];
    Index a(dir / "a"), b(dir / "b"), c(dir / "c");
    a.put(record_for(r, "built"));
    b.put(record_for(r, "built"));  // the same outcome twice is one target
    TargetRecord other = record_for(r, "built");
    other.artifacts[0].sha256 = sha256_text("another build");
    c.put(other);
    EXPECT_EQ(merge_indexes({a.path(), b.path()}).size(), 1u);
    try {
        merge_indexes({a.path(), b.path(), c.path()});
        ADD_FAILURE() << "a conflict was merged";
    } catch (const Error& e) {
        const std::string text = e.what();
        EXPECT_EQ(text.rfind(c.path().string() + ": debian amd64 " + release_id(r) + " hello (built, ", 0), 0u) << text;
        EXPECT_NE(text.find(" conflicts with " + a.path().string() + ": "), std::string::npos) << text;
    }
}

TEST(Shard, IndexMergeVerbWritesTheMergedIndex) {
    test::TempDir dir;
    const auto all = synthetic(40);
    Index a(dir / "a"), b(dir / "b"), whole(dir / "whole");
    for (const auto& r : all) {
        (shard_of(r.distro, release_id(r), 2) == 0 ? a : b).put(record_for(r, "built"));
        whole.put(record_for(r, "built"));
    }
    const ProcessResult merged = test::run_kbuild({"index", "merge", a.path().string(), b.path().string()});
    ASSERT_EQ(merged.exit_code, 0) << merged.err;  // a and b's journals replayed
    whole.flush();                                 // index.json alone: the journal folded in
    EXPECT_EQ(Json::parse(merged.out), Json::parse(test::read_file(whole.path())));

    test::write_file(dir / "junk.json", "{\"not\": \"an index\"}");
    const ProcessResult junk = test::run_kbuild({"index", "merge", a.path().string(), (dir / "junk.json").string()});
    EXPECT_EQ(junk.exit_code, 1);
    EXPECT_NE(junk.err.find((dir / "junk.json").string() + ": not a kbuild index"), std::string::npos) << junk.err;
    EXPECT_TRUE(junk.out.empty()) << junk.out;
}

}  // namespace
