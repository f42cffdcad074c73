// Container builds on the real mirror (labels docker, network): each Debian release's newest
// kernel built in the image kbuild picks for its gcc, a time limit, no network, headers left
// untouched, and what happens when the daemon does not answer.
#include "pipeline/pipeline.h"
#include "test_util.h"
#include "util/strings.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <unistd.h>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSuites =
    "suites=bullseye,bullseye-updates,bullseye-security,bookworm,bookworm-updates,"
    "bookworm-security,trixie,trixie-updates,trixie-security";

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

ProcessResult kbuild(std::vector<std::string> args, const ProcessOptions& options = {}) {
    args.insert(args.begin(), {"--cache-dir", cache_dir()});
    return test::run_kbuild(args, options);
}

std::string newest(const std::string& pattern) {
    const ProcessResult r = kbuild(
        {"crawl", "--distro", "debian", "--option", kSuites, "--kernel", pattern, "--latest", "1", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    if (doc["releases"].empty()) throw Error("no release matches " + pattern);
    return doc["releases"][0]["kernelrelease"];
}

Json target_in(const fs::path& out, const std::string& release) {
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"])
        if (t["kernelrelease"] == release) return t;
    throw Error("no target " + release);
}

std::vector<std::string> build_args(const std::string& release, const std::string& module, const fs::path& out) {
    return {"build",
            "--distro",
            "debian",
            "--option",
            kSuites,
            "--kernel",
            "^" + test::regex_literal(release) + "$",
            "--module-src",
            (test::source_dir() / module).string(),
            "--out",
            out.string()};
}

// kbuild's containers (label kbuild), by id.
std::set<std::string> kbuild_containers() {
    const ProcessResult r = run_process({"docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=kbuild"});
    std::set<std::string> ids;
    std::istringstream lines(r.out);
    for (std::string id; std::getline(lines, id);)
        if (!id.empty()) ids.insert(id);
    return ids;
}

// Each test ends with no container of its own left: those there before it (a machine stopped
// in the middle of another run leaves its containers exited) are not its own.
class DockerBuild : public ::testing::Test {
protected:
    void SetUp() override { before_ = kbuild_containers(); }

    std::vector<std::string> containers_left() const {
        std::vector<std::string> left;
        for (const auto& id : kbuild_containers())
            if (!before_.count(id)) left.push_back(id);
        return left;
    }

private:
    std::set<std::string> before_;
};

TEST_F(DockerBuild, EachReleasesNewestKernelInTheImageForItsGcc) {
    const std::vector<std::tuple<std::string, std::string, int>> kernels = {
        {newest("^5\\.10\\.0-[0-9]+-amd64$"), "debian-bullseye", 10},
        {newest("^6\\.1\\.0-[0-9]+-amd64$"), "debian-bookworm", 12},
        {newest("^6\\.12\\.[0-9]+\\+deb13-amd64$"), "debian-trixie", 14}};
    std::string pattern;
    for (const auto& k : kernels) pattern += (pattern.empty() ? "" : "|") + test::regex_literal(std::get<0>(k));
    test::TempDir out;
    const ProcessResult r = kbuild({"build", "--distro", "debian", "--option", kSuites, "--builder", "docker", "--jobs",
                                    "2", "--kernel", "^(" + pattern + ")$", "--module-src",
                                    (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& [release, image, gcc] : kernels) {
        const Json t = target_in(out.path(), release);
        ASSERT_EQ(t["status"], "built") << t.dump(2);
        EXPECT_EQ(t["builder"], "kbuild/builder-" + image + ":latest");
        // "gcc-12 (Debian ...) 12.2.0", or "x86_64-linux-gnu-gcc-14 (Debian ...) 14.2.0"
        EXPECT_NE(t["compiler"].get<std::string>().find("gcc-" + std::to_string(gcc) + " "), std::string::npos)
            << t["compiler"];
        EXPECT_NE(t["builder_reason"].get<std::string>().find("has the same gcc"), std::string::npos);
        const ProcessResult modinfo =
            run_process({"modinfo", "-F", "vermagic", (out / t["artifacts"][0]["path"].get<std::string>()).string()});
        EXPECT_EQ(modinfo.out.rfind(release + " ", 0), 0u) << modinfo.out;
    }
    EXPECT_EQ(containers_left(), std::vector<std::string>{});
}

TEST_F(DockerBuild, ABuildThatNeverEndsIsKilledAtTheTimeLimit) {
    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    auto args = build_args(release, "tests/fixtures/modules/sleeper", out.path());
    args.insert(args.end(), {"--builder", "docker", "--build-timeout", "5"});
    const ProcessResult r = kbuild(args);
    EXPECT_EQ(r.exit_code, 1);
    const Json t = target_in(out.path(), release);
    EXPECT_EQ(t["status"], "failed");
    EXPECT_EQ(t["reason"], "timed out after 5 s (log: " + (out / t["log"].get<std::string>()).string() + ")");
    EXPECT_EQ(containers_left(), std::vector<std::string>{});
}

TEST_F(DockerBuild, AnInterruptedKbuildLeavesNoContainerBehind) {
    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    auto args = build_args(release, "tests/fixtures/modules/sleeper", out.path());
    args.insert(args.end(), {"--builder", "docker"});
    args.insert(args.begin(), {"--cache-dir", cache_dir()});
    // Interrupted as Ctrl-C would, once its container exists.
    const test::Stopped stopped =
        test::stop_kbuild_when(args, "[ -n \"$(docker ps -q --filter label=kbuild.pid=$pid)\" ]", "INT");
    EXPECT_TRUE(stopped.seen) << "no container appeared";
    EXPECT_EQ(stopped.exit_status, 130);
    EXPECT_EQ(containers_left(), std::vector<std::string>{});
    // The interruption is not the target's failure.
    EXPECT_FALSE(fs::exists(out / "index.json") &&
                 test::read_file(out / "index.json").find("\"failed\"") != std::string::npos);
}

TEST_F(DockerBuild, ABuildThatReachesForTheNetworkFindsNone) {
    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    auto args = build_args(release, "tests/fixtures/modules/netprobe", out.path());
    args.insert(args.end(), {"--builder", "docker"});
    EXPECT_EQ(kbuild(args).exit_code, 1);
    const Json t = target_in(out.path(), release);
    EXPECT_EQ(t["status"], "failed");
    EXPECT_NE(t["reason"].get<std::string>().find("network probe failed"), std::string::npos) << t["reason"];
    EXPECT_NE(t["reason"].get<std::string>().find("unreachable"), std::string::npos) << t["reason"];
}

TEST_F(DockerBuild, TheHeadersTreeIsByteIdenticalAfterABuild) {
    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    auto args = build_args(release, "examples/hello", out.path());
    args.insert(args.end(), {"--builder", "docker"});
    ASSERT_EQ(kbuild(args).exit_code, 0);  // the tree is unpacked and cached now
    fs::path tree;
    for (const auto& entry : fs::directory_iterator(fs::path(cache_dir()) / "trees"))
        if (fs::is_directory(entry.path() / "usr/src" / ("linux-headers-" + release))) tree = entry.path();
    ASSERT_FALSE(tree.empty());
    const std::string before = digest_tree(tree);
    args.push_back("--force");
    ASSERT_EQ(kbuild(args).exit_code, 0);
    EXPECT_EQ(digest_tree(tree), before);
}

TEST_F(DockerBuild, ADaemonThatDoesNotAnswer) {
    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    ProcessOptions no_daemon;
    no_daemon.env = {"DOCKER_HOST=unix:///nonexistent/docker.sock"};
    auto args = build_args(release, "examples/hello", out.path());
    args.insert(args.end(), {"--builder", "docker"});
    const ProcessResult docker = kbuild(args, no_daemon);
    EXPECT_EQ(docker.exit_code, 1);
    EXPECT_EQ(docker.err,
              "error: docker: the daemon at /nonexistent/docker.sock does not answer "
              "(start dockerd, or use --builder local)\n");

    args.back() = "auto";
    const ProcessResult fallback = kbuild(args, no_daemon);
    EXPECT_EQ(fallback.exit_code, 0) << fallback.err;
    EXPECT_NE(fallback.err.find("builder: local (auto: the Docker daemon at /nonexistent/docker.sock does not answer)"),
              std::string::npos)
        << fallback.err;
    EXPECT_EQ(target_in(out.path(), release)["builder"], "local");
}

// The machine stopped in the middle of a container build: the daemon stopped with it and the
// container stayed, exited. The next kbuild on this machine to build in containers removes
// those of earlier boots, and no other.
TEST_F(DockerBuild, ContainersLeftWhenTheMachineLastStoppedAreRemoved) {
    const std::string machine = trim(test::read_file("/etc/machine-id"));
    const std::string boot = trim(test::read_file("/proc/sys/kernel/random/boot_id"));
    ASSERT_FALSE(machine.empty() || boot.empty());
    const std::string earlier_boot = "00000000-0000-4000-8000-" + std::to_string(1000000000000 + ::getpid());
    // An exited container of kbuild's labelled with this machine and a boot, its id.
    const auto left = [](const std::string& machine, const std::string& boot) {
        const ProcessResult r =
            run_process({"docker", "run", "-d", "--label", "kbuild=build", "--label", "kbuild.machine=" + machine,
                         "--label", "kbuild.boot=" + boot, "kbuild/builder-debian-bookworm:latest", "true"});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const std::string id = trim(r.out);
        run_process({"docker", "wait", id});
        return id;
    };
    const std::string stale = left(machine, earlier_boot);
    const std::string this_boot = left(machine, boot);
    const std::string other_machine = left("another-machine", earlier_boot);
    std::set<std::string> kept{this_boot, other_machine};

    const std::string release = newest("^6\\.1\\.0-[0-9]+-amd64$");
    test::TempDir out;
    auto args = build_args(release, "examples/hello", out.path());
    args.insert(args.end(), {"--builder", "docker"});
    const ProcessResult r = kbuild(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("docker: removed 1 container left by kbuild when this machine last stopped"),
              std::string::npos)
        << r.err;
    const std::set<std::string> now = kbuild_containers();
    EXPECT_EQ(now.count(stale), 0u);
    for (const auto& id : kept) EXPECT_EQ(now.count(id), 1u) << id;
    for (const auto& id : kept) run_process({"docker", "rm", "-f", id});
    EXPECT_EQ(containers_left(), std::vector<std::string>{});
}

}  // namespace
