// The arch plugin against pacman repositories on 127.0.0.1 (labels docker, network): real kernel
// headers from the Debian mirror, re-labelled as Arch's linux-headers and linux-lts-headers by
// tests/fixtures/pacman/make-pacman-repo (bsdtar, zstd, repo-add), signed with a throw-away
// key, crawled and built in a container, with the bad cases beside the good ones. The bad
// packages reuse the first package's tree: they fail before anything would build.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include <unistd.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

std::map<std::string, Json> targets_of(const fs::path& out) {
    std::map<std::string, Json> targets;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    return targets;
}

class ArchMirror : public ::testing::Test {
protected:
    // One archive for every test: core (linux-headers and linux-lts-headers that build, a
    // linux-zen-headers whose %SHA256SUM% is wrong, a linux-hardened-headers reaching out of
    // the tree), extra (a linux-headers whose tree is another kernel's), all signed by key A;
    // core-testing signed by key B, which the tests do not trust. Made once per Debian kernel
    // and fixture script (ctest runs each test in a process of its own) in the test cache.
    static void SetUpTestSuite() {
        const test::DebianKernel kernel = test::newest_bookworm_kernel(cache_dir());
        std::smatch m;
        ASSERT_TRUE(std::regex_match(kernel.release, m, std::regex(R"(6\.1\.0-(\d+)-amd64)"))) << kernel.release;
        k_ = m[1];
        const fs::path fixtures = test::source_dir() / "tests/fixtures";
        const std::string made_by = test::read_file(fixtures / "pacman/make-pacman-repo") +
                                    test::read_file(fixtures / "kernel-tree/make-kernel-tree") + kernel.release;
        root_ = fs::path(cache_dir()) / "arch-mirror" / sha256_text(made_by).substr(0, 16);
        if (fs::exists(root_ / "done")) return;
        const fs::path part = root_.string() + ".part-" + std::to_string(::getpid());
        fs::remove_all(part);
        archive_ = part / "archive";
        keys_ = part / "keys";
        test::make_test_key(keys_ / "a", "key a");
        test::make_test_key(keys_ / "b", "key b");
        const std::string a = (keys_ / "a").string(), b = (keys_ / "b").string();
        make({"--name", "linux-headers", "--version", "6.1." + k_ + ".arch1-1", "--sign", a}, kernel.debs);
        make({"--name", "linux-lts-headers", "--version", "6.1." + k_ + "-1", "--sign", a}, kernel.debs);
        // The first package's tree, for the packages that never build.
        const fs::path tree = part / "tree";
        const ProcessResult unpacked = run_process(
            {"bash", "-c", "mkdir -p \"$1\" && bsdtar -xf \"$2\" -C \"$1\" usr/lib/modules", "-", tree.string(),
             (archive_ / ("core/os/x86_64/" + file("linux-headers", "6.1." + k_ + ".arch1-1"))).string()});
        ASSERT_EQ(unpacked.exit_code, 0) << unpacked.err;
        const std::string built = (tree / "usr/lib/modules" / release("arch1-1") / "build").string();
        make({"--name", "linux-zen-headers", "--version", "6.1." + k_ + ".zen1-1", "--tree", built, "--sign", a,
              "--wrong-sha256"});
        make({"--name", "linux-hardened-headers", "--version", "6.1." + k_ + ".hardened1-1", "--tree", built, "--sign",
              a, "--escape"});
        make({"--repo", "extra", "--name", "linux-headers", "--version", "6.1." + k_ + ".arch1-2", "--release",
              release("arch1-1"), "--tree", built, "--sign", a});
        make({"--repo", "core-testing", "--name", "linux-headers", "--version", "6.1." + k_ + ".arch1-3", "--tree",
              built, "--sign", b});
        fs::remove_all(tree);
        test::write_file(part / "done", "");
        std::error_code taken;  // another process may have made it first: its copy is as good
        fs::rename(part, root_, taken);
        if (taken) fs::remove_all(part);
    }
    void SetUp() override {
        archive_ = root_ / "archive";
        keys_ = root_ / "keys";
    }

