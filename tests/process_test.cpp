#include "util/process.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>
#include <vector>

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

// The shell's sleeps are processes of their own: only killing the group ends them. As the
// subreaper, this test inherits them when the shell dies, so it can see how they ended.
TEST(Process, KillsTheWholeGroupAtTheTimeLimit) {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    struct NoLongerSubreaper {
        ~NoLongerSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
    } restore;
    test::TempDir dir;
    ProcessOptions options;
    options.timeout = std::chrono::milliseconds(1000);
    const ProcessResult r =
        run_process({"sh", "-c", "sleep 30 & echo $$ > " + (dir / "group").string() + "; sleep 30"}, options);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);

    pid_t group = 0;
    std::istringstream(test::read_file(dir / "group")) >> group;
    ASSERT_GT(group, 0) << "the shell did not start its sleeps in time";
    struct KillLeftovers {
        pid_t group;
        ~KillLeftovers() { ::kill(-group, SIGKILL); }
    } leftovers{group};
    // Reap what the group left (ECHILD until the dead shell's children are handed over) until
    // nothing of it exists, not even unreaped.
    int reaped = 0, killed = 0;
    for (int i = 0; i < 100 && !(::kill(-group, 0) == -1 && errno == ESRCH); ++i) {
        int status = 0;
        if (::waitpid(-group, &status, WNOHANG) > 0) {
            ++reaped;
            killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            continue;
        }
        ::usleep(20000);
    }
    EXPECT_EQ(::kill(-group, 0), -1) << "a process of the group outlived the time limit";
    EXPECT_EQ(errno, ESRCH);
    EXPECT_GE(reaped, 1) << "the shell's sleeps were not handed to this process";
    EXPECT_EQ(killed, reaped);
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

int open_fds() {
    int count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
    return count;
}

// A program that cannot start (missing, or its directory missing) is named, and every pipe
// and log file opened for it is closed again.
TEST(Process, AFailedStartNamesTheProgramAndLeaksNoDescriptor) {
    test::TempDir dir;
    // The first program started opens the process's one end to the reaper (util/reaper.h), kept
    // for the process's life.
    run_process({"true"});
    const int before = open_fds();
    for (int i = 0; i < 3; ++i) {
        ProcessOptions logged;
        logged.log = dir / "log";
        logged.input = "x";
        EXPECT_THROW(run_process({"kbuild-no-such-program"}, logged), Error);
        EXPECT_THROW(run_process({"kbuild-no-such-program"}), Error);
    }
    ProcessOptions nowhere;
    nowhere.cwd = dir / "missing";
    try {
        run_process({"true"}, nowhere);
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "true: cannot run: No such file or directory");
    }
    EXPECT_EQ(open_fds(), before);
    // A run that started closes its descriptors too.
    ProcessOptions fed;
    fed.input = "in\n";
    EXPECT_EQ(run_process({"cat"}, fed).out, "in\n");
    EXPECT_EQ(open_fds(), before);
}

// A process killed with SIGKILL (no cleanup runs) takes the program it was running along; a
// program that had finished is no longer its own, and what that one left running is left
// alone. A forked copy of this test plays kbuild, running programs through run_process in
// threads that come and go; as the subreaper, this test inherits what the copy leaves when it
// dies, so it can see how each ended.
TEST(Process, AKilledProcessLeavesNoProgramBehind) {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    struct NoLongerSubreaper {
        ~NoLongerSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
    } restore;
    // sleep takes "3600.<pid>" for seconds: arguments no other test's sleep has.
    const std::string running = "3600." + std::to_string(::getpid());
    const std::string left = "3601." + std::to_string(::getpid());
    pid_t copy = ::fork();
    ASSERT_GE(copy, 0);
    if (copy == 0) {
        const auto in_thread = [](std::vector<std::string> argv) {
            return std::thread([argv = std::move(argv)] {
                try {
                    run_process(argv);
                } catch (...) {
                    ::_exit(1);
                }
            });
        };
        // The thread that starts the reaper is gone before the program that the kill finds.
        in_thread({"sh", "-c", "sleep " + left + " >/dev/null 2>&1 &"}).join();
        in_thread({"sleep", running}).detach();
        for (;;) ::pause();
    }
    pid_t sleeping = 0, leftover = 0, reaper = 0;
    struct KillLeftovers {
        pid_t &copy, &sleeping, &leftover;
        ~KillLeftovers() {
            for (const pid_t pid : {copy, sleeping, leftover})
                if (pid > 0 && ::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
        }
    } leftovers{copy, sleeping, leftover};
    for (int i = 0; i < 600 && (sleeping == 0 || leftover == 0 || reaper == 0); ++i) {
        for (const auto& p : test::processes()) {
            if (p.command == "sleep " + running) sleeping = p.pid;
            if (p.command == "sleep " + left) leftover = p.pid;
            if (p.name == "kbuild-reaper" && p.parent == copy) reaper = p.pid;
        }
        ::usleep(50000);
    }
    ASSERT_GT(sleeping, 0) << "the copy's sleep never started";
    ASSERT_GT(leftover, 0) << "the finished program's sleep never started";
    ASSERT_GT(reaper, 0) << "the copy started no reaper";

    ASSERT_EQ(::kill(copy, SIGKILL), 0);
    ASSERT_EQ(::waitpid(copy, nullptr, 0), copy);
    copy = 0;
    // Handed to this process once the copy is gone (ECHILD until then): reaped as they end.
    int sleep_status = 0, reaper_status = 0;
    bool sleep_ended = false, reaper_ended = false;
    for (int i = 0; i < 200 && !(sleep_ended && reaper_ended); ++i) {
        sleep_ended = sleep_ended || ::waitpid(sleeping, &sleep_status, WNOHANG) == sleeping;
        reaper_ended = reaper_ended || ::waitpid(reaper, &reaper_status, WNOHANG) == reaper;
        ::usleep(50000);
    }
    ASSERT_TRUE(sleep_ended) << "the running program outlived the killed process";
    sleeping = 0;
    EXPECT_TRUE(WIFSIGNALED(sleep_status) && WTERMSIG(sleep_status) == SIGKILL) << sleep_status;
    ASSERT_TRUE(reaper_ended) << "the reaper outlived the killed process";
    EXPECT_TRUE(WIFEXITED(reaper_status) && WEXITSTATUS(reaper_status) == 0) << reaper_status;
    // The reaper has done all it does: the finished program's sleep was never its to kill.
    EXPECT_EQ(::waitpid(leftover, nullptr, WNOHANG), 0) << "a finished program's child was killed";
}

// The program leads a process group of its own, starts with no signal blocked (kbuild blocks
// SIGINT and SIGTERM in every thread) and reads /dev/null when given no input.
TEST(Process, StartsInItsOwnGroupWithNothingBlocked) {
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &blocked, &previous), 0);
    const ProcessResult r = run_process(
        {"sh", "-c",
         "echo $$ $(cut -d' ' -f5 /proc/$$/stat); grep SigBlk /proc/self/status; readlink /proc/self/fd/0"});
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    std::istringstream lines(r.out);
    pid_t pid = 0, group = 0;
    lines >> pid >> group;
    EXPECT_GT(pid, 0) << r.out;
    EXPECT_EQ(group, pid) << r.out;
    std::string label, mask, stdin_path;
    lines >> label >> mask >> stdin_path;
    EXPECT_EQ(mask, "0000000000000000") << r.out;
    EXPECT_EQ(stdin_path, "/dev/null") << r.out;
}

}  // namespace
