// kbuild killed with SIGKILL (no cleanup of its own runs): the local build it was running dies
// with it, make and all (the reaper kills bwrap's group; bwrap's --die-with-parent and pid
// namespace end the sandbox too), and the reaper exits. The kernel is a package of the good
// fixture plugin whose Makefile sleeps, so no network is needed. orphan_docker_test does the
// same with a container build.
#include "test_util.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <csignal>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::vector<test::ProcessEntry> with_command(const std::string& command) {
    std::vector<test::ProcessEntry> found;
    for (const auto& p : test::processes())
        if (p.command == command) found.push_back(p);
    return found;
}

TEST(Orphan, AKilledLocalBuildLeavesNoProcessBehind) {
    test::TempDir dir;
    // sleep takes "3600.<pid>" for seconds: a command no other test's build runs.
    const std::string sleep = "sleep 3600." + std::to_string(::getpid());
    const pid_t kbuild = test::start_endless_build(dir.path(), "local", sleep);
    std::vector<test::ProcessEntry> tree;
    struct KillLeftovers {
        pid_t kbuild;
        const std::vector<test::ProcessEntry>& tree;
        ~KillLeftovers() {
            if (kbuild > 0 && ::kill(kbuild, SIGKILL) == 0) ::waitpid(kbuild, nullptr, 0);
            for (const auto& p : test::still_alive(tree)) ::kill(p.pid, SIGKILL);
        }
    } leftovers{kbuild, tree};

    // What kbuild runs once make runs the sleep: bwrap, make, the sleep, and kbuild's reaper.
    for (int i = 0; i < 1200 && with_command(sleep).empty(); ++i) ::usleep(50000);
    ASSERT_FALSE(with_command(sleep).empty()) << "the build never started: " << test::read_file(dir / "kbuild.log");
    tree = test::process_tree(kbuild);
    const auto named = [&](const std::string& name) {
        return std::count_if(tree.begin(), tree.end(), [&](const auto& p) { return p.name == name; });
    };
    EXPECT_EQ(named("make"), 1);
    EXPECT_EQ(named("kbuild-reaper"), 1);

    ASSERT_EQ(::kill(kbuild, SIGKILL), 0);
    ASSERT_EQ(::waitpid(kbuild, nullptr, 0), kbuild);
    leftovers.kbuild = 0;
    for (int i = 0; i < 200 && !test::still_alive(tree).empty(); ++i) ::usleep(50000);
    for (const auto& p : test::still_alive(tree))
        ADD_FAILURE() << "outlived kbuild: " << p.pid << " " << p.name << ": " << p.command;
    EXPECT_TRUE(with_command(sleep).empty());
}

}  // namespace
