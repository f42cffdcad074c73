// What a module source declares, which of the .ko files a build made are its artifacts, and
// which line of a failed build's log is its reason.
#include "kernel/module_tree.h"
#include "build/builder.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

using Names = std::vector<std::string>;

DeclaredModules declared_in(const test::TempDir& dir, const std::string& file, const std::string& text) {
    test::write_file(dir / file, text);
    return declared_modules(dir.path());
}

}  // namespace

TEST(DeclaredModules, ObjMOfTheTopKbuildElseMakefile) {
    test::TempDir dir;
    EXPECT_EQ(declared_in(dir, "Makefile", "obj-m := hello.o\n").names, Names{"hello"});
    // Kbuild wins over Makefile, as the kernel's make reads it.
    EXPECT_EQ(declared_in(dir, "Kbuild", "obj-m += one.o two.o\nobj-m += sub/three.o\n").names,
              (Names{"one", "two", "sub/three"}));
}

TEST(DeclaredModules, ContinuationsCommentsAndVariables) {
    test::TempDir dir;
    const DeclaredModules d = declared_in(dir, "Kbuild",
                                          "DRIVER_NAME ?= falco # the default\n"
                                          "DRIVER_NAME ?= other\n"
                                          "$(DRIVER_NAME)-y += main.o \\\n  ppm.o\n"
                                          "obj-m += $(DRIVER_NAME).o \\\n"
                                          "         ${EXTRA}.o # set elsewhere\n"
                                          "EXTRA = late\n");
    // EXTRA is set after its use: make reads obj-m once the whole file is read, and so does kbuild.
    EXPECT_EQ(d.names, (Names{"falco", "late"}));
    EXPECT_TRUE(d.complete);

    // A variable the file never sets (the command line's, the environment's): not the whole list.
    const DeclaredModules partial = declared_in(dir, "Kbuild", "obj-m += known.o $(MODULE_NAME).o\n");
    EXPECT_EQ(partial.names, Names{"known"});
    EXPECT_FALSE(partial.complete);
}

TEST(DeclaredModules, AnAssignmentResetsAndRecipesAreNotAssignments) {
    test::TempDir dir;
    const DeclaredModules d = declared_in(dir, "Makefile",
                                          "obj-m += old.o\nobj-m := new.o\n"
                                          "all:\n\tobj-m=recipe.o $(MAKE) -C $(KDIR) M=$(PWD)\n");
    EXPECT_EQ(d.names, Names{"new"});
    EXPECT_TRUE(d.complete);
}

TEST(DeclaredModules, NoneWithoutAKbuildFileOrObjM) {
    test::TempDir dir;
    EXPECT_TRUE(declared_modules(dir.path()).names.empty());
    EXPECT_TRUE(declared_in(dir, "Makefile", "all:\n\techo\n").names.empty());
}

TEST(NestedModuleTrees, SubdirectoriesThatDeclareTheirOwnModules) {
    test::TempDir dir;
    test::write_file(dir / "Kbuild", "obj-m += drv.o\ndrv-y += main.o lib/util.o\n");
    test::write_file(dir / "lib/util.c", "");
    test::write_file(dir / "configure/HAS_A/Makefile", "obj-m += testmod.o\n");
    test::write_file(dir / "configure/HAS_B/Makefile", "testmod-y += test.o\nobj-m += testmod.o\n");
    test::write_file(dir / "configure/HAS_B/inner/Kbuild", "obj-m += deeper.o\n");
    test::write_file(dir / ".git/Makefile", "obj-m += not-ours.o\n");
    EXPECT_EQ(nested_module_trees(dir.path()), (Names{"configure/HAS_A", "configure/HAS_B"}));
}

TEST(BuildErrorLine, TheModulesOwnErrorNotAProbesItsMakefileEchoes) {
    test::TempDir dir;
    const fs::path log = dir / "build.log";
    test::write_file(log,
                     "+ make -C /usr/src/linux-headers-6.1.0-41-amd64 M=/build modules\n"
                     "[probe] HAS_PROC_OPS: yes\n"
                     "[probe] HAS_ANCIENT_API: no: make: Entering directory '/usr/src/x' "
                     "/build/configure/HAS_ANCIENT_API/test.c:5:44: error: implicit declaration of function "
                     "'ancient_interface_removed_long_ago' [-Werror=implicit-function-declaration]\n"
                     "/build/configure/HAS_ANCIENT_API/test.c:5:44: error: implicit declaration of function\n"
                     "  CC [M]  /build/main.c\n"
                     "/build/main.c: In function 'probedrv_init':\n"
                     "/build/main.c:14:16: error: 'kbuild_planted' undeclared (first use in this function)\n"
                     "/build/events.c:3:1: error: a later error\n"
                     "make[2]: *** [scripts/Makefile.build:250: /build/main.o] Error 1\n");
    EXPECT_EQ(build_error_line(log, "/build", {"configure/HAS_ANCIENT_API"}),
              "/build/main.c:14:16: error: 'kbuild_planted' undeclared (first use in this function)");
    // Without knowing the probe's tree, its own diagnostic line would be taken.
    EXPECT_EQ(build_error_line(log, "/build", {}),
              "/build/configure/HAS_ANCIENT_API/test.c:5:44: error: implicit declaration of function");
}

