// The gardenlinux plugin against a Garden Linux-layout repository on 127.0.0.1 (labels docker,
// network): the newest bookworm kernel's real packages from the Debian mirror, re-labelled as
// Garden Linux's by tests/fixtures/gardenlinux/make-gardenlinux-mirror (dpkg-deb,
// apt-ftparchive, a throw-away signing key), then crawled and built in a container, with the bad
// cases beside the good one (U is the Debian kernel's upstream version, 6.1.N):
//   today          U-gardenlinux-cloud-amd64     headers, common, kbuild: builds
//   1592.0         U+1-gardenlinux-cloud-amd64   its common package is missing: unavailable
//   experimental   U+2-gardenlinux-cloud-amd64   the Packages.xz does not match Release: refused
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <regex>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

class GardenLinuxMirror : public ::testing::Test {
protected:
    // The repository is made once for the tests here.
    static void SetUpTestSuite() {
        archive_ = new test::TempDir;
        const test::DebianKernel kernel = test::newest_bookworm_kernel(cache_dir());
        // The upstream version of the Debian upload: 6.1.192 of linux-headers-6.1.0-57-amd64_6.1.192-3.
        int patch = -1;
        for (const auto& deb : kernel.debs) {
            const std::string name = fs::path(deb).filename().string();
            std::smatch m;
            if (std::regex_match(name, m, std::regex(R"(linux-headers-.*-amd64_6\.1\.(\d+)-.*)")))
                patch = std::stoi(m[1]);
        }
        ASSERT_GE(patch, 0) << "no headers package among the bookworm kernel's";
        upstream_ = "6.1." + std::to_string(patch);
        orphan_ = "6.1." + std::to_string(patch + 1);
        corrupt_ = "6.1." + std::to_string(patch + 2);

        test::make_test_key(archive_->path() / "key", "gardenlinux mirror");
        auto make = [&](std::vector<std::string> args) {
            std::vector<std::string> argv{
                (test::source_dir() / "tests/fixtures/gardenlinux/make-gardenlinux-mirror").string(), "--out",
                archive().string(), "--key", (archive_->path() / "key").string()};
            argv.insert(argv.end(), args.begin(), args.end());
            argv.insert(argv.end(), kernel.debs.begin(), kernel.debs.end());
            ProcessOptions run;
            if (fs::is_directory("/dev/shm")) run.env = {"TMPDIR=/dev/shm"};  // ~17,000 files
            const ProcessResult r = run_process(argv, run);
            ASSERT_EQ(r.exit_code, 0) << r.err;
        };
        make({"--suite", "today"});
        make({"--suite", "1592.0", "--upstream", orphan_, "--omit-common"});
        make({"--suite", "experimental", "--upstream", corrupt_, "--omit-common", "--corrupt-index"});
    }

    static void TearDownTestSuite() {
        delete archive_;
        archive_ = nullptr;
    }

    static ProcessResult kbuild(std::vector<std::string> args, const std::string& mirror, bool keyring = true) {
        args.insert(args.begin(), {"--cache-dir", cache_dir()});
        args.insert(args.end(), {"--distro", "gardenlinux", "--mirror", mirror});
        if (keyring) args.insert(args.end(), {"--keyring", (archive_->path() / "key/public.gpg").string()});
        return test::run_kbuild(args);
    }

    static fs::path archive() { return archive_->path() / "archive"; }
    static std::string release(const std::string& upstream) { return upstream + "-gardenlinux-cloud-amd64"; }
    static std::string pool(const test::MirrorServer& server) { return server.url() + "/pool/main/l/linux-6.1/"; }

    static std::string orphan_reason() {
        return "linux-headers-" + release(orphan_) + " " + orphan_ + "-0gardenlinux1 needs linux-headers-" + orphan_ +
               "-gardenlinux-common (= " + orphan_ + "-0gardenlinux1), which no index or list holds";
    }

    static inline test::TempDir* archive_ = nullptr;
    static inline std::string upstream_, orphan_, corrupt_;
};

