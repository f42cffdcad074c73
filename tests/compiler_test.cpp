// The kernel's compiler read from its headers, and the builder image chosen for it.
#include "kernel/compiler.h"
#include "build/images.h"
#include "kernel/kernel_config.h"
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

// A kernel built by clang (COS, Android, some distros' own): clang, its major, built with LLVM=1.
TEST(KernelCompiler, ClangFromItsConfig) {
    test::TempDir dir;
    test::write_file(dir / "config",
                     "CONFIG_CC_VERSION_TEXT=\"Debian clang version 16.0.6 (15~deb12u1)\"\n"
                     "CONFIG_CC_IS_CLANG=y\nCONFIG_CLANG_VERSION=160006\nCONFIG_GCC_VERSION=0\n");
    const KernelCompiler c = config_compiler(dir / "config");
    EXPECT_TRUE(c.clang);
    EXPECT_EQ(c.major, 16);
    EXPECT_EQ(c.program, "clang");
    EXPECT_EQ(c.name(), "clang 16");

    test::write_file(dir / "bare", "CONFIG_CC_IS_CLANG=y\nCONFIG_CLANG_VERSION=170000\n");
    EXPECT_EQ(config_compiler(dir / "bare").text, "clang 17 (CONFIG_CLANG_VERSION=170000)");
    // A defconfig (Minikube's) or an old kernel's config names none: gcc of no known major.
    test::write_file(dir / "none", "CONFIG_MODULES=y\n");
    const KernelCompiler none = config_compiler(dir / "none");
    EXPECT_EQ(none.major, 0);
    EXPECT_FALSE(none.clang);
    EXPECT_EQ(none.name(), "gcc");
    EXPECT_EQ(test::error_of([&] { config_compiler(dir / "missing"); }),
              (dir / "missing").string() + ": cannot read the kernel's config");
}

// A config that names no compiler takes the oldest gcc: old kernels build with it, new ones too.
TEST(BuilderChoice, AConfigNamingNoCompilerTakesTheOldestGcc) {
    BuilderImage gcc10{"debian-bullseye", "kbuild/builder-debian-bullseye:latest", "debian", "gcc-10", "", ""};
    gcc10.gcc = 10;
    BuilderImage gcc12{"debian-bookworm", "kbuild/builder-debian-bookworm:latest", "debian", "gcc-12", "", ""};
    gcc12.gcc = 12;
    BuilderImage clang16 = gcc12;
    clang16.name = "debian-bookworm-clang16";
    clang16.gcc = 0;
    clang16.clang = 16;
    KernelCompiler none;
    none.program = "gcc";
    none.text = "the config names no compiler";
    std::string why;
    const auto chosen = choose_builder_image({clang16, gcc12, gcc10}, none, "debian", why);
    ASSERT_TRUE(chosen);
    EXPECT_EQ(chosen->name, "debian-bullseye");
    EXPECT_EQ(why,
              "the config names no compiler (a defconfig, or a kernel before 4.18): "
              "kbuild/builder-debian-bullseye:latest has the oldest gcc, gcc 10");
}

// A clang kernel takes an image with clang, the nearest version as for gcc; none is one line.
TEST(BuilderChoice, ClangKernelsTakeOnlyImagesWithClang) {
    BuilderImage gcc12{"debian-bookworm", "kbuild/builder-debian-bookworm:latest", "debian", "gcc-12", "", ""};
    gcc12.gcc = 12;
    KernelCompiler clang{"Debian clang version 16.0.6", "clang", 16, true};
    std::string why;
    EXPECT_FALSE(choose_builder_image({gcc12}, clang, "", why));
    EXPECT_EQ(why,
              "kernel built by clang 16 (Debian clang version 16.0.6); no builder image has clang (see "
              "packaging/builders)");
    BuilderImage clang16 = gcc12;
    clang16.name = "debian-bookworm-clang16";
    clang16.image = "kbuild/builder-debian-bookworm-clang16:latest";
    clang16.clang = 16;
    const auto chosen = choose_builder_image({gcc12, clang16}, clang, "", why);
    ASSERT_TRUE(chosen);
    EXPECT_EQ(chosen->name, "debian-bookworm-clang16");
    EXPECT_EQ(why,
              "kernel built by clang 16 (Debian clang version 16.0.6): "
              "kbuild/builder-debian-bookworm-clang16:latest has the same clang");
}

// A source tree's version, and the LOCALVERSION that gives it the release asked for.
TEST(SourceRelease, VersionFromTheMakefileAndLocalVersionFromTheRelease) {
    test::TempDir dir;
    test::write_file(dir / "Makefile",
                     "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 158\n"
                     "EXTRAVERSION =\nNAME = Curry Ramen\n");
    EXPECT_EQ(source_version(dir.path()), "6.1.158");
    test::write_file(dir / "Makefile", "VERSION = 6\nPATCHLEVEL = 8\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n");
    EXPECT_EQ(source_version(dir.path()), "6.8.0-rc1");
    EXPECT_NE(test::error_of([&] { source_version(dir / "nowhere"); }).find("not a kernel source tree"),
              std::string::npos);
    // The RT patch set's tree names its own local version in files setlocalversion reads.
    test::write_file(dir / "localversion-rt", "-rt13\n");
    test::write_file(dir / "localversion-a", "-a");
    EXPECT_EQ(source_version(dir.path()), "6.8.0-rc1-a-rt13");

    const auto same = local_version_for("6.1.158", "6.1.158", "");
    EXPECT_EQ(same.localversion, "");
    EXPECT_FALSE(same.clear_config_localversion);
    // The Falco build service's example: Arch's release from a plain 5.5.2 tree.
    const auto arch = local_version_for("5.5.2-arch1-1", "5.5.2", "");
    EXPECT_EQ(arch.localversion, "-arch1-1");
    const auto continued = local_version_for("5.5.2-arch1-1", "5.5.2", "-arch1");
    EXPECT_EQ(continued.localversion, "-1");
    EXPECT_FALSE(continued.clear_config_localversion);
    const auto replaced = local_version_for("5.5.2-x", "5.5.2", "-cos");
    EXPECT_EQ(replaced.localversion, "-x");
    EXPECT_TRUE(replaced.clear_config_localversion);
    EXPECT_EQ(test::error_of([] { local_version_for("5.6.1", "5.5.2", ""); }),
              "release 5.6.1 cannot be made from the source of 5.5.2");
}

// A config made of fragments sets a symbol twice: Kconfig takes the last, as config_value does.
TEST(SourceRelease, TheLastAssignmentOfAConfigSymbolWins) {
    test::TempDir dir;
    test::write_file(dir / ".config",
                     "CONFIG_LOCALVERSION=\"-base\"\nCONFIG_X=y\n# fragment\nCONFIG_LOCALVERSION=\"-minikube\"\n"
                     "# CONFIG_X is not set\n");
    EXPECT_EQ(config_value(dir / ".config", "CONFIG_LOCALVERSION"), "-minikube");
    EXPECT_EQ(config_value(dir / ".config", "CONFIG_X"), "");
    EXPECT_EQ(config_value(dir / ".config", "CONFIG_Y"), "");
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