TEST(BuildErrorLine, CompilerDriverErrorsMakefileStopsModpostAndMakesLastWord) {
    test::TempDir dir;
    const fs::path log = dir / "build.log";
    test::write_file(log, "gcc-12: error: unrecognized command-line option '-mfoo'\nmake: *** [x] Error 1\n");
    EXPECT_EQ(build_error_line(log, "/build", {}), "gcc-12: error: unrecognized command-line option '-mfoo'");
    test::write_file(log, "Kbuild:4: *** this module needs CONFIG_KPROBES.  Stop.\nmake: *** [M] Error 2\n");
    EXPECT_EQ(build_error_line(log, "/build", {}), "Kbuild:4: *** this module needs CONFIG_KPROBES.  Stop.");
    test::write_file(log,
                     "ERROR: modpost: \"missing_symbol\" [/build/drv.ko] undefined!\n"
                     "make[1]: *** [scripts/Makefile.modpost:126: /build/Module.symvers] Error 1\n"
                     "make: *** [Makefile:1990: modpost] Error 2\n");
    EXPECT_EQ(build_error_line(log, "/build", {}), "ERROR: modpost: \"missing_symbol\" [/build/drv.ko] undefined!");
    test::write_file(log, "make[1]: *** [a] Error 1\nmake: *** [b] Error 2\n");
    EXPECT_EQ(build_error_line(log, "/build", {}), "make: *** [b] Error 2");
}

TEST(BuildErrorLine, CutToAReadableLength) {
    test::TempDir dir;
    const fs::path log = dir / "build.log";
    test::write_file(log, "/build/main.c:1:1: error: " + std::string(1000, 'x') + "\n");
    const std::string line = build_error_line(log, "/build", {});
    EXPECT_EQ(line.size(), 240u);
    EXPECT_EQ(line.substr(0, 26), "/build/main.c:1:1: error: ");
    EXPECT_EQ(line.substr(237), "...");
}

TEST(SelectModules, TheDeclaredModulesNotTheProbesNorStrays) {
    test::TempDir dir;
    for (const char* ko : {"drv.ko", "configure/HAS_A/testmod.ko", "configure/HAS_B/testmod.ko"})
        test::write_file(dir / ko, "ELF");
    BuildJob job;
    job.modules = {"drv", "optional"};
    EXPECT_EQ(select_modules(dir.path(), job), std::vector<fs::path>{dir / "drv.ko"});

    job.modules = {"absent"};
    try {
        select_modules(dir.path(), job);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "the build made none of the modules the source declares (absent.ko; it made "
                     "configure/HAS_A/testmod.ko, configure/HAS_B/testmod.ko, drv.ko)");
    }

    // Nothing declared: the .ko files at the top.
    job.modules = {};
    EXPECT_EQ(select_modules(dir.path(), job), std::vector<fs::path>{dir / "drv.ko"});
}

TEST(SelectModules, NamedModulesMustBeMadeAndTellable) {
    test::TempDir dir;
    for (const char* ko : {"drv.ko", "configure/HAS_A/testmod.ko", "configure/HAS_B/testmod.ko", "sub/one.ko"})
        test::write_file(dir / ko, "ELF");
    BuildJob job;
    job.modules_required = true;
    job.modules = {"one", "configure/HAS_B/testmod"};
    EXPECT_EQ(select_modules(dir.path(), job),
              (std::vector<fs::path>{dir / "sub/one.ko", dir / "configure/HAS_B/testmod.ko"}));

    auto error_of = [&](const std::vector<std::string>& modules) -> std::string {
        job.modules = modules;
        try {
            select_modules(dir.path(), job);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    };
    EXPECT_EQ(error_of({"testmod"}),
              "testmod.ko: the build made 2 modules of that name (configure/HAS_A/testmod.ko, "
              "configure/HAS_B/testmod.ko); name one with --module DIR/testmod");
    EXPECT_EQ(error_of({"drv", "missing"}),
              "the build made no missing.ko (it made configure/HAS_A/testmod.ko, "
              "configure/HAS_B/testmod.ko, drv.ko, sub/one.ko)");
}
