// The threaded parts under TSan (scripts/tsan, in <build>/tsan): kbuild, its plugins
// and the tests labelled threads (fetch, the pipeline, the bzip2 reader, the service) built
// with -fsanitize=thread, and those tests run there. A report ends the program that met it with
// status 86, failing its test there, so this one. The run must be every test of the label: as
// many as this build lists.
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

// How many tests this build has with the label.
long tests_labelled(const std::string& label) {
    const fs::path ctest = test::cmake_binary().parent_path() / "ctest";
    const ProcessResult r = run_process({ctest.string(), "--test-dir", test::binary_dir().string(), "-N", "-L", label});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return number_after(r.out, "Total Tests: ");
}

// Runs scripts/tsan <build>/tsan: it passes, and its ctest ran `expected` tests.
void expect_clean_run(long expected) {
    ASSERT_GT(expected, 0);
    ProcessOptions options;
    options.timeout = std::chrono::minutes(40);
    const ProcessResult r =
        run_process({(test::source_dir() / "scripts/tsan").string(), (test::binary_dir() / "tsan").string()}, options);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(number_after(r.out, "tests passed, 0 tests failed out of "), expected) << r.out;
}

}  // namespace

TEST(Sanitize, TheThreadedPartsPassUnderThreadSanitizer) {
    expect_clean_run(tests_labelled("threads"));
}
