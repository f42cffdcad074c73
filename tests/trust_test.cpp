// The chain of trust of a Debian archive (label unit: 127.0.0.1 only): suites of one archive
// made by tests/fixtures/deb/make-signed-archive (apt-ftparchive, gpg with throw-away keys),
// signed well and badly, crawled and built through the kbuild binary as a user would.
//   good       InRelease and Release.gpg by key A          accepted
//   inline     InRelease only                              accepted
//   detached   Release + Release.gpg only                  accepted
//   sha512     Release lists SHA512 checksums only         accepted
//   unsigned   Release only                                refused: no signature
//   otherkey   signed by key B                             refused: unknown key
//   badsig     signed text altered after signing           refused: BAD signature
//   expired    Valid-Until in the past                     refused: expired
//   tampered   Packages.xz replaced after signing          refused: sha256 / size mismatch
//   sha1       signed with a SHA-1 digest                  refused: weak digest, as apt does
//   rollback   an older Date than the one trusted before   refused
// The headers' common Makefile of every suite tries to write a file on the host when make reads
// it: a refused suite must never get that far.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kRelease = "6.1.0-99-amd64";

class Trust : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        make_key("a");
        make_key("b");
        // The file a hostile Makefile would leave on the host.
        planted_ = (dir_->path() / "planted-by-makefile").string();
        const fs::path debs = dir_->path() / "debs";
        fs::create_directories(debs);
        deb_paths_ = {test::make_deb(
                          debs, {"linux-headers-6.1.0-99-amd64",
                                 "6.1.300-1",
                                 "amd64",
                                 "linux-headers-6.1.0-99-common (= 6.1.300-1), linux-kbuild-6.1 (>= 6.1.300-1), "
                                 "linux-compiler-gcc-12-x86",
                                 {{"usr/src/linux-headers-6.1.0-99-amd64/Makefile",
                                   "include /usr/src/linux-headers-6.1.0-99-common/Makefile\n"},
                                  {"usr/src/linux-headers-6.1.0-99-amd64/.config",
                                   "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_MODULES=y\n"}}})
                          .string(),
                      test::make_deb(debs, {"linux-headers-6.1.0-99-common",
                                            "6.1.300-1",
                                            "all",
                                            "",
                                            {{"usr/src/linux-headers-6.1.0-99-common/Makefile",
                                              "$(shell touch " + planted_ + ")\nmodules:\n\t@false\n"}}})
                          .string(),
                      test::make_deb(debs, {"linux-kbuild-6.1",
                                            "6.1.300-1",
                                            "amd64",
                                            "",
                                            {{"usr/lib/linux-kbuild-6.1/scripts/Makefile.build", "# b\n"}}})
                          .string()};
        archive_ = dir_->path() / "archive";
        make_suite("good", {});
        make_suite("inline", {"--signing", "inline"});
        make_suite("detached", {"--signing", "detached"});
        make_suite("sha512", {"--sha512-only"});
        make_suite("unsigned", {"--signing", "none"});
        make_suite("otherkey", {}, "b");
        make_suite("badsig", {"--tamper-signed-text"});
        make_suite("expired", {"--valid-until", "Sat, 01 Jan 2022 00:00:00 UTC"});
        make_suite("tampered", {"--tamper-packages"});
        make_suite("sha1", {"--digest", "SHA1"});
    }

    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }

    static void make_key(const std::string& name) {
        test::make_test_key(dir_->path() / ("key-" + name), "key " + name);
    }

    static void make_suite(const std::string& suite, std::vector<std::string> args, const std::string& key = "a") {
        std::vector<std::string> argv = {(test::source_dir() / "tests/fixtures/deb/make-signed-archive").string(),
                                         "--out",
                                         archive_.string(),
                                         "--suite",
                                         suite,
                                         "--key",
                                         (dir_->path() / ("key-" + key)).string()};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), deb_paths_.begin(), deb_paths_.end());
        const ProcessResult r = run_process(argv);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    static std::string keyring(const std::string& key, const std::string& form = "gpg") {
        return (dir_->path() / ("key-" + key) / ("public." + form)).string();
    }

    // kbuild crawl of one suite, trusting key A unless told otherwise.
    ProcessResult crawl(const std::string& suite, std::vector<std::string> extra = {"--keyring", keyring("a")}) {
        std::vector<std::string> args = {
            "--cache-dir", cache_.path().string(), "crawl",    "--distro",        "debian",   "--mirror", server_.url(),
            "--option",    "suites=" + suite,      "--option", "components=main", "--output", "json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_kbuild(args);
    }

    // The one line naming the suite's file and the cause, and nothing built from it.
    void expect_refused(const std::string& suite, const std::string& file, const std::string& cause) {
        const ProcessResult r = crawl(suite);
        EXPECT_NE(r.exit_code, 0) << r.out;
        const std::string named = server_.url() + "/dists/" + suite + "/" + file;
        EXPECT_EQ(test::lines_with(r.err, named), 1) << r.err;
        EXPECT_EQ(test::lines_with(r.err, cause), 1) << r.err;
        EXPECT_EQ(r.out.find(kRelease), std::string::npos) << r.out;
    }

    void expect_accepted(const std::string& suite) {
        const ProcessResult r = crawl(suite);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const Json doc = Json::parse(r.out);
        ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
        EXPECT_EQ(doc["releases"][0]["kernelrelease"], kRelease);
        EXPECT_EQ(doc["releases"][0].value("unavailable", ""), "") << doc.dump(2);
    }

    static inline test::TempDir* dir_ = nullptr;
    static inline fs::path archive_;
    static inline std::vector<std::string> deb_paths_;
    static inline std::string planted_;
    test::TempDir cache_;
    test::MirrorServer server_{archive_};
};

