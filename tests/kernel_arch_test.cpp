// A kernel tree's architecture and this host's: what makes a build a cross build, which
// programs of a tree can run here, and the ids that keep arm64 and x86 targets apart.
#include "kernel/kernel_arch.h"
#include "build/images.h"
#include "build/verify.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <elf.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// The first 64 bytes of a 64-bit little-endian ELF file of `machine`: all elf_machine reads.
void write_elf_header(const fs::path& file, std::uint16_t machine) {
    std::string header(64, '\0');
    header.replace(0, 4, ELFMAG);
    header[EI_CLASS] = ELFCLASS64;
    header[EI_DATA] = ELFDATA2LSB;
    header[EI_VERSION] = EV_CURRENT;
    header[16] = ET_EXEC;
    header[18] = static_cast<char>(machine & 0xff);
    header[19] = static_cast<char>(machine >> 8);
    fs::create_directories(file.parent_path());
    test::write_file(file, header);
}

TEST(KernelArch, TheConfigSaysWhichArchitecture) {
    test::TempDir dir;
    test::write_file(dir / "arm64", "CONFIG_CC_VERSION_TEXT=\"gcc-12\"\nCONFIG_ARM64=y\nCONFIG_64BIT=y\n");
    test::write_file(dir / "x86", "CONFIG_X86_64=y\nCONFIG_X86=y\n");
    test::write_file(dir / "none", "# CONFIG_ARM64 is not set\n");
    EXPECT_EQ(kernel_arch(dir / "arm64"), "arm64");
    EXPECT_EQ(kernel_arch(dir / "x86"), "x86");
    EXPECT_EQ(kernel_arch(dir / "none"), "");
    EXPECT_EQ(kernel_arch(dir / "missing"), "");
}

TEST(KernelArch, OnlyAnotherArchitectureIsACrossBuild) {
    // This machine is x86_64: what the tests of cross builds assume.
    ASSERT_EQ(host_kernel_arch(), "x86");
    EXPECT_EQ(cross_arch("x86"), "");
    EXPECT_EQ(cross_arch(""), "");
    EXPECT_EQ(cross_arch("arm64"), "arm64");
    EXPECT_EQ(cross_tools_prefix("arm64"), "aarch64-linux-gnu-");
    EXPECT_EQ(cross_tools_prefix("vax"), "");
}

TEST(KernelArch, EveryDistroSpellingOfAMachineIsOneArchitecture) {
    for (const char* name : {"amd64", "x86_64", "x86", "i686"}) EXPECT_EQ(arch_of_machine(name), "x86") << name;
    for (const char* name : {"arm64", "aarch64"}) EXPECT_EQ(arch_of_machine(name), "arm64") << name;
    EXPECT_EQ(arch_of_machine("noarch"), "");
    EXPECT_EQ(kernel_machine("arm64"), "aarch64");
    EXPECT_EQ(kernel_machine("x86"), "x86_64");
    EXPECT_EQ(debian_arch("x86"), "amd64");
    EXPECT_EQ(debian_arch("arm64"), "arm64");
}

TEST(KernelArch, TheElfMachineOfAFile) {
    test::TempDir dir;
    EXPECT_EQ(arch_of_elf_machine(elf_machine("/bin/sh")), "x86");
    write_elf_header(dir / "fixdep", EM_AARCH64);
    EXPECT_EQ(elf_machine(dir / "fixdep"), EM_AARCH64);
    EXPECT_EQ(arch_of_elf_machine(EM_AARCH64), "arm64");
    EXPECT_EQ(arch_of_elf_machine(EM_386), "x86");
    EXPECT_EQ(arch_of_elf_machine(4242), "machine 4242");
    test::write_file(dir / "script", "#!/bin/sh\n");
    EXPECT_EQ(test::error_of([&] { elf_machine(dir / "script"); }), (dir / "script").string() + ": not an ELF file");
}

TEST(KernelArch, LinksResolveInsideTheRootNeverOutOfIt) {
    test::TempDir temp;
    const fs::path root = temp.path();
    fs::create_directories(root / "usr/lib/linux-kbuild-6.1/scripts/basic");
    fs::create_directories(root / "usr/src/linux-headers-6.1.0-50-arm64");
    // Debian's relative link, and an absolute one as other packagings write them.
    fs::create_symlink("../../lib/linux-kbuild-6.1/scripts", root / "usr/src/linux-headers-6.1.0-50-arm64/scripts");
    fs::create_symlink("/usr/src/linux-headers-6.1.0-50-arm64", root / "build");
    fs::create_symlink("../../../../..", root / "usr/src/up");
    EXPECT_EQ(resolve_in_root(root, root / "build/scripts/basic/fixdep"),
              root / "usr/lib/linux-kbuild-6.1/scripts/basic/fixdep");
    EXPECT_EQ(resolve_in_root(root, root / "usr/src/up/etc/passwd"), root / "etc/passwd");
    fs::create_symlink("loop", root / "loop");
    EXPECT_NE(test::error_of([&] { resolve_in_root(root, root / "loop/x"); }).find("too many levels"),
              std::string::npos);
}