    static void make(std::vector<std::string> args, const std::vector<std::string>& debs = {}) {
        std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/pacman/make-pacman-repo").string(), "--out",
                                      archive_.string()};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), debs.begin(), debs.end());
        const ProcessResult r = run_process(argv);
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    // 6.1.K-<tag>: the release of linux-headers 6.1.K.<tag>.
    static std::string release(const std::string& tag) { return "6.1." + k_ + "-" + tag; }
    static std::string file(const std::string& name, const std::string& version) {
        return name + "-" + version + "-x86_64.pkg.tar.zst";
    }
    // kbuild with the test cache and key A as the one trusted key.
    static ProcessResult kbuild(std::vector<std::string> args) {
        std::vector<std::string> argv{"--cache-dir", cache_dir()};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"--keyring", (keys_ / "a/public.gpg").string()});
        return test::run_kbuild(argv);
    }

    static inline std::string k_;
    static inline fs::path root_, archive_, keys_;
};

// The crawl lists every flavour's release by Arch's naming, newest first by pacman's order;
// core-testing, signed by a key not trusted, is refused in one line and nothing of it listed.
TEST_F(ArchMirror, CrawlNamesTheReleasesAsArchDoesAndRefusesAnUntrustedDatabase) {
    test::MirrorServer server(archive_);
    const ProcessResult crawl = kbuild({"crawl", "--distro", "arch", "--mirror", server.url(), "--option",
                                        "repos=core,extra,core-testing", "--output", "json"});
    EXPECT_EQ(crawl.exit_code, 1) << crawl.err;
    const std::string testing_db = server.url() + "/core-testing/os/x86_64/core-testing.db";
    EXPECT_EQ(test::lines_with(crawl.err, testing_db), 1) << crawl.err;
    std::vector<std::string> listed;
    std::set<std::string> targets;
    const Json crawled = Json::parse(crawl.out);  // kept: the loop points into it
    for (const auto& r : crawled["releases"]) {
        listed.push_back(r["kernelrelease"]);
        targets.insert(r["target"].get<std::string>());
    }
    const std::set<std::string> expected = {release("arch1-1"), release("arch1-2"), "6.1." + k_ + "-1-lts",
                                            release("zen1-1-zen"), release("hardened1-1-hardened")};
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), expected);
    EXPECT_EQ(targets, std::set<std::string>{"arch"});

    // --latest 1: pacman's order puts arch1-2 above arch1-1 (and above the tags it sorts before).
    const ProcessResult latest = kbuild({"crawl", "--distro", "arch", "--mirror", server.url(), "--kernel",
                                         "arch1-[0-9]", "--latest", "1", "--output", "json"});
    ASSERT_EQ(latest.exit_code, 0) << latest.err;
    const Json newest = Json::parse(latest.out)["releases"];
    ASSERT_EQ(newest.size(), 1u) << latest.out;
    EXPECT_EQ(newest[0]["kernelrelease"], release("arch1-2"));
}

