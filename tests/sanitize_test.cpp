// kbuild built again under sanitizers (scripts/sanitize): the threaded parts (fetch, the
// pipeline, the bzip2 reader, the service) under TSan in <build>/tsan, and the unit tests and
// the integration tests labelled asan under ASan and UBSan in <build>/asan. A report ends the
// program that met it with status 86, failing its test there, so this one. Each run must be every
// test of its labels: as many as this build lists, and the sanitizer build's own report tests
// (sanitizer_report_test, which makes each kind of error on purpose).
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

// How many tests the build in `dir` has with a label matching `labels`, less those matching
// `except`.
long tests_labelled(const fs::path& dir, const std::string& labels, const std::string& except = "^$") {
    const fs::path ctest = test::cmake_binary().parent_path() / "ctest";
    const ProcessResult r = run_process({ctest.string(), "--test-dir", dir.string(), "-N", "-L", labels, "-E", except});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return number_after(r.out, "Total Tests: ");
}

// scripts/sanitize `kind` in <build>/`dir` passes, and ran every test labelled `labels`.
void expect_every_test_passes(const std::string& kind, const std::string& dir, const std::string& labels) {
    const fs::path build = test::binary_dir() / dir;
    ProcessOptions options;
    options.timeout = std::chrono::minutes(60);
    const ProcessResult r =
        run_process({(test::source_dir() / "scripts/sanitize").string(), kind, build.string()}, options);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string report_tests = "^SanitizerReport\\.";
    const long listed = tests_labelled(build, labels);
    const long without_reports = tests_labelled(build, labels, report_tests);
    EXPECT_EQ(without_reports, tests_labelled(test::binary_dir(), labels, report_tests));
    EXPECT_GT(listed, without_reports);
    EXPECT_EQ(number_after(r.out, "tests passed, 0 tests failed out of "), listed) << r.out;
}

}  // namespace

TEST(Sanitize, TheThreadedPartsPassUnderThreadSanitizer) {
    expect_every_test_passes("thread", "tsan", "threads");
}

TEST(Sanitize, TheUnitAndAsanTestsPassUnderAddressAndUndefinedSanitizers) {
    expect_every_test_passes("address", "asan", "^(unit|asan)$");
}