TEST_F(GardenLinuxMirror, CrawlListsTheReleaseWithItsPackagesAndNamesWhatIsWrong) {
    test::MirrorServer server(archive());
    const ProcessResult r =
        kbuild({"crawl", "--option", "suites=today,1592.0,experimental", "--output", "json"}, server.url());
    // The experimental index is refused: the crawl says so in one line and fails, after listing
    // the rest.
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const std::string index = server.url() + "/dists/experimental/main/binary-amd64/Packages.xz: ";
    EXPECT_EQ(test::lines_with(r.err, index + "sha256 mismatch") + test::lines_with(r.err, index + "size mismatch"), 1)
        << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["errors"].size(), 1u) << doc.dump(2);
    ASSERT_EQ(doc["releases"].size(), 2u) << doc.dump(2);
    std::map<std::string, Json> releases;
    for (const auto& rel : doc["releases"]) releases[rel["kernelrelease"]] = rel;

    const Json& good = releases[release(upstream_)];
    const std::string version = upstream_ + "-0gardenlinux1";
    EXPECT_EQ(good["headers"],
              Json({pool(server) + "linux-headers-" + release(upstream_) + "_" + version + "_amd64.deb",
                    pool(server) + "linux-headers-" + upstream_ + "-gardenlinux-common_" + version + "_all.deb",
                    pool(server) + "linux-kbuild-6.1_" + version + "_amd64.deb"}));
    EXPECT_EQ(good["kernelversion"], "1");
    EXPECT_EQ(good["target"], "gardenlinux");
    EXPECT_FALSE(good.contains("unavailable")) << good.dump(2);
    for (const auto& p : good["packages"]) {
        EXPECT_EQ(p["sha256"].get<std::string>().size(), 64u);
        EXPECT_GT(p["size"].get<long long>(), 0);
    }
    EXPECT_EQ(releases[release(orphan_)]["unavailable"], orphan_reason());
}

// Without --keyring the repository is checked against Garden Linux's own key, where Garden Linux
// keeps it: a machine without that key is told so in one line; on one with it, this repository
// (signed by the test's own key) is refused, its signed Release named.
TEST_F(GardenLinuxMirror, WithoutAKeyringTheDefaultOneIsNamed) {
    const std::string keyring = "/etc/apt/trusted.gpg.d/gardenlinux.asc";
    test::MirrorServer server(archive());
    const ProcessResult r = kbuild({"crawl"}, server.url(), false);
    EXPECT_NE(r.exit_code, 0);
    if (!fs::exists(keyring)) {
        EXPECT_EQ(test::lines_with(r.err, keyring + ": keyring cannot be read (give --keyring FILE"), 1) << r.err;
    } else {
        EXPECT_EQ(test::lines_with(r.err, "keyring cannot be read"), 0) << r.err;
        EXPECT_GE(test::lines_with(r.err, server.url() + "/dists/today/InRelease: "), 1) << r.err;
    }
}

TEST_F(GardenLinuxMirror, BuildsTheGoodKernelInTheContainerAndRecordsTheOrphan) {
    test::MirrorServer server(archive());
    test::TempDir out;
    const ProcessResult r = kbuild({"build", "--builder", "docker", "--option", "suites=today,1592.0", "--module-src",
                                    (test::source_dir() / "examples/hello").string(), "--out", out.path().string()},
                                   server.url());
    EXPECT_EQ(r.exit_code, 1) << r.err;  // one built, one unavailable
    EXPECT_EQ(test::lines_with(r.err, release(orphan_) + ": unavailable: " + orphan_reason()), 1) << r.err;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    std::map<std::string, Json> targets;
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    ASSERT_EQ(targets.size(), 2u) << index.dump(2);

    const Json& built = targets[release(upstream_)];
    ASSERT_EQ(built["status"], "built") << built.dump(2);
    EXPECT_EQ(built["distro"], "gardenlinux");
    EXPECT_EQ(built["target"], "gardenlinux");
    EXPECT_EQ(built["builder"], "kbuild/builder-debian-bookworm:latest");
    ASSERT_EQ(built["artifacts"].size(), 1u);
    const fs::path ko = out / built["artifacts"][0]["path"].get<std::string>();
    EXPECT_NE(ko.filename().string().find("-x86_64-" + release(upstream_) + "-"), std::string::npos) << ko;
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(modinfo.out.rfind(release(upstream_) + " ", 0), 0u) << modinfo.out;

    EXPECT_EQ(targets[release(orphan_)]["status"], "unavailable");
    EXPECT_EQ(targets[release(orphan_)]["reason"], orphan_reason());
}

}  // namespace