TEST(KernelArch, HostProgramsOfTheTargetAreNamedWithTheirArchitecture) {
    test::TempDir temp;
    const fs::path root = temp.path();
    const fs::path tree = root / "usr/src/linux-headers-6.1.0-50-arm64";
    fs::create_directories(tree);
    fs::create_symlink("../../lib/linux-kbuild-6.1/scripts", tree / "scripts");
    const fs::path scripts = root / "usr/lib/linux-kbuild-6.1/scripts";
    // This host's programs (Debian's modpost is a program too): the tree passes.
    write_elf_header(scripts / "basic/fixdep", EM_X86_64);
    write_elf_header(scripts / "mod/modpost", EM_X86_64);
    EXPECT_NO_THROW(check_host_programs(root, tree));
    // The target's own, as an arm64 header package holds them.
    write_elf_header(scripts / "mod/modpost", EM_AARCH64);
    EXPECT_EQ(test::error_of([&] { check_host_programs(root, tree); }),
              "linux-headers-6.1.0-50-arm64: its scripts/mod/modpost is a program for arm64, which cannot run on "
              "this x86 host (the headers' host programs are the target's; give the build host's, as Debian's "
              "linux-kbuild-* of this host's architecture)");
    // None at all: make will say what is missing.
    fs::remove_all(scripts);
    EXPECT_NO_THROW(check_host_programs(root, tree));
}

TEST(KernelArch, ArmTargetsAreKeyedApartFromX86Ones) {
    Release amd64{"5.15.0-100-generic"};
    amd64.arch = "amd64";
    Release arm64 = amd64;
    arm64.arch = "arm64";
    Release aarch64 = amd64;
    aarch64.arch = "aarch64";
    aarch64.variant = "hwe";
    EXPECT_EQ(arch_release_id(amd64), "5.15.0-100-generic");
    EXPECT_EQ(arch_release_id(arm64), "aarch64/5.15.0-100-generic");
    EXPECT_EQ(arch_release_id(aarch64), "aarch64/5.15.0-100-generic~hwe");
}

TEST(KernelArch, AModuleMustBeOfItsKernelsMachine) {
    test::TempDir dir;
    write_elf_header(dir / "hello.ko", EM_X86_64);
    EXPECT_NO_THROW(check_module_machine(dir / "hello.ko", "x86"));
    EXPECT_NO_THROW(check_module_machine(dir / "hello.ko", ""));
    EXPECT_EQ(test::error_of([&] { check_module_machine(dir / "hello.ko", "arm64"); }),
              "an ELF file for x86 (machine 62), not for the kernel's arm64");
    const std::map<std::string, std::string> arm{{"vermagic", "6.1.0-50-arm64 SMP mod_unload modversions aarch64"}};
    const std::map<std::string, std::string> x86{{"vermagic", "6.1.0-50-arm64 SMP mod_unload modversions "}};
    EXPECT_NO_THROW(check_vermagic(arm, "6.1.0-50-arm64", "arm64"));
    EXPECT_EQ(test::error_of([&] { check_vermagic(x86, "6.1.0-50-arm64", "arm64"); }),
              "vermagic '6.1.0-50-arm64 SMP mod_unload modversions ' lacks arm64's \"aarch64\": the module was not "
              "built for arm64");
}

TEST(KernelArch, OnlyAnImageThatCrossBuildsForTheKernelIsChosen) {
    BuilderImage native{"debian-bookworm-gcc11", "kbuild/builder-debian-bookworm-gcc11:latest", "debian", "gcc-11"};
    native.gcc = 11;
    BuilderImage cross{"debian-bookworm", "kbuild/builder-debian-bookworm:latest", "debian", "gcc-12"};
    cross.gcc = 12;
    cross.cross = {{"arm64", "aarch64-linux-gnu-"}};
    KernelCompiler gcc11{"gcc-11 (Debian 11.3.0-12) 11.3.0", "gcc-11", 11};
    std::string why;
    const auto chosen = choose_builder_image({native, cross}, gcc11, "debian", why, "arm64");
    ASSERT_TRUE(chosen);
    EXPECT_EQ(chosen->name, "debian-bookworm");
    EXPECT_EQ(why,
              "kernel for arm64 built by gcc 11 (gcc-11 (Debian 11.3.0-12) 11.3.0): no image with gcc 11; "
              "kbuild/builder-debian-bookworm:latest has the nearest newer, gcc 12");
    EXPECT_FALSE(choose_builder_image({native}, gcc11, "debian", why, "arm64"));
    EXPECT_EQ(why,
              "kernel for arm64 built by gcc 11 (gcc-11 (Debian 11.3.0-12) 11.3.0); no builder image with gcc "
              "cross-compiles for arm64 (see packaging/builders: \"cross\")");
    EXPECT_EQ(parse_cross_label(cross_label(cross.cross)), cross.cross);
    EXPECT_EQ(cross_label({{"arm64", "aarch64-linux-gnu-"}, {"riscv", "riscv64-linux-gnu-"}}),
              "arm64=aarch64-linux-gnu-,riscv=riscv64-linux-gnu-");
}

}  // namespace
