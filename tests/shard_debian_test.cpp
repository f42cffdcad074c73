// Two shards of four real Debian kernels (the Debian mirror, the local builder), merged: the
// same targets, artifacts and bytes as one unsharded run (labels network, slow).
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::vector<std::string> build_args(const fs::path& out) {
    return {"--cache-dir",
            (test::binary_dir() / "test-cache").string(),
            "build",
            "--distro",
            "debian",
            "--option",
            "suites=bookworm,bookworm-updates,bookworm-security",
            "--kernel",
            "^6\\.1\\.0-[0-9]+-(amd64|cloud-amd64|rt-amd64)$",
            "--latest",
            "4",
            "--builder",
            "local",
            "--module-src",
            (test::source_dir() / "examples/hello").string(),
            "--out",
            out.string()};
}

// What a target is and made, by kernel release: what the shards must agree with the whole on.
std::map<std::string, Json> outcomes(const Json& index) {
    std::map<std::string, Json> by_release;
    for (const auto& t : index["targets"])
        by_release[t["kernelrelease"]] = {t["status"], t["artifacts"], t["inputs"], t["config_md5"], t["packages"]};
    return by_release;
}

TEST(ShardDebian, TwoShardsMergedAreTheUnshardedRun) {
    test::TempDir dir;
    const ProcessResult whole = test::run_kbuild(build_args(dir / "whole"));
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    std::vector<std::string> indexes;
    size_t built = 0;
    for (const char* shard : {"0/2", "1/2"}) {
        const fs::path out = dir / ("shard-" + std::string(1, shard[0]));
        auto args = build_args(out);
        args.insert(args.end(), {"--shard", shard});
        const ProcessResult r = test::run_kbuild(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        if (!fs::exists(out / "index.json")) continue;  // an empty shard builds nothing
        indexes.push_back((out / "index.json").string());
        built += Json::parse(test::read_file(out / "index.json"))["targets"].size();
    }
    EXPECT_EQ(built, 4u);
    std::vector<std::string> merge{"index", "merge"};
    merge.insert(merge.end(), indexes.begin(), indexes.end());
    const ProcessResult merged = test::run_kbuild(merge);
    ASSERT_EQ(merged.exit_code, 0) << merged.err;
    const auto sharded = outcomes(Json::parse(merged.out));
    const auto unsharded = outcomes(Json::parse(test::read_file(dir / "whole/index.json")));
    EXPECT_EQ(sharded.size(), 4u);
    EXPECT_EQ(Json(sharded), Json(unsharded));
    // The same module bytes, wherever a shard wrote them.
    for (const auto& [release, outcome] : unsharded) {
        const std::string path = outcome[1][0]["path"];
        const fs::path in_shard = fs::exists(dir / "shard-0" / path) ? dir / "shard-0" / path : dir / "shard-1" / path;
        EXPECT_EQ(test::read_file(in_shard), test::read_file(dir / "whole" / path)) << release;
    }
}

}  // namespace
