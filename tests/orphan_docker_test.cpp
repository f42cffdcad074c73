// kbuild killed with SIGKILL (no cleanup of its own runs, DockerBuilder's removal neither): the
// container it was building in goes with it. The kernel is a package of the good fixture plugin
// whose Makefile sleeps (in the image of its gcc 12), so no network is needed.
#include "build/docker.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

bool running(const std::string& command) {
    for (const auto& p : test::processes())
        if (p.command == command) return true;
    return false;
}

TEST(OrphanDocker, AKilledContainerBuildLeavesNoContainerBehind) {
    const Docker docker;
    test::TempDir dir;
    // sleep takes "3600.<pid>" for seconds: a command no other test's build runs. The
    // container's processes are this host's too, in /proc.
    const std::string sleep = "sleep 3600." + std::to_string(::getpid());
    const pid_t kbuild = test::start_endless_build(dir.path(), "docker", sleep);
    // Containers carry their kbuild's process id (builder.cpp's owner_label).
    const std::map<std::string, std::string> owner{{"kbuild.pid", std::to_string(kbuild)}};
    struct RemoveLeftovers {
        const Docker& docker;
        const std::map<std::string, std::string>& owner;
        pid_t kbuild;
        ~RemoveLeftovers() {
            if (kbuild > 0 && ::kill(kbuild, SIGKILL) == 0) ::waitpid(kbuild, nullptr, 0);
            try {
                for (const auto& id : docker.containers(owner)) docker.remove_container(id);
            } catch (const std::exception& e) {
                ADD_FAILURE() << e.what();
            }
        }
    } leftovers{docker, owner, kbuild};

    for (int i = 0; i < 2400 && !running(sleep); ++i) ::usleep(50000);
    ASSERT_TRUE(running(sleep)) << "the build never started: " << test::read_file(dir / "kbuild.log");
    ASSERT_EQ(docker.containers(owner).size(), 1u);
    const std::vector<test::ProcessEntry> tree = test::process_tree(kbuild);

    ASSERT_EQ(::kill(kbuild, SIGKILL), 0);
    ASSERT_EQ(::waitpid(kbuild, nullptr, 0), kbuild);
    leftovers.kbuild = 0;
    for (int i = 0; i < 600 && !(docker.containers(owner).empty() && test::still_alive(tree).empty()); ++i)
        ::usleep(50000);
    EXPECT_TRUE(docker.containers(owner).empty()) << "the container outlived kbuild";
    EXPECT_FALSE(running(sleep));
    for (const auto& p : test::still_alive(tree))
        ADD_FAILURE() << "outlived kbuild: " << p.pid << " " << p.name << ": " << p.command;
}

}  // namespace
