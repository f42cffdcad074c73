// The chain of trust of rpm repositories (label unit: 127.0.0.1 only): the small kernel-devel
// stand-in of tests/fixtures/rpm-data published by tests/fixtures/rpm/make-signed-repo
// (rpmsign, createrepo_c, gpg --detach-sign --armor) with throw-away keys, crawled and built by
// the centos plugin through the kbuild binary as a user would.
//   repository  repomd.xml.asc  the rpm       key A configured            no key configured
//   signed      by A            signed by A   read, unpacked              read, recorded unverified
//   otherkey    by B            signed by B   refused: unknown key        -
//   altered     by A, altered   signed by A   refused: BAD signature      -
//   unsigned    none            unsigned      read; rpm refused: not      read, unpacked, both
//                                             signed                      recorded unverified
//   rpmbykeyb   by A            signed by B   read; rpm refused: unknown  -
//                                             key
// A refused rpm is refused before anything of it is unpacked: the target fails naming it, and no
// kernel tree is made.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kRelease = "5.14.0-284.11.1.el9_2.x86_64";
const std::string kRpm = "kernel-devel-" + kRelease + ".rpm";

class RpmTrust : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        make_key("a");
        make_key("b");
        archive_ = dir_->path() / "archive";
        make_repo("signed", {"--sign-rpms", home("a"), "--sign-repomd", home("a")});
        make_repo("otherkey", {"--sign-rpms", home("b"), "--sign-repomd", home("b")});
        make_repo("altered", {"--sign-rpms", home("a"), "--sign-repomd", home("a"), "--tamper-repomd"});
        make_repo("unsigned", {});
        make_repo("rpmbykeyb", {"--sign-rpms", home("b"), "--sign-repomd", home("a")});
    }

    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }

    static std::string home(const std::string& key) { return (dir_->path() / ("key-" + key)).string(); }

    static void make_key(const std::string& name) { test::make_test_key(home(name), "key " + name); }

    static void make_repo(const std::string& repo, std::vector<std::string> args) {
        std::vector<std::string> argv = {(test::source_dir() / "tests/fixtures/rpm/make-signed-repo").string(), "--out",
                                         archive_.string(), "--repo-path", repo};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back((test::source_dir() / "tests/fixtures/rpm-data" / kRpm).string());
        const ProcessResult r = run_process(argv);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }

    static std::string keyring(const std::string& key, const std::string& form = "asc") {
        return (dir_->path() / ("key-" + key) / ("public." + form)).string();
    }

    std::string repomd(const std::string& repo) const { return server_.url() + "/" + repo + "/repodata/repomd.xml"; }
    std::string rpm_url(const std::string& repo) const { return server_.url() + "/" + repo + "/Packages/" + kRpm; }

    ProcessResult crawl(const std::string& repo, std::vector<std::string> extra) {
        std::vector<std::string> args = {"--cache-dir", cache_.path().string(), "crawl",    "--distro",      "centos",
                                         "--mirror",    server_.url(),          "--option", "repos=" + repo, "--output",
                                         "json"};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_kbuild(args);
    }

    // kbuild build of the repository's one kernel (or of local rpm files), built with the
    // local builder: the stand-in tree cannot build a module, so a target whose rpm was
    // accepted fails later, with its tree unpacked and its config hashed.
    Json build(const std::string& repo, std::vector<std::string> extra, const fs::path& out,
               const std::vector<std::string>& files = {}) {
        std::vector<std::string> args = {"--cache-dir", cache_.path().string(), "build", "--distro", "centos"};
        if (files.empty()) args.insert(args.end(), {"--mirror", server_.url(), "--option", "repos=" + repo});
        args.insert(args.end(), files.begin(), files.end());
        args.insert(args.end(),
                    {"--builder", "local", "--module-src",
                     (test::source_dir() / "tests/fixtures/modules/netprobe").string(), "--out", out.string()});
        args.insert(args.end(), extra.begin(), extra.end());
        const ProcessResult r = test::run_kbuild(args);
        EXPECT_NE(r.exit_code, 0) << r.err;
        const Json index = Json::parse(test::read_file(out / "index.json"));
        EXPECT_EQ(index["targets"].size(), 1u) << index.dump(2) << r.err;
        return index["targets"].empty() ? Json::object() : index["targets"][0];
    }

    // Kernel trees in the cache: made only from rpms that were accepted.
    int trees() const {
        int count = 0;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(cache_.path() / "trees", ec))
            count += entry.is_directory() && entry.path().filename().string().find(".part-") == std::string::npos;
        return count;
    }

    static void expect_unpacked(const Json& target) {
        EXPECT_EQ(target["kernelrelease"], kRelease);
        EXPECT_EQ(target["status"], "failed");
        EXPECT_NE(target.value("config_md5", ""), "") << target.dump(2);
        EXPECT_EQ(target["reason"].get<std::string>().find("signature"), std::string::npos) << target.dump(2);
        EXPECT_EQ(target["reason"].get<std::string>().find("signed"), std::string::npos) << target.dump(2);
    }

    void expect_refused(const Json& target, const std::string& cause) {
        EXPECT_EQ(target["status"], "failed");
        EXPECT_EQ(target.value("config_md5", ""), "") << target.dump(2);
        EXPECT_NE(target["reason"].get<std::string>().find(cause), std::string::npos) << target.dump(2);
        EXPECT_EQ(trees(), 0);
    }

    static inline test::TempDir* dir_ = nullptr;
    static inline fs::path archive_;
    test::TempDir cache_;
    test::MirrorServer server_{archive_};
};

