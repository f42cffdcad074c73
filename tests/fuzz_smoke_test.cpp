// Every libFuzzer target of fuzz/ built with clang under ASan and UBSan (scripts/fuzz, in
// <build>/fuzz) and run a few seconds over its seed corpus: no crash, no leak, no hang, no
// sanitizer report, and each target did run inputs. Longer runs: scripts/fuzz run DIR SECONDS.
#include "test_util.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// fuzz/<name>_fuzz.cpp, each a target with a corpus.
std::set<std::string> fuzz_targets() {
    std::set<std::string> targets;
    for (const auto& entry : fs::directory_iterator(test::source_dir() / "fuzz")) {
        const std::string name = entry.path().filename().string();
        if (name.size() > 9 && name.substr(name.size() - 9) == "_fuzz.cpp")
            targets.insert(name.substr(0, name.size() - 4));
    }
    return targets;
}

}  // namespace

TEST(FuzzSmoke, EveryParserRunsCleanOverItsSeedCorpus) {
    const std::set<std::string> targets = fuzz_targets();
    ASSERT_GE(targets.size(), 14u);
    for (const auto& target : targets) {
        const std::string corpus = target.substr(0, target.size() - 5);
        EXPECT_FALSE(fs::is_empty(test::source_dir() / "fuzz/corpus" / corpus)) << target << " has no seeds";
    }
    ProcessOptions options;
    options.timeout = std::chrono::minutes(25);
    const ProcessResult r = run_process(
        {(test::source_dir() / "scripts/fuzz").string(), "run", (test::binary_dir() / "fuzz").string(), "5"}, options);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // "fuzz: <target>: <N> runs in 5 s, no finding", N > 0, for each target.
    const std::regex line(R"(fuzz: (\w+): ([0-9]+) runs in 5 s, no finding)");
    std::set<std::string> ran;
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), line), end; it != end; ++it) {
        EXPECT_GT(std::stol((*it)[2]), 0) << (*it)[0];
        ran.insert((*it)[1]);
    }
    EXPECT_EQ(ran, targets) << r.out;
}
