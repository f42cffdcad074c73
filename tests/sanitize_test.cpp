// The threaded parts under TSan (scripts/tsan, in <build>/tsan): kbuild, its plugins
// and the tests labelled threads (fetch, the pipeline, the bzip2 reader, the service) built
// with -fsanitize=thread, and those tests run there. A report ends the program that met it with
// status 86, failing its test there, so this one. The run must be every test of the label: as
// many as this build lists, and the TSan build's own data-race test (sanitizer_report_test).
#include "test_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// The number after `marker` in `text`, -1 when `marker` is not there.
long number_after(const std::string& text, const std::string& marker) {
    const std::size_t at = text.rfind(marker);
    if (at == std::string::npos) return -1;
    return std::stol(text.substr(at + marker.size()));
}

// How many tests the build in `dir` has with the label, less those matching `except`.
long tests_labelled(const fs::path& dir, const std::string& label, const std::string& except = "^$") {
    const fs::path ctest = test::cmake_binary().parent_path() / "ctest";
    const ProcessResult r = run_process({ctest.string(), "--test-dir", dir.string(), "-N", "-L", label, "-E", except});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return number_after(r.out, "Total Tests: ");
}

}  // namespace

TEST(Sanitize, TheThreadedPartsPassUnderThreadSanitizer) {
    const fs::path tsan = test::binary_dir() / "tsan";
    ProcessOptions options;
    options.timeout = std::chrono::minutes(40);
    const ProcessResult r = run_process({(test::source_dir() / "scripts/tsan").string(), tsan.string()}, options);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    // Every test of the label ran: this build's, and the TSan build's own report test.
    const long listed = tests_labelled(tsan, "threads");
    EXPECT_EQ(tests_labelled(tsan, "threads", "^SanitizerReport\\."), tests_labelled(test::binary_dir(), "threads"));
    EXPECT_GT(listed, tests_labelled(tsan, "threads", "^SanitizerReport\\."));
    EXPECT_EQ(number_after(r.out, "tests passed, 0 tests failed out of "), listed) << r.out;
}
