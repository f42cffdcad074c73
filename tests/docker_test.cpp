// The Docker Engine API client against the real daemon: a tiny busybox image imported from a
// directory, an image built on it, and containers run with mounts, limits and time limits.
// No registry is reachable, so every image is made here. Tags and labels carry this process's
// id: CTest runs each case in its own process, possibly several at once.
#include "build/docker.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kPid = std::to_string(::getpid());
const std::string kBusybox = "kbuild-test/busybox:" + kPid;
const std::string kBuilt = "kbuild-test/built:" + kPid;
const std::string kBroken = "kbuild-test/broken:" + kPid;
const std::string kCut = "kbuild-test/cut:" + kPid;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The labels of this process's containers: a check for leftovers sees only its own.
std::map<std::string, std::string> case_labels(const std::string& name) {
    return {{"kbuild.test", "1"}, {"kbuild.test.case", name + "-" + kPid}};
}

// A root file system of a static busybox and links to it, plus what the tar writer must
// keep: a hard link, a file mode, an empty directory.
void make_busybox_root(const fs::path& root) {
    fs::create_directories(root / "bin");
    fs::create_directories(root / "tmp");
    fs::create_directories(root / "etc");
    fs::copy_file("/bin/busybox", root / "bin/busybox");
    for (const char* applet :
         {"sh", "sleep", "cat", "echo", "nc", "id", "seq", "stat", "ls", "pwd", "wc", "head", "true", "false"})
        fs::create_symlink("busybox", root / "bin" / applet);
    fs::create_hard_link(root / "bin/busybox", root / "bin/busybox-link");
    test::write_file(root / "etc/secret", "s3cret\n");
    fs::permissions(root / "etc/secret", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

class DockerTest : public ::testing::Test {
protected:
    // Imported once per process, on first use; the suite's end removes every test image.
    static const std::string& busybox() {
        if (!imported_) {
            test::TempDir dir;
            make_busybox_root(dir / "root");
            Docker().import_directory(dir / "root", kBusybox);
            imported_ = true;
        }
        return kBusybox;
    }

    static void TearDownTestSuite() {
        Docker docker;
        for (const auto& tag : {kBuilt, kBroken, kCut, kBusybox}) docker.remove_image(tag);
    }

    static ContainerSpec shell(const std::string& script, const std::string& case_name) {
        ContainerSpec spec;
        spec.image = busybox();
        spec.command = {"/bin/sh", "-c", script};
        spec.labels = case_labels(case_name);
        return spec;
    }

    Docker docker;
    static inline bool imported_ = false;
};

TEST_F(DockerTest, PingAnswers) {
    EXPECT_TRUE(docker.ping());
}

TEST_F(DockerTest, PingIsFalseQuicklyForAMissingSocket) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(Docker("/nonexistent/docker.sock").ping());
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(DockerTest, AMissingSocketIsNamedWithTheCause) {
    try {
        Docker("/nonexistent/docker.sock").images();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "docker: cannot connect to /nonexistent/docker.sock: No such file or directory "
                  "(is dockerd running?)");
    }
}

TEST_F(DockerTest, ImportsADirectoryAndInspectsIt) {
    std::vector<std::string> lines;
    test::TempDir dir;
    make_busybox_root(dir / "root");
    const std::string again = "kbuild-test/busybox-again:" + kPid;
    docker.import_directory(dir / "root", again, [&](const std::string& l) { lines.push_back(l); });
    ASSERT_FALSE(lines.empty());
    EXPECT_TRUE(contains(lines.back(), "sha256:")) << lines.back();

    const auto image = docker.image(again);
    ASSERT_TRUE(image);
    EXPECT_EQ(image->id.rfind("sha256:", 0), 0u) << image->id;
    EXPECT_EQ(image->tags, std::vector<std::string>{again});
    EXPECT_GT(image->size, 1000000);
    const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
    EXPECT_TRUE(std::regex_match(image->created, iso)) << image->created;

    bool listed = false;
    for (const auto& entry : docker.images()) {
        if (entry.id != image->id) continue;
        listed = true;
        EXPECT_EQ(entry.created, image->created);
        EXPECT_EQ(entry.size, image->size);
        EXPECT_EQ(entry.tags, image->tags);
    }
    EXPECT_TRUE(listed);
    docker.remove_image(again);
    EXPECT_FALSE(docker.image(again));
}

// In a forked child: as root, becomes nobody (still allowed on the daemon's socket through
// its group), so a file only root may read fails the import halfway.
void import_as_nobody(const fs::path& root, const std::string& tag) {
    struct stat socket_status {};
    if (::geteuid() == 0) {
        const gid_t docker_group = ::stat("/var/run/docker.sock", &socket_status) == 0 ? socket_status.st_gid : 0;
        if (::setgroups(1, &docker_group) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0)
            std::_Exit(2);
    }
    try {
        Docker().import_directory(root, tag);
    } catch (const Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        std::_Exit(0);
    }
    std::_Exit(1);
}

// A tar cut between two entries reads as a complete, smaller one: an import failing halfway
// must leave no image of what was sent so far.
TEST_F(DockerTest, AnImportFailingHalfwayLeavesNoImage) {
    test::TempDir dir;
    const fs::path root = dir / "root";
    fs::create_directories(root);
    const auto readable = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec;
    fs::permissions(dir.path(), readable);
    fs::permissions(root, readable);
    // Large enough that the daemon has received data when the unreadable file comes.
    test::write_file(root / "a-sent-first", std::string(4 << 20, 'a'));
    fs::permissions(root / "a-sent-first", readable);
    test::write_file(root / "b-unreadable", "secret\n");
    fs::permissions(root / "b-unreadable", fs::perms::owner_read | fs::perms::owner_write);
    test::write_file(root / "c-never-sent", "c\n");

    EXPECT_EXIT(import_as_nobody(root, kCut), testing::ExitedWithCode(0),
                "docker import " + kCut + ": .*/b-unreadable: cannot read: Permission denied");
    // The daemon ends a request after its client is gone: give a wrongly kept one time to show.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_FALSE(docker.image(kCut));
}

TEST_F(DockerTest, TheImportKeepsLinksModesAndHardLinks) {
    const ContainerResult run =
        docker.run(shell("stat -c '%a %h' /etc/secret /bin/busybox-link; /bin/busybox-link echo linked; "
                         "ls -d /tmp",
                         "tar"),
                   std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output, "640 1\n755 2\nlinked\n/tmp\n");
}

TEST_F(DockerTest, AMissingImageIsNotFound) {
    EXPECT_FALSE(docker.image("kbuild-test/nonexistent:" + kPid));
    EXPECT_NO_THROW(docker.remove_image("kbuild-test/nonexistent:" + kPid));
    ContainerSpec spec;
    spec.image = "kbuild-test/nonexistent:" + kPid;
    spec.labels = case_labels("missing-image");
    try {
        docker.run(spec, std::chrono::seconds(5));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "docker: image " + spec.image + ": not found");
    }
}

