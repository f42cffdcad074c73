// The Ubuntu plugin against an Ubuntu-layout archive on 127.0.0.1 (labels docker, network):
// real kernel headers from the Debian mirror, re-labelled and packaged as Ubuntu's flavour and
// common packages by tests/fixtures/ubuntu/make-ubuntu-mirror (dpkg-deb, apt-ftparchive), then
// crawled and built in a container, with the bad cases beside the good one:
//   jammy           6.1.0-K-generic      both packages: builds
//   jammy-updates   6.1.0-K1-generic     its common package is missing: unavailable
//   jammy-security  6.1.0-K-lowlatency   no .config: fails naming the path
//   focal           6.1.0-K3-generic     the Packages.xz does not match Release: refused
#include "fetch/fetch.h"
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <regex>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

class UbuntuMirror : public ::testing::Test {
protected:
    // The archive is made once for the tests here.
    static void SetUpTestSuite() {
        archive_ = new test::TempDir;
        // The newest bookworm 6.1 kernel's three packages, through kbuild's own crawl and cache.
        const ProcessResult crawl =
            test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "debian", "--option",
                              "suites=bookworm,bookworm-updates,bookworm-security", "--kernel",
                              "^6\\.1\\.0-[0-9]+-amd64$", "--latest", "1", "--output", "json"});
        ASSERT_EQ(crawl.exit_code, 0) << crawl.err;
        const Json release = Json::parse(crawl.out)["releases"].at(0);
        std::smatch m;
        const std::string debian_release = release["kernelrelease"];
        ASSERT_TRUE(std::regex_match(debian_release, m, std::regex(R"(6\.1\.0-(\d+)-amd64)")));
        abi_ = "6.1.0-" + std::string(m[1]);
        FetchOptions options;
        options.cache_dir = cache_dir();
        Fetcher fetcher(options);
        std::vector<std::string> debs;
        for (const auto& p : release["packages"])
            debs.push_back(fetcher.fetch({p["url"], p["sha256"], p["size"]}).path);

        const std::string out = (archive_->path() / "archive").string();
        // The archive is signed as Ubuntu's is, by a throw-away key the tests trust (--keyring).
        test::make_test_key(archive_->path() / "key", "ubuntu mirror");
        auto make = [&](std::vector<std::string> args) {
            std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/ubuntu/make-ubuntu-mirror").string(),
                                          "--out", out, "--key", (archive_->path() / "key").string()};
            argv.insert(argv.end(), args.begin(), args.end());
            argv.insert(argv.end(), debs.begin(), debs.end());
            ProcessOptions run;
            if (fs::is_directory("/dev/shm")) run.env = {"TMPDIR=/dev/shm"};  // ~17,000 files
            const ProcessResult r = run_process(argv, run);
            ASSERT_EQ(r.exit_code, 0) << r.err;
        };
        make({"--series", "jammy", "--upload", "77"});
        make({"--series", "jammy-updates", "--upload", "78", "--abi-suffix", "1", "--omit-common"});
        make({"--series", "jammy-security", "--upload", "77", "--flavour", "lowlatency", "--no-config"});
        make({"--series", "focal", "--upload", "80", "--abi-suffix", "3", "--omit-common", "--corrupt-index"});
    }

    static void TearDownTestSuite() {
        delete archive_;
        archive_ = nullptr;
    }

    static ProcessResult kbuild(std::vector<std::string> args, const std::string& mirror) {
        args.insert(args.begin(), {"--cache-dir", cache_dir()});
        args.insert(args.end(),
                    {"--distro", "ubuntu", "--mirror", mirror, "--option", "components=main", "--keyring", keyring()});
        return test::run_kbuild(args);
    }

    static std::string keyring() { return (archive_->path() / "key/public.gpg").string(); }
    static fs::path archive() { return archive_->path() / "archive"; }

    static Json release_in(const Json& releases, const std::string& name) {
        for (const auto& r : releases)
            if (r["kernelrelease"] == name) return r;
        throw Error("no release " + name);
    }

    static inline test::TempDir* archive_ = nullptr;
    static inline std::string abi_;  // 6.1.0-K
};