TEST_F(RpmTrust, ASignedRepositoryIsReadWithTheRightKey) {
    const ProcessResult r = crawl("signed", {"--keyring", keyring("a")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
    EXPECT_EQ(doc["releases"][0]["kernelrelease"], kRelease);
}

TEST_F(RpmTrust, AnotherKeyOrAnAlteredRepomdIsRefusedInOneLine) {
    ProcessResult r = crawl("otherkey", {"--keyring", keyring("a")});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, repomd("otherkey") + ": signature by unknown key 0x"), 1) << r.err;
    EXPECT_EQ(r.out.find(kRelease), std::string::npos) << r.out;

    r = crawl("altered", {"--keyring", keyring("a")});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(test::lines_with(r.err, repomd("altered") + ": BAD signature by key 0x"), 1) << r.err;
    EXPECT_EQ(r.out.find(kRelease), std::string::npos) << r.out;

    // The refused repository is named; the good one beside it is still read.
    r = crawl("otherkey,signed", {"--keyring", keyring("a")});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(test::lines_with(r.err, repomd("otherkey") + ": signature by unknown key 0x"), 1) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
    EXPECT_EQ(doc["releases"][0]["headers"][0], rpm_url("signed"));
}

// With no key configured for the distro, nothing can be checked: the repository and its rpm are
// used, said in the target's record.
TEST_F(RpmTrust, WithNoKeyConfiguredTheRunRecordsWhatItDidNotCheck) {
    const ProcessResult r = crawl("unsigned", {});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(kRelease), std::string::npos) << r.out;

    test::TempDir out;
    const Json target = build("unsigned", {}, out.path());
    expect_unpacked(target);
    EXPECT_EQ(target["unverified"], Json::array({repomd("unsigned") + ": no key configured for centos",
                                                 rpm_url("unsigned") + ": no key configured for centos"}))
        << target.dump(2);

    // The tree is reused by the next run, which records the rpm as the first did.
    test::TempDir again;
    const Json second = build("unsigned", {}, again.path());
    expect_unpacked(second);
    EXPECT_EQ(second["unverified"], target["unverified"]) << second.dump(2);
}

// Few distributions sign their repository metadata: a repository without repomd.xml.asc is read
// with a key configured, and then every rpm of it must carry a good signature.
TEST_F(RpmTrust, WithAKeyConfiguredAnUnsignedRpmIsRefused) {
    const ProcessResult r = crawl("unsigned", {"--keyring", keyring("a")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(kRelease), std::string::npos) << r.out;

    test::TempDir out;
    const Json target = build("unsigned", {"--keyring", keyring("a")}, out.path());
    expect_refused(target, rpm_url("unsigned") + ": not signed");
    EXPECT_EQ(target["unverified"], Json::array({repomd("unsigned") + ": no signature published"})) << target.dump(2);
}

TEST_F(RpmTrust, ASignedRpmIsUnpackedWithTheRightKeyAndRefusedWithAnother) {
    test::TempDir refused;
    expect_refused(build("rpmbykeyb", {"--keyring", keyring("a")}, refused.path()),
                   rpm_url("rpmbykeyb") + ": rpm signature by unknown key ID ");

    // A binary keyring serves rpm as an armoured one does.
    test::TempDir out;
    const Json target = build("signed", {"--keyring", keyring("a", "gpg")}, out.path());
    expect_unpacked(target);
    EXPECT_EQ(target["unverified"], Json::array()) << target.dump(2);
    EXPECT_EQ(target["package_sha256"], Json::array({sha256_file((archive_ / "signed/Packages" / kRpm).string())}));
}

// A tree unpacked while no key was configured is not reused once one is: its rpm is checked.
TEST_F(RpmTrust, ATreeUnpackedUncheckedIsNotReusedUnderAKey) {
    test::TempDir first, second;
    expect_unpacked(build("rpmbykeyb", {}, first.path()));
    ASSERT_EQ(trees(), 1);
    const Json target = build("rpmbykeyb", {"--keyring", keyring("a")}, second.path());
    EXPECT_EQ(target.value("config_md5", ""), "") << target.dump(2);
    EXPECT_NE(target["reason"].get<std::string>().find(rpm_url("rpmbykeyb") + ": rpm signature by unknown key ID "),
              std::string::npos)
        << target.dump(2);
}

// Local rpm files are checked as downloads are, by the keys of the distro and the config file.
TEST_F(RpmTrust, LocalRpmsAreCheckedToo) {
    const std::string by_b = (archive_ / "otherkey/Packages" / kRpm).string();
    const std::string by_a = (archive_ / "signed/Packages" / kRpm).string();
    test::TempDir refused, out, config;
    expect_refused(build("", {"--keyring", keyring("a")}, refused.path(), {by_b}),
                   by_b + ": rpm signature by unknown key ID ");
    test::write_file(config / "kbuild.toml", "[centos]\nkeyring = [\"" + keyring("a") + "\"]\n");
    expect_unpacked(build("", {"--config", (config / "kbuild.toml").string()}, out.path(), {by_a}));
}

}  // namespace