TEST_F(DockerTest, BuildsWithArgumentsAndLabels) {
    test::TempDir context;
    test::write_file(context / "Dockerfile", "FROM " + busybox() +
                                                 "\nARG X\nRUN echo built-$X > /built\n"
                                                 "COPY payload.txt /payload.txt\nLABEL a=b\n");
    test::write_file(context / "payload.txt", "payload\n");
    std::vector<std::string> lines;
    docker.build(context.path(), kBuilt, {{"X", "42"}}, {{"kbuild.test", "1"}, {"kbuild.pid", kPid}},
                 [&](const std::string& line) { lines.push_back(line); });
    ASSERT_FALSE(lines.empty());
    // The classic builder adds the labels as LABEL steps of its own, after the Dockerfile's.
    EXPECT_EQ(lines.front(), "Step 1/7 : FROM " + busybox()) << testing::PrintToString(lines);
    EXPECT_EQ(lines.back(), "Successfully tagged " + kBuilt) << testing::PrintToString(lines);
    for (const auto& line : lines) {
        EXPECT_FALSE(line.empty());
        EXPECT_FALSE(contains(line, "\n")) << line;
    }

    bool listed = false;
    for (const auto& image : docker.images({{"kbuild.test", "1"}, {"kbuild.pid", kPid}})) {
        if (std::find(image.tags.begin(), image.tags.end(), kBuilt) == image.tags.end()) continue;
        listed = true;
        EXPECT_EQ(image.labels.at("a"), "b");
        EXPECT_EQ(image.labels.at("kbuild.test"), "1");
    }
    EXPECT_TRUE(listed);
    EXPECT_EQ(docker.image(kBuilt)->labels.at("a"), "b");

    ContainerSpec spec = shell("cat /built /payload.txt", "built");
    spec.image = kBuilt;
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_EQ(run.output, "built-42\npayload\n");
}

TEST_F(DockerTest, AFailingBuildThrowsTheDaemonsMessage) {
    test::TempDir context;
    test::write_file(context / "Dockerfile", "FROM " + busybox() + "\nRUN false\n");
    try {
        docker.build(context.path(), kBroken, {}, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.rfind("docker build " + kBroken + ": ", 0), 0u) << message;
        EXPECT_TRUE(contains(message, "returned a non-zero code: 1")) << message;
        EXPECT_FALSE(contains(message, "\n")) << message;
    }
    EXPECT_FALSE(docker.image(kBroken));
}

TEST_F(DockerTest, ABuildOfAMissingDirectoryNamesIt) {
    try {
        docker.build("/nonexistent/context", kBroken, {}, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "docker build " + kBroken + ": /nonexistent/context: not a directory");
    }
}

TEST_F(DockerTest, RunsAndReportsExitCodeAndOutput) {
    const ContainerResult run = docker.run(shell("echo hello; echo err >&2; exit 3", "exit"), std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 3);
    EXPECT_FALSE(run.timed_out);
    // The two streams are copied to the log separately: their relative order is not fixed.
    EXPECT_EQ(run.output.size(), std::string("hello\nerr\n").size()) << run.output;
    EXPECT_TRUE(contains(run.output, "hello\n")) << run.output;
    EXPECT_TRUE(contains(run.output, "err\n")) << run.output;
    EXPECT_TRUE(docker.containers(case_labels("exit")).empty());
}