TEST_F(UbuntuMirror, CrawlPairsEachFlavourWithItsCommonAndNamesWhatIsWrong) {
    test::MirrorServer server(archive());
    // Mirror and series from a config file, as a CI job would keep them.
    test::TempDir dir;
    test::write_file(dir / "kbuild.toml", "[ubuntu]\nmirror = [\"" + server.url() +
                                              "\"]\noption = [\"series=jammy,focal\", \"components=main\"]\n"
                                              "keyring = [\"" +
                                              keyring() + "\"]\n");
    const ProcessResult r = test::run_kbuild({"--cache-dir", cache_dir(), "--config", (dir / "kbuild.toml").string(),
                                              "crawl", "--distro", "ubuntu", "--output", "json"});
    // The focal index is refused: the crawl says so and fails, after listing the rest.
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(server.url() + "/dists/focal/main/binary-amd64/Packages.xz"), std::string::npos) << r.err;
    // Refused by the size Release lists when the altered index compresses to another length
    // (it depends on the headers' sizes, which change with the mirror's newest kernel), else by
    // its sha256.
    EXPECT_TRUE(r.err.find(": sha256 mismatch") != std::string::npos ||
                r.err.find(": size mismatch") != std::string::npos)
        << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 3u) << doc.dump(2);
    ASSERT_EQ(doc["errors"].size(), 1u);

    const Json generic = release_in(doc["releases"], abi_ + "-generic");
    EXPECT_EQ(generic["kernelversion"], "77");
    EXPECT_EQ(generic["target"], "ubuntu-generic");
    ASSERT_EQ(generic["headers"].size(), 2u);
    EXPECT_EQ(generic["headers"][0],
              server.url() + "/pool/main/l/linux/linux-headers-" + abi_ + "-generic_" + abi_ + ".77_amd64.deb");
    EXPECT_EQ(generic["headers"][1],
              server.url() + "/pool/main/l/linux/linux-headers-" + abi_ + "_" + abi_ + ".77_all.deb");
    for (const auto& p : generic["packages"]) {
        EXPECT_EQ(p["sha256"].get<std::string>().size(), 64u);
        EXPECT_GT(p["size"].get<long long>(), 0);
    }

    const Json orphan = release_in(doc["releases"], abi_ + "1-generic");
    EXPECT_EQ(orphan["unavailable"], "linux-headers-" + abi_ + "1-generic " + abi_ + "1.78 needs linux-headers-" +
                                         abi_ + "1 (= " + abi_ + "1.78), which no index or list holds");
    EXPECT_EQ(release_in(doc["releases"], abi_ + "-lowlatency")["target"], "ubuntu-lowlatency");
}

TEST_F(UbuntuMirror, BuildsInTheContainerForItsGccAndRecordsTheBadOnes) {
    test::MirrorServer server(archive());
    test::TempDir out;
    const ProcessResult r = kbuild({"build", "--builder", "docker", "--option", "series=jammy", "--module-src",
                                    (test::source_dir() / "examples/hello").string(), "--out", out.path().string()},
                                   server.url());
    EXPECT_EQ(r.exit_code, 1) << r.err;  // one built, one unavailable, one failed
    const Json index = Json::parse(test::read_file(out / "index.json"));
    std::map<std::string, Json> targets;
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    ASSERT_EQ(targets.size(), 3u) << index.dump(2);

    const Json& built = targets[abi_ + "-generic"];
    ASSERT_EQ(built["status"], "built") << built.dump(2);
    EXPECT_EQ(built["target"], "ubuntu-generic");
    EXPECT_EQ(built["kernelversion"], "77");
    EXPECT_EQ(built["builder"], "kbuild/builder-debian-bookworm:latest");
    EXPECT_NE(built["builder_reason"].get<std::string>().find("has the same gcc"), std::string::npos);
    const fs::path ko = out / built["artifacts"][0]["path"].get<std::string>();
    EXPECT_EQ(ko.filename().string().rfind("hello-", 0), 0u);
    EXPECT_NE(ko.filename().string().find("-x86_64-" + abi_ + "-generic-"), std::string::npos) << ko;
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(modinfo.out.rfind(abi_ + "-generic ", 0), 0u) << modinfo.out;

    EXPECT_EQ(targets[abi_ + "1-generic"]["status"], "unavailable");
    EXPECT_NE(targets[abi_ + "1-generic"]["reason"].get<std::string>().find("needs linux-headers-" + abi_ + "1 "),
              std::string::npos);

    const Json& no_config = targets[abi_ + "-lowlatency"];
    EXPECT_EQ(no_config["status"], "failed");
    const std::string reason = no_config["reason"];
    EXPECT_NE(reason.find("/usr/src/linux-headers-" + abi_ + "-lowlatency/.config: missing"), std::string::npos)
        << reason;
}

}  // namespace
