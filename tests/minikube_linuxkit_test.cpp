// The minikube and linuxkit plugins building for real (labels docker network slow): Debian's
// linux-source-6.1 as the kernel.org tarball both take, built the Minikube way (the source's own
// x86_64_defconfig, a defconfig that names no compiler, as Minikube's do) and the LinuxKit way
// (the release <version>-linuxkit, with the config given: a real Debian 6.1 kernel's).
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

class MinikubeLinuxKit : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        source_ = new test::LinuxSource(test::debian_linux_source());
        const ProcessResult defconfig =
            run_process({"sh", "-c", "tar -xJOf \"$0\" --wildcards '*/arch/x86/configs/x86_64_defconfig' > \"$1\"",
                         source_->tarball.string(), (dir_->path() / "linux_x86_64_defconfig").string()});
        ASSERT_EQ(defconfig.exit_code, 0) << defconfig.err;
        test::write_bookworm_config(dir_->path() / "debian.config");
    }
    static void TearDownTestSuite() {
        delete source_;
        delete dir_;
    }

    ProcessResult build(const std::vector<std::string>& args, const fs::path& out) {
        std::vector<std::string> argv{"--cache-dir", cache_.path().string(), "build"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(),
                    {"--builder", "docker", "--module-src", (test::source_dir() / "examples/hello").string(), "--out",
                     out.string(), source_->tarball.string()});
        return test::run_kbuild(argv);
    }

    static test::TempDir* dir_;
    static test::LinuxSource* source_;
    test::TempDir cache_;
};

test::TempDir* MinikubeLinuxKit::dir_ = nullptr;
test::LinuxSource* MinikubeLinuxKit::source_ = nullptr;

// A defconfig names no compiler: prepared with the oldest gcc image, which the log says; the
// release is the plain version, as Minikube's kernels name themselves.
TEST_F(MinikubeLinuxKit, AMinikubeDefconfigIsPreparedWithTheOldestGccAndBuilt) {
    const fs::path out = cache_ / "out";
    const ProcessResult r = build({"--distro", "minikube", (dir_->path() / "linux_x86_64_defconfig").string(),
                                   "--option", "kernel=" + source_->version},
                                  out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json record = test::first_target(out);
    ASSERT_EQ(record["status"], "built") << record.dump();
    EXPECT_EQ(record["kernelrelease"], source_->version);
    EXPECT_EQ(record["artifacts"].at(0)["vermagic"].get<std::string>().rfind(source_->version + " ", 0), 0u)
        << record.dump();
    const std::string log = test::read_file(out / record["log"].get<std::string>());
    EXPECT_NE(log.find("the config names no compiler (a defconfig, or a kernel before 4.18): "
                       "kbuild/builder-debian-bullseye-gcc9:latest has the oldest gcc, gcc 9"),
              std::string::npos)
        << log;
}

TEST_F(MinikubeLinuxKit, ALinuxKitKernelIsItsVersionDashLinuxkitBuiltWithTheConfigGiven) {
    const fs::path out = cache_ / "out";
    const std::string release = source_->version + "-linuxkit";
    const ProcessResult r =
        build({"--distro", "linuxkit", "--kernel-config", (dir_->path() / "debian.config").string()}, out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("linuxkit " + release +
                         ": preparing the source tree with gcc 12 in kbuild/builder-debian-bookworm:latest"),
              std::string::npos)
        << r.err;
    const Json record = test::first_target(out);
    ASSERT_EQ(record["status"], "built") << record.dump();
    EXPECT_EQ(record["kernelrelease"], release);
    EXPECT_EQ(record["artifacts"].at(0)["vermagic"].get<std::string>().rfind(release + " SMP preempt", 0), 0u)
        << record.dump();
}

}  // namespace