TEST_F(DockerTest, LongOutputSurvivesTheLogStream) {
    const ContainerResult run = docker.run(shell("seq 1 50000", "long"), std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0);
    std::string expected;
    for (int i = 1; i <= 50000; ++i) expected += std::to_string(i) + "\n";
    EXPECT_EQ(run.output.size(), expected.size());
    EXPECT_EQ(run.output, expected);
}

TEST_F(DockerTest, EnvironmentWorkingDirectoryAndName) {
    ContainerSpec spec = shell("echo $GREETING; pwd", "env");
    spec.env = {"GREETING=hi there"};
    spec.working_dir = "/tmp";
    spec.name = "kbuild-test-" + kPid;
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_EQ(run.output, "hi there\n/tmp\n");
    EXPECT_TRUE(docker.containers(case_labels("env")).empty());
}

TEST_F(DockerTest, AReadOnlyMountCannotBeWritten) {
    test::TempDir dir;
    test::write_file(dir / "present", "here\n");
    ContainerSpec spec = shell("cat /data/present; echo x > /data/new", "ro");
    spec.mounts = {{dir.path(), "/data", true}};
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "here\n")) << run.output;
    EXPECT_TRUE(contains(run.output, "Read-only file system")) << run.output;
    EXPECT_FALSE(fs::exists(dir / "new"));
}

TEST_F(DockerTest, AWritableMountShowsOnTheHost) {
    test::TempDir dir;
    ContainerSpec spec = shell("echo written > /out/result", "rw");
    spec.mounts = {{dir.path(), "/out", false}};
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(test::read_file(dir / "result"), "written\n");
}

TEST_F(DockerTest, AMissingMountSourceIsRefusedAndLeavesNothing) {
    ContainerSpec spec = shell("true", "no-source");
    spec.mounts = {{"/nonexistent/kbuild-test-source", "/data", true}};
    try {
        docker.run(spec, std::chrono::seconds(20));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_TRUE(contains(e.what(), "/nonexistent/kbuild-test-source")) << e.what();
    }
    EXPECT_TRUE(docker.containers(case_labels("no-source")).empty());
}

TEST_F(DockerTest, AContainerThatCannotStartIsRemoved) {
    ContainerSpec spec = shell("", "no-start");
    spec.command = {"/no/such/program"};
    try {
        docker.run(spec, std::chrono::seconds(20));
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_EQ(message.rfind("docker run " + busybox() + ": start: ", 0), 0u) << message;
        EXPECT_TRUE(contains(message, "/no/such/program")) << message;
    }
    EXPECT_TRUE(docker.containers(case_labels("no-start")).empty());
}

TEST_F(DockerTest, WithoutNetworkNothingIsReachable) {
    // nc, not wget: the wget of Debian's static busybox crashes in an image without libc's NSS.
    const ContainerResult run =
        docker.run(shell("nc -w 3 1.1.1.1 80 </dev/null", "no-network"), std::chrono::seconds(20));
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Network is unreachable")) << run.output;
}

TEST_F(DockerTest, TheTimeLimitKillsAndRemovesTheContainer) {
    const auto start = std::chrono::steady_clock::now();
    const ContainerResult run = docker.run(shell("echo started; sleep 30", "timeout"), std::chrono::seconds(2));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(run.timed_out);
    EXPECT_NE(run.exit_code, 0);
    EXPECT_EQ(run.output, "started\n");
    EXPECT_GE(took, std::chrono::seconds(2));
    EXPECT_LT(took, std::chrono::seconds(8));
    EXPECT_TRUE(docker.containers(case_labels("timeout")).empty());
}

TEST_F(DockerTest, RunsAsTheGivenUser) {
    ContainerSpec spec = shell("id -u; id -g", "user");
    spec.user = "65534:65534";
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_EQ(run.output, "65534\n65534\n");
}

TEST_F(DockerTest, MemoryAndCpuLimitsApply) {
    // cgroup v1 and v2 name the limit differently; the container sees its own cgroup.
    ContainerSpec spec = shell(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
        "cat /sys/fs/cgroup/memory.max",
        "limits");
    spec.memory_bytes = std::int64_t{64} << 20;
    spec.cpus = 64;  // more than the machine has: no limit rather than a refusal
    const ContainerResult run = docker.run(spec, std::chrono::seconds(20));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_EQ(run.output, std::to_string(std::int64_t{64} << 20) + "\n");
    EXPECT_FALSE(run.out_of_memory);
}

TEST_F(DockerTest, ContainersAreListedByLabel) {
    EXPECT_TRUE(docker.containers(case_labels("nothing-here")).empty());
    EXPECT_NO_THROW(docker.remove_container("kbuild-test-nonexistent-" + kPid));
}

}  // namespace
