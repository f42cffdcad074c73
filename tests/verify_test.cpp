// .modinfo reading on real ELF objects made by the compiler, and the vermagic rule.
#include "build/verify.h"
#include "test_util.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// What check_vermagic says of a module, "" when it takes it.
std::string vermagic_error(const std::map<std::string, std::string>& modinfo, const std::string& release) {
    return test::error_of([&] { check_vermagic(modinfo, release); });
}

// An object file whose .modinfo holds `entries` (NUL-separated key=value), as modpost writes it.
fs::path object_with_modinfo(const test::TempDir& dir, const std::string& entries) {
    const fs::path source = dir / "m.c";
    std::string array;
    for (char c : entries) array += std::to_string(static_cast<unsigned char>(c)) + ",";
    test::write_file(source, "__attribute__((section(\".modinfo\"), used)) static const char info[] = {" + array +
                                 "0};\nint f(void) { return 1; }\n");
    const fs::path object = dir / "m.ko";
    const ProcessResult cc = run_process({"cc", "-c", source.string(), "-o", object.string()});
    EXPECT_EQ(cc.exit_code, 0) << cc.err;
    return object;
}

TEST(Verify, ReadsModinfoFields) {
    test::TempDir dir;
    const std::string entries = std::string("version=1.0.0") + '\0' + "license=GPL" + '\0' +
                                "vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions ";
    const auto info = read_modinfo(object_with_modinfo(dir, entries));
    EXPECT_EQ(info.at("version"), "1.0.0");
    EXPECT_EQ(info.at("license"), "GPL");
    EXPECT_EQ(info.at("vermagic"), "6.1.0-50-amd64 SMP preempt mod_unload modversions ");
    EXPECT_EQ(vermagic_error(info, "6.1.0-50-amd64"), "");
}

TEST(Verify, RejectsAnotherKernelsVermagic) {
    const std::map<std::string, std::string> info = {{"vermagic", "6.1.0-49-amd64 SMP preempt "}};
    EXPECT_EQ(vermagic_error(info, "6.1.0-50-amd64"),
              "vermagic '6.1.0-49-amd64 SMP preempt ' does not match kernel 6.1.0-50-amd64");
    // A release that is only a prefix of the module's is another kernel.
    EXPECT_NE(vermagic_error({{"vermagic", "6.1.0-50-amd64-rt SMP"}}, "6.1.0-50-amd64"), "");
    EXPECT_EQ(vermagic_error({}, "6.1.0-50-amd64"), "module has no vermagic");
}

TEST(Verify, NamesTheFileThatIsNoModule) {
    test::TempDir dir;
    test::write_file(dir / "text.ko", "not an object\n");
    try {
        read_modinfo(dir / "text.ko");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), (dir / "text.ko").string() + ": not an ELF file");
    }
    test::write_file(dir / "plain.c", "int g(void) { return 2; }\n");
    run_process({"cc", "-c", (dir / "plain.c").string(), "-o", (dir / "plain.ko").string()});
    try {
        read_modinfo(dir / "plain.ko");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), (dir / "plain.ko").string() + ": no .modinfo section (not a kernel module)");
    }
}

}  // namespace
