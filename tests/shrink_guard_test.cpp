// Two mirrors on 127.0.0.1 (tests/fixtures/deb/make-signed-archive: apt-ftparchive, gpg), one
// suite each; the second's suite comes back empty between two crawls, as a mirror caught
// mid-sync serves it, well signed: the second crawl is refused, naming what vanished, unless
// --allow-shrink.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

class ShrinkGuard : public ::testing::Test {
protected:
    ProcessResult crawl(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--cache-dir",
                                         (dir_ / "cache").string(),
                                         "crawl",
                                         "--distro",
                                         "debian",
                                         "--mirror",
                                         mirror_.stable_server.url(),
                                         "--mirror",
                                         mirror_.security_server.url(),
                                         "--option",
                                         "suites=stable,security",
                                         "--option",
                                         "components=main",
                                         "--keyring",
                                         mirror_.keyring().string(),
                                         "--output",
                                         "json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_kbuild(args);
    }

    test::TempDir dir_;
    test::TwoSuiteMirror mirror_{dir_.path()};
};

size_t releases_in(const ProcessResult& r) {
    return Json::parse(r.out)["releases"].size();
}

}  // namespace

TEST_F(ShrinkGuard, ASuiteThatComesBackEmptyIsRefusedUntilAllowed) {
    ProcessResult r = crawl();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(releases_in(r), 5u) << r.out;

    mirror_.make_suite("security", {});  // mid-sync: the suite is there, signed, and lists nothing
    r = crawl();
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(test::lines_with(r.err, "debian amd64: the crawl found 1 releases, 5 the last time"), 1) << r.err;
    EXPECT_EQ(test::lines_with(r.err,
                               "4 of the 5 releases of the last crawl vanished (80%, more than 25%): "
                               "6.1.0-20-amd64, 6.1.0-21-amd64, 6.1.0-22-amd64, 6.1.0-23-amd64"),
              1)
        << r.err;
    // The second mirror's every release went: said on the same line.
    EXPECT_EQ(
        test::lines_with(r.err, "the repository " + mirror_.security_server.url() + " vanished (4 releases last time)"),
        1)
        << r.err;
    EXPECT_EQ(test::lines_with(r.err, "--allow-shrink accepts it"), 1) << r.err;

    // A wider share does not hide a whole repository going.
    r = crawl({"--max-shrink", "0.9"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, "4 of the 5 releases"), 0) << r.err;
    EXPECT_EQ(test::lines_with(r.err, "the repository " + mirror_.security_server.url() + " vanished"), 1) << r.err;

    // Back to full, then short again with --allow-shrink: a warning, and the crawl goes on.
    mirror_.make_suite("security", mirror_.security);
    ASSERT_EQ(crawl().exit_code, 0);
    mirror_.make_suite("security", {});
    r = crawl({"--allow-shrink"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(releases_in(r), 1u);
    EXPECT_EQ(test::lines_with(r.err, "(accepted: --allow-shrink)"), 1) << r.err;
}