// The build: linux and linux-lts build in the container with the right vermagic; the package
// whose database entry has a wrong sha256, the one reaching out of the tree and the one holding
// another kernel each fail in one line naming it, and nothing is written outside the tree.
TEST_F(ArchMirror, BuildsTheGoodPackagesAndNamesEachBadOne) {
    test::MirrorServer server(archive_);
    test::TempDir out;
    const ProcessResult build = kbuild(
        {"build", "--distro", "arch", "--mirror", server.url(), "--option", "repos=core,extra", "--builder", "docker",
         "--module-src", (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 1) << build.err;
    auto targets = targets_of(out.path());
    ASSERT_EQ(targets.size(), 5u) << build.err;
    for (const std::string& good : {release("arch1-1"), "6.1." + k_ + "-1-lts"}) {
        SCOPED_TRACE(good);
        const Json& t = targets[good];
        ASSERT_EQ(t["status"], "built") << t.dump(2);
        EXPECT_EQ(t["target"], "arch");
        EXPECT_EQ(t["builder"], "kbuild/builder-debian-bookworm:latest");
        const fs::path ko = out / t["artifacts"][0]["path"].get<std::string>();
        const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
        EXPECT_EQ(modinfo.out.rfind(good + " ", 0), 0u) << modinfo.out;
        // Every package was checked against key A: nothing recorded unverified.
        EXPECT_TRUE(t.value("unverified", Json::array()).empty()) << t.dump(2);
    }

    const std::string zen = file("linux-zen-headers", "6.1." + k_ + ".zen1-1");
    const Json& wrong = targets[release("zen1-1-zen")];
    EXPECT_EQ(wrong["status"], "failed");
    EXPECT_NE(wrong["reason"].get<std::string>().find(zen), std::string::npos) << wrong["reason"];
    EXPECT_NE(wrong["reason"].get<std::string>().find("sha256"), std::string::npos) << wrong["reason"];
    EXPECT_EQ(test::lines_with(build.err, zen + ": sha256 mismatch"), 1) << build.err;

    const std::string hardened_release = release("hardened1-1-hardened");
    const Json& escaping = targets[hardened_release];
    EXPECT_EQ(escaping["status"], "failed");
    const std::string refused = escaping["reason"];
    EXPECT_NE(refused.find(file("linux-hardened-headers", "6.1." + k_ + ".hardened1-1")), std::string::npos) << refused;
    EXPECT_NE(refused.find("kbuild-pacman-escape"), std::string::npos) << refused;
    EXPECT_FALSE(fs::exists("/tmp/kbuild-pacman-escape-" + hardened_release));

    const Json& other = targets[release("arch1-2")];
    EXPECT_EQ(other["status"], "failed");
    EXPECT_NE(other["reason"].get<std::string>().find(file("linux-headers", "6.1." + k_ + ".arch1-2") +
                                                      ": holds no usr/lib/modules/" + release("arch1-2") +
                                                      "/build (it holds usr/lib/modules/" + release("arch1-1") + ")"),
              std::string::npos)
        << other["reason"];
}

// Batch: local packages by their .PKGINFO, URLs by file name; what is not a kernel's headers
// package, or the same kernel again, is unclaimed with the reason.
TEST_F(ArchMirror, BatchTakesFilesAndNames) {
    const fs::path core = archive_ / "core/os/x86_64";
    const std::string lts = (core / file("linux-lts-headers", "6.1." + k_ + "-1")).string();
    const Json local = test::batch_json({"--distro", "arch", lts});
    ASSERT_EQ(local["entries"].size(), 1u) << local.dump(1);
    EXPECT_EQ(local["entries"][0]["kernelrelease"], "6.1." + k_ + "-1-lts");

    test::TempDir dir;
    const std::string base = "http://127.0.0.1:1/core/os/x86_64/";
    test::write_file(dir / "list", base + file("linux-headers", "6.1." + k_ + ".arch1-1") + "\n" + base +
                                       file("linux-zen-headers", "6.1." + k_ + ".zen1-1") + "\n" + base +
                                       "linux-api-headers-6.8-1-x86_64.pkg.tar.zst\n" + base + "core.db\n" +
                                       "http://127.0.0.1:1/mirror/" + file("linux-headers", "6.1." + k_ + ".arch1-1") +
                                       "\n");
    const Json named = test::batch_json({"--distro", "arch", "--from-list", (dir / "list").string()});
    std::set<std::string> releases;
    for (const auto& e : named["entries"]) releases.insert(e["kernelrelease"].get<std::string>());
    EXPECT_EQ(releases, (std::set<std::string>{release("arch1-1"), release("zen1-1-zen")}));
    std::map<std::string, std::string> why;
    for (const auto& u : named["unclaimed"]) why[u["file"]] = u["reason"];
    EXPECT_EQ(why[base + "linux-api-headers-6.8-1-x86_64.pkg.tar.zst"],
              "linux-api-headers is not a kernel headers package (linux[-lts|-zen|-hardened]-headers)");
    EXPECT_EQ(why[base + "core.db"], "names no <name>-<pkgver>-<pkgrel>-<arch>.pkg.tar.* file");
    EXPECT_EQ(why["http://127.0.0.1:1/mirror/" + file("linux-headers", "6.1." + k_ + ".arch1-1")],
              "the same kernel as " + base + file("linux-headers", "6.1." + k_ + ".arch1-1"));
}

}  // namespace
