#include "process.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

using namespace kbuild;

namespace {

TEST(Process, CapturesOutputAndExitCode) {
    const ProcessResult r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "out\n");
    EXPECT_EQ(r.err, "err\n");
    EXPECT_FALSE(r.timed_out);
}

TEST(Process, PassesInputEnvironmentAndDirectory) {
    test::TempDir dir;
    ProcessOptions options;
    options.cwd = dir.path();
    options.env = {"KBUILD_TEST_VALUE=42"};
    options.input = "hello\n";
    const ProcessResult r = run_process({"sh", "-c", "read x; echo $x $KBUILD_TEST_VALUE $(pwd)"}, options);
    EXPECT_EQ(r.out, "hello 42 " + dir.path().string() + "\n");
}

TEST(Process, KillsTheWholeGroupAtTheTimeLimit) {
    ProcessOptions options;
    options.timeout = std::chrono::milliseconds(300);
    const ProcessResult r = run_process({"sh", "-c", "sleep 30 & sleep 30"}, options);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + 9);
}

TEST(Process, WritesToALogFile) {
    test::TempDir dir;
    ProcessOptions options;
    options.log = dir / "build.log";
    const ProcessResult r = run_process({"sh", "-c", "echo one; echo two >&2"}, options);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(test::read_file(dir / "build.log"), "one\ntwo\n");
}

TEST(Process, AMissingProgramIsAnErrorNamingIt) {
    try {
        run_process({"kbuild-no-such-program"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "kbuild-no-such-program: cannot run: No such file or directory");
    }
}

}  // namespace