TEST_F(Trust, AGoodChainIsAcceptedSignedInlineDetachedOrBoth) {
    expect_accepted("good");
    expect_accepted("inline");    // a mirror serving only InRelease
    expect_accepted("detached");  // only Release and Release.gpg
}

TEST_F(Trust, AReleaseListingOnlySha512IsRead) {
    expect_accepted("sha512");
}

TEST_F(Trust, AnArmouredKeyringIsReadAsABinaryOne) {
    const ProcessResult r = crawl("good", {"--keyring", keyring("a", "asc")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(kRelease), std::string::npos);
}

TEST_F(Trust, UnsignedOtherKeyBadSignatureExpiredAndTamperedAreRefused) {
    expect_refused("unsigned", "Release", ": no signature");
    expect_refused("otherkey", "InRelease", ": signature by unknown key 0x");
    expect_refused("badsig", "InRelease", ": BAD signature by key 0x");
    expect_refused("expired", "InRelease", ": expired (Valid-Until Sat, 01 Jan 2022 00:00:00 UTC)");
    expect_refused("sha1", "InRelease", "uses a weak digest (algorithm 2)");
    const ProcessResult r = crawl("tampered");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, server_.url() + "/dists/tampered/main/binary-amd64/Packages.xz"), 1) << r.err;
    EXPECT_TRUE(r.err.find(": sha256 mismatch") != std::string::npos ||
                r.err.find(": size mismatch") != std::string::npos)
        << r.err;
}

// With no --keyring, Debian's own archive keyring is the one trusted: a test key is not in it.
TEST_F(Trust, DebianArchiveKeyringIsTheDefault) {
    const ProcessResult r = crawl("good", {});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, server_.url() + "/dists/good/InRelease: signature by unknown key 0x"), 1)
        << r.err;
}

TEST_F(Trust, ARolledBackReleaseIsRefused) {
    make_suite("rollback", {"--date", "Thu, 03 Dec 2026 12:00:00 UTC"});
    expect_accepted("rollback");
    // The mirror now serves an older Release, well signed: a replay of what it said before.
    make_suite("rollback", {"--date", "Wed, 02 Dec 2026 12:00:00 UTC"});
    expect_refused("rollback", "InRelease",
                   ": Date Wed, 02 Dec 2026 12:00:00 UTC is older than the one trusted before "
                   "(Thu, 03 Dec 2026 12:00:00 UTC)");
    // A newer one is accepted again.
    make_suite("rollback", {"--date", "Fri, 04 Dec 2026 12:00:00 UTC"});
    expect_accepted("rollback");
}

