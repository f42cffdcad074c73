// A bounded cache under real runs (labels network, slow: four real Debian kernels from the
// mirror, built by the local builder): two kbuild processes sharing one cache bounded to
// nothing both build every kernel, neither evicting what the other uses; and a run killed
// mid-build leaves leftovers the next start removes.
#include "test_util.h"

#include <gtest/gtest.h>

#include <future>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSuites = "suites=bookworm,bookworm-updates,bookworm-security";
const std::string kKernels = "^6\\.1\\.0-[0-9]+-(amd64|cloud-amd64|rt-amd64)$";  // as index_integrity_test

// A cache of its own, its downloads hard links to the shared test cache's (nothing is fetched
// twice, and evicting a link frees nothing of the shared one's).
fs::path seeded_cache(const fs::path& dir) {
    const fs::path cache = dir / "cache";
    const fs::path shared = test::binary_dir() / "test-cache" / "downloads";
    fs::create_directories(cache);
    if (fs::is_directory(shared)) {
        EXPECT_EQ(run_process({"cp", "-al", shared.string(), (cache / "downloads").string()}).exit_code, 0);
    }
    return cache;
}

std::vector<std::string> build_args(const fs::path& cache, const fs::path& out) {
    return {"--cache-dir",
            cache.string(),
            "build",
            "--distro",
            "debian",
            "--option",
            kSuites,
            "--kernel",
            kKernels,
            "--latest",
            "4",
            "--builder",
            "local",
            "--module-src",
            (test::source_dir() / "examples/hello").string(),
            "--out",
            out.string(),
            "--jobs",
            "2"};
}

int built(const fs::path& out) {
    int n = 0;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) n += t["status"] == "built";
    return n;
}

Json cache_list(const fs::path& cache) {
    const ProcessResult r = test::run_kbuild({"--cache-dir", cache.string(), "cache", "list", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out);
}

// Entries and files a run makes under its own name: "" when there are none.
std::string owned_leftovers(const fs::path& cache) {
    std::string found;
    for (const auto& entry : fs::recursive_directory_iterator(cache)) {
        const std::string name = entry.path().filename().string();
        if (name.find(".part-") != std::string::npos || name.find(".evict-") != std::string::npos ||
            (entry.path().parent_path().filename() == "work"))
            found += entry.path().string() + "\n";
    }
    return found;
}

}  // namespace

TEST(CacheBound, TwoRunsSharingACacheBoundedToNothingBothBuildEveryKernel) {
    test::TempDir dir;
    const fs::path cache = seeded_cache(dir.path());
    auto args_a = build_args(cache, dir / "out-a"), args_b = build_args(cache, dir / "out-b");
    for (auto* args : {&args_a, &args_b}) args->insert(args->begin(), {"--cache-max", "1"});
    auto a = std::async(std::launch::async, [&] { return test::run_kbuild(args_a); });
    auto b = std::async(std::launch::async, [&] { return test::run_kbuild(args_b); });
    const ProcessResult ra = a.get(), rb = b.get();
    ASSERT_EQ(ra.exit_code, 0) << ra.err;
    ASSERT_EQ(rb.exit_code, 0) << rb.err;
    EXPECT_EQ(built(dir / "out-a"), 4) << ra.err;
    EXPECT_EQ(built(dir / "out-b"), 4) << rb.err;
    EXPECT_NE((ra.err + rb.err).find("cache: evicted"), std::string::npos) << ra.err;

    // Every tree went when its build ended; what is left is what the last run's crawl read.
    const Json list = cache_list(cache);
    for (const auto& entry : list["entries"]) {
        EXPECT_EQ(entry["kind"], "downloads") << entry.dump();
        EXPECT_EQ(entry["in_use"], false) << entry.dump();
    }
    EXPECT_EQ(owned_leftovers(cache), "");
    EXPECT_FALSE(fs::exists(cache / "trees") && !fs::is_empty(cache / "trees"));
}

TEST(CacheBound, ARunKilledMidBuildLeavesLeftoversTheNextStartRemoves) {
    test::TempDir dir;
    const fs::path cache = seeded_cache(dir.path());
    const fs::path out = dir / "out";
    auto args = build_args(cache, out);
    const std::string building = "ls -d '" + (cache / "work").string() + "'/*/src >/dev/null 2>&1";
    const test::Stopped stopped = test::stop_kbuild_when(args, building, "KILL");
    ASSERT_TRUE(stopped.seen);
    EXPECT_EQ(stopped.exit_status, 128 + 9);
    EXPECT_NE(owned_leftovers(cache), "");

    const ProcessResult next = test::run_kbuild(args);
    ASSERT_EQ(next.exit_code, 0) << next.err;
    EXPECT_EQ(test::lines_with(next.err, "leftovers of killed runs"), 1) << next.err;
    EXPECT_EQ(owned_leftovers(cache), "");
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) EXPECT_TRUE(t["status"] == "built" || t["status"] == "skipped") << t.dump(2);
}
