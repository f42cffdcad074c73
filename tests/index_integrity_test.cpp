// What index.json records is what lies on disk: after a run killed mid-way and resumed, and
// when two targets' artifacts are named alike, whatever the order of work (labels network,
// slow: four real Debian kernels from the mirror, built by the local builder).
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSuites = "suites=bookworm,bookworm-updates,bookworm-security";
// The four kernels the shard test builds too: their packages are cached once for both.
const std::string kKernels = "^6\\.1\\.0-[0-9]+-(amd64|cloud-amd64|rt-amd64)$";

std::vector<std::string> in_cache(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-dir", (test::binary_dir() / "test-cache").string()});
    return args;
}

std::vector<std::string> build_args(const fs::path& out, const std::string& kernels) {
    return in_cache({"build", "--distro", "debian", "--option", kSuites, "--kernel", kernels, "--latest", "4",
                     "--builder", "local", "--module-src", (test::source_dir() / "examples/hello").string(), "--out",
                     out.string()});
}

std::vector<std::string> kernel_releases() {
    const ProcessResult r = test::run_kbuild(in_cache({"crawl", "--distro", "debian", "--option", kSuites, "--kernel",
                                                       kKernels, "--latest", "4", "--output", "json"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    std::vector<std::string> releases;
    for (const auto& release : doc["releases"]) releases.push_back(release["kernelrelease"]);
    std::sort(releases.begin(), releases.end());
    return releases;
}

// Every artifact index.json records, checked against the file: "" when all hash right.
std::string unfaithful_records(const fs::path& out) {
    std::string wrong;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"])
        for (const auto& a : t["artifacts"]) {
            const fs::path file = out / a["path"].get<std::string>();
            if (!fs::is_regular_file(file))
                wrong += a["path"].get<std::string>() + ": missing\n";
            else if (sha256_file(file.string()) != a["sha256"])
                wrong += a["path"].get<std::string>() + ": other bytes\n";
        }
    return wrong;
}

std::vector<std::string> staged_files(const fs::path& out) {
    std::vector<std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(out))
        if (entry.path().filename().string().find(".tmp-") != std::string::npos) files.push_back(entry.path());
    return files;
}

std::map<std::string, Json> by_release(const fs::path& out) {
    std::map<std::string, Json> targets;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    return targets;
}

}  // namespace

TEST(IndexIntegrity, AKilledRunRecordsOnlyWhatIsOnDiskAndItsResumeFinishes) {
    test::TempDir dir;
    const fs::path out = dir / "out";
    ASSERT_EQ(kernel_releases().size(), 4u);
    auto args = build_args(out, kKernels);
    args.insert(args.end(), {"--jobs", "2"});
    // Killed (no chance to tidy up) as soon as the first module is in place.
    const test::Stopped stopped =
        test::stop_kbuild_when(args, "ls '" + out.string() + "'/*.ko >/dev/null 2>&1", "KILL");
    ASSERT_TRUE(stopped.seen);
    EXPECT_EQ(stopped.exit_status, 128 + 9);
    ASSERT_TRUE(fs::exists(out / "index.json"));
    EXPECT_EQ(unfaithful_records(out), "");

    const ProcessResult resumed = test::run_kbuild(args);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_EQ(unfaithful_records(out), "");
    EXPECT_EQ(staged_files(out), std::vector<std::string>{});
    const auto targets = by_release(out);
    ASSERT_EQ(targets.size(), 4u);
    int skipped = 0;
    for (const auto& [release, t] : targets) {
        EXPECT_TRUE(t["status"] == "built" || t["status"] == "skipped") << t.dump(2);
        skipped += t["status"] == "skipped";
    }
    EXPECT_LE(skipped, 2);  // what the killed run finished is not built again

    const ProcessResult again = test::run_kbuild(args);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    for (const auto& [release, t] : by_release(out)) EXPECT_EQ(t["status"], "skipped") << release;
    EXPECT_EQ(unfaithful_records(out), "");
}

// Two targets a naming cannot tell apart: the one that sorts first keeps the name, whether the
// two are built at once, or one run after the other in either order.
TEST(IndexIntegrity, TargetsNamedAlikeEndTheSameWhateverTheOrder) {
    const auto releases = kernel_releases();
    ASSERT_GE(releases.size(), 2u);
    const std::string first = releases[0], second = releases[1];
    test::TempDir dir;
    auto naming = [](std::vector<std::string> args) {
        args.insert(args.end(), {"--naming-template", "{module}-{arch}.ko"});
        return args;
    };
    const std::string both = "^(" + test::regex_literal(first) + "|" + test::regex_literal(second) + ")$";
    const std::string only_first = "^" + test::regex_literal(first) + "$",
                      only_second = "^" + test::regex_literal(second) + "$";
    const std::vector<std::vector<std::string>> orders = {
        {both, "--jobs", "1"}, {both, "--jobs", "2"}, {only_first, only_second}, {only_second, only_first}};
    const std::string expected_reason =
        "hello-amd64.ko: also the artifact of debian " + first +
        ", which keeps it (of targets named alike, the one that sorts first does); the naming cannot tell them "
        "apart (add {kernelrelease}, {variant} or {config_md5})";
    int n = 0;
    for (const auto& order : orders) {
        const fs::path out = dir / ("order-" + std::to_string(n++));
        if (order[0] == both) {
            auto args = naming(build_args(out, both));
            args.insert(args.end(), order.begin() + 1, order.end());
            EXPECT_EQ(test::run_kbuild(args).exit_code, 1);
        } else {
            for (const auto& one : order) test::run_kbuild(naming(build_args(out, one)));
        }
        const auto targets = by_release(out);
        ASSERT_EQ(targets.size(), 2u) << out;
        EXPECT_EQ(targets.at(first)["status"], "built") << targets.at(first).dump(2);
        EXPECT_EQ(targets.at(first)["artifacts"][0]["path"], "hello-amd64.ko");
        EXPECT_EQ(targets.at(second)["status"], "failed");
        EXPECT_EQ(targets.at(second)["reason"], expected_reason);
        EXPECT_EQ(targets.at(second)["artifacts"], Json::array());
        EXPECT_EQ(unfaithful_records(out), "");
        const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", (out / "hello-amd64.ko").string()});
        EXPECT_EQ(modinfo.out.rfind(first + " ", 0), 0u) << modinfo.out;
    }
}