// The attack of issue 16: a mirror whose header Makefile was altered. The build is refused at
// the crawl; make never reads the Makefile, so nothing lands on the host and nothing is built.
TEST_F(Trust, ABuildFromAnArchiveSignedByAnotherKeyBuildsNothing) {
    test::TempDir out;
    const ProcessResult r = test::run_kbuild(
        {"--cache-dir", cache_.path().string(), "build", "--distro", "debian", "--mirror", server_.url(), "--option",
         "suites=otherkey", "--option", "components=main", "--keyring", keyring("a"), "--builder", "local",
         "--module-src", (test::source_dir() / "tests/fixtures/modules/netprobe").string(), "--out",
         out.path().string()});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, server_.url() + "/dists/otherkey/InRelease: signature by unknown key 0x"), 1)
        << r.err;
    EXPECT_FALSE(fs::exists(planted_));
    if (fs::exists(out / "index.json")) {
        EXPECT_TRUE(Json::parse(test::read_file(out / "index.json"))["targets"].empty());
    }
}

// --insecure-mirror: used, said in a warning on the run, and recorded in index.json.
TEST_F(Trust, AnInsecureMirrorIsUsedSaidAndRecorded) {
    const ProcessResult crawled = crawl("unsigned", {"--insecure-mirror", server_.url()});
    EXPECT_EQ(crawled.exit_code, 0) << crawled.err;
    EXPECT_NE(crawled.out.find(kRelease), std::string::npos);
    EXPECT_EQ(test::lines_with(crawled.err, server_.url() +
                                                "/dists/unsigned/Release: used without checking its signature "
                                                "(insecure mirror " +
                                                server_.url() + ")"),
              1)
        << crawled.err;

    // The build itself fails (the headers are a stub), but its record says what was unchecked.
    test::TempDir out;
    const ProcessResult built = test::run_kbuild(
        {"--cache-dir", cache_.path().string(), "build", "--distro", "debian", "--mirror", server_.url(), "--option",
         "suites=unsigned", "--option", "components=main", "--insecure-mirror", server_.url(), "--builder", "local",
         "--module-src", (test::source_dir() / "tests/fixtures/modules/netprobe").string(), "--out",
         out.path().string()});
    EXPECT_NE(built.exit_code, 0);
    const Json index = Json::parse(test::read_file(out / "index.json"));
    ASSERT_EQ(index["targets"].size(), 1u) << index.dump(2);
    EXPECT_EQ(index["targets"][0]["unverified"],
              Json::array({server_.url() + "/dists/unsigned/Release: insecure mirror " + server_.url()}));
}

// Keyrings from the config file: the distro's, and one for a mirror.
TEST_F(Trust, KeyringsComeFromTheConfigFile) {
    test::TempDir dir;
    test::write_file(dir / "kbuild.toml", "[debian]\nkeyring = [\"" + keyring("a", "asc") + "\"]\n");
    ProcessResult r = test::run_kbuild({"--config", (dir / "kbuild.toml").string(), "--cache-dir",
                                        cache_.path().string(), "crawl", "--distro", "debian", "--mirror",
                                        server_.url(), "--option", "suites=good", "--option", "components=main"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    test::write_file(dir / "kbuild.toml",
                     "[debian]\nmirror-keyring = [\"" + server_.url() + "=" + keyring("b") + "\"]\n");
    r = test::run_kbuild({"--config", (dir / "kbuild.toml").string(), "--cache-dir", cache_.path().string(), "crawl",
                          "--distro", "debian", "--mirror", server_.url(), "--option", "suites=otherkey,good",
                          "--option", "components=main", "--output", "json"});
    // Key B is the mirror's: otherkey is read, good (key A) is refused, and the run says so.
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(test::lines_with(r.err, server_.url() + "/dists/good/InRelease: signature by unknown key 0x"), 1)
        << r.err;
    EXPECT_EQ(Json::parse(r.out)["releases"].size(), 1u) << r.out;
}

}  // namespace
