// The kernel's compiler read from its headers, and the builder image chosen for it.
#include "kernel/compiler.h"
#include "build/images.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

using namespace kbuild;

namespace {

TEST(KernelCompiler, FromCcVersionText) {
    test::TempDir dir;
    test::write_file(dir / ".config",
                     "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"\n"
                     "CONFIG_GCC_VERSION=120200\n");
    const KernelCompiler c = read_kernel_compiler(dir.path());
    EXPECT_EQ(c.program, "gcc-12");
    EXPECT_EQ(c.major, 12);
    EXPECT_EQ(c.text, "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0");
}

TEST(KernelCompiler, FromGccVersionWhenThereIsNoText) {
    test::TempDir dir;
    test::write_file(dir / ".config", "CONFIG_GCC_VERSION=100201\n");
    const KernelCompiler c = read_kernel_compiler(dir.path());
    EXPECT_EQ(c.major, 10);
    EXPECT_EQ(c.program, "gcc");
}

TEST(KernelCompiler, FromCompileHOfOlderKernels) {
    test::TempDir dir;
    test::write_file(dir / ".config", "CONFIG_MODULES=y\n");
    test::write_file(dir / "include/generated/compile.h",
                     "#define UTS_MACHINE \"x86_64\"\n"
                     "#define LINUX_COMPILER \"gcc version 8.3.0 (Debian 8.3.0-6) \"\n");
    EXPECT_EQ(read_kernel_compiler(dir.path()).major, 8);
}

TEST(KernelCompiler, NoSourceIsAnErrorNamingTheDirectory) {
    test::TempDir dir;
    test::write_file(dir / ".config", "CONFIG_MODULES=y\n");
    try {
        read_kernel_compiler(dir.path());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind(dir.path().string() + ": cannot tell the kernel's compiler", 0), 0u);
    }
}

std::vector<BuilderImage> images() {
    return {{"debian-bullseye", "kbuild/builder-debian-bullseye:latest", "debian", "gcc-10", "h1", "", 10},
            {"debian-bookworm", "kbuild/builder-debian-bookworm:latest", "debian", "gcc-12", "h2", "", 12},
            {"ubuntu-noble", "kbuild/builder-ubuntu-noble:latest", "ubuntu", "gcc-14", "h3", "", 14},
            {"debian-trixie", "kbuild/builder-debian-trixie:latest", "debian", "gcc-14", "h4", "", 14}};
}

std::string chosen(int major, const std::string& family, std::string& why) {
    KernelCompiler c{"gcc-" + std::to_string(major) + " (x) " + std::to_string(major) + ".1.0",
                     "gcc-" + std::to_string(major), major};
    const auto image = choose_builder_image(images(), c, family, why);
    return image ? image->name : "";
}

TEST(BuilderChoice, SameGccPreferringThePluginsFamily) {
    std::string why;
    EXPECT_EQ(chosen(12, "debian", why), "debian-bookworm");
    EXPECT_EQ(why,
              "kernel built by gcc 12 (gcc-12 (x) 12.1.0): kbuild/builder-debian-bookworm:latest has the same gcc");
    EXPECT_EQ(chosen(14, "debian", why), "debian-trixie");
    EXPECT_EQ(chosen(14, "ubuntu", why), "ubuntu-noble");
}

TEST(BuilderChoice, NearestNewerThenNearestOlder) {
    std::string why;
    EXPECT_EQ(chosen(11, "debian", why), "debian-bookworm");
    EXPECT_EQ(why,
              "kernel built by gcc 11 (gcc-11 (x) 11.1.0): no image with gcc 11; "
              "kbuild/builder-debian-bookworm:latest has the nearest newer, gcc 12");
    EXPECT_EQ(chosen(8, "debian", why), "debian-bullseye");
    EXPECT_EQ(chosen(15, "debian", why), "debian-trixie");
    EXPECT_NE(why.find("nearest older, gcc 14"), std::string::npos) << why;
}

TEST(BuilderChoice, NoImagesSaysSo) {
    std::string why;
    KernelCompiler c{"gcc-12", "gcc-12", 12};
    EXPECT_FALSE(choose_builder_image({}, c, "debian", why));
    EXPECT_EQ(why, "kernel built by gcc 12 (gcc-12); no builder image (run kbuild images build)");
}

}  // namespace
