// The cos plugin (labels docker, network, slow): a COS tools server's layout on 127.0.0.1,
// <build id>/kernel-src.tar.gz (Debian's linux-source-6.1, fetched with apt from the Debian
// mirror and repacked as COS ships its source: gzip, no top directory), kernel-headers.tgz
// holding usr/src/linux-headers-<release>/.config (the config of a real Debian 6.1 kernel) and
// toolchain_env. The release is named by the headers, the tree prepared in the builder image of
// the config's gcc and a module built for it; a headers tarball without a .config of its own
// (none, or a symlink out of it) is one line.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// A kernel-headers.tgz: usr/src/linux-headers-<release>/ with a Makefile, and `config` as its
// .config when given (a symlink to `link` when given instead).
void make_headers(const fs::path& tgz, const std::string& release, const fs::path& config, const fs::path& link = {}) {
    const fs::path tree = tgz.string() + ".d/usr/src/linux-headers-" + release;
    fs::create_directories(tree);
    test::write_file(tree / "Makefile", "# the headers' Makefile\n");
    if (!config.empty()) fs::copy_file(config, tree / ".config");
    if (!link.empty()) fs::create_symlink(link, tree / ".config");
    ASSERT_EQ(run_process({"tar", "-czf", tgz.string(), "-C", tgz.string() + ".d", "usr"}).exit_code, 0);
}

class Cos : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        // Debian's newest linux-source-6.1, kept in the build tree's test cache across runs.
        const test::LinuxSource source = test::debian_linux_source();
        version_ = source.version;
        const fs::path& tarball = source.tarball;
        const fs::path sources = tarball.parent_path();
        // As COS ships it: gzip, the tree's files at the top. Repacked once, kept beside it.
        const fs::path repacked = sources / ("cos-kernel-src-" + version_ + ".tar.gz");
        if (!fs::exists(repacked)) {
            const ProcessResult repack = run_process(
                {"sh", "-c",
                 "mkdir \"$1.d\" && tar -xJf \"$0\" -C \"$1.d\" --strip-components=1 && "
                 "tar -cf - -C \"$1.d\" . | gzip -1 > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"; s=$?; rm -rf \"$1.d\"; "
                 "exit $s",
                 tarball.string(), repacked.string()});
            ASSERT_EQ(repack.exit_code, 0) << repack.err;
        }

        // The config of Debian's newest bookworm kernel (built by gcc 12).
        const fs::path config = dir_->path() / "debian.config";
        test::write_bookworm_config(config);

        // The tools server: a good build, and one whose headers lack the config.
        release_ = version_ + "+";  // COS's kernels: the version and the "+" of an untagged tree
        const fs::path good = dir_->path() / "tools" / kGood;
        fs::create_directories(good);
        fs::create_symlink(repacked, good / "kernel-src.tar.gz");
        make_headers(good / "kernel-headers.tgz", release_, config);
        test::write_file(good / "toolchain_env", "CC=gcc\nCXX=g++\n");
        const fs::path bad = dir_->path() / "tools" / kBad;
        fs::create_directories(bad / "src");
        test::write_file(bad / "src/Makefile", "# not a kernel\n");
        ASSERT_EQ(run_process({"tar", "-czf", (bad / "kernel-src.tar.gz").string(), "-C", (bad / "src").string(), "."})
                      .exit_code,
                  0);
        make_headers(bad / "kernel-headers.tgz", release_, {});
        // Headers whose .config is a symlink out of the tree, to a config this host has.
        const fs::path escaping = dir_->path() / "tools" / kEscaping;
        fs::create_directories(escaping);
        fs::copy_file(bad / "kernel-src.tar.gz", escaping / "kernel-src.tar.gz");
        make_headers(escaping / "kernel-headers.tgz", release_, {}, config);
        server_ = new test::MirrorServer(dir_->path() / "tools");
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    ProcessResult build(const std::string& build_id, const fs::path& out) {
        return test::run_kbuild({"--cache-dir", cache_.path().string(), "build", "--distro", "cos", "--mirror",
                                 server_->url(), "--option", "builds=" + build_id, "--builder", "docker",
                                 "--module-src", (test::source_dir() / "examples/hello").string(), "--out",
                                 out.string()});
    }

    static constexpr const char* kGood = "17400.0.0";
    static constexpr const char* kBad = "17401.0.0";
    static constexpr const char* kEscaping = "17402.0.0";
    static test::TempDir* dir_;
    static test::MirrorServer* server_;
    static std::string version_, release_;
    test::TempDir cache_;
};

test::TempDir* Cos::dir_ = nullptr;
test::MirrorServer* Cos::server_ = nullptr;
std::string Cos::version_;
std::string Cos::release_;

TEST_F(Cos, ABuildIsNamedByItsHeadersAndBuiltFromItsSourceWithItsConfig) {
    const fs::path out = cache_ / "out";
    const ProcessResult r = build(kGood, out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("cos " + release_ +
                         ": preparing the source tree with gcc 12 in kbuild/builder-debian-bookworm:latest"),
              std::string::npos)
        << r.err;
    const Json record = test::first_target(out);
    EXPECT_EQ(record["status"], "built") << record.dump();
    EXPECT_EQ(record["kernelrelease"], release_);
    EXPECT_EQ(record["variant"], kGood);
    EXPECT_EQ(record["target"], "cos");
    const std::string base = server_->url() + "/" + kGood + "/";
    EXPECT_EQ(record["packages"],
              Json::array({base + "kernel-src.tar.gz", base + "kernel-headers.tgz", base + "toolchain_env"}));
    const std::string vermagic = record["artifacts"].at(0)["vermagic"];
    EXPECT_EQ(vermagic.rfind(release_ + " SMP preempt mod_unload modversions", 0), 0u) << vermagic;
    // COS signs nothing: what the build used is recorded as not checked.
    const Json unverified = record.value("unverified", Json::array());
    EXPECT_NE(std::find(unverified.begin(), unverified.end(), base + "kernel-src.tar.gz: no key configured for cos"),
              unverified.end())
        << record.dump();
}

TEST_F(Cos, ACrawlListsEachBuildAskedWithTheToolchainEnvItsServerHas) {
    const auto crawl = [&](const std::vector<std::string>& more) {
        std::vector<std::string> argv{"--cache-dir", cache_.path().string(), "crawl",    "--distro", "cos",
                                      "--mirror",    server_->url(),         "--output", "json"};
        argv.insert(argv.end(), more.begin(), more.end());
        return test::run_kbuild(argv);
    };
    const ProcessResult r = crawl({"--option", std::string("builds=") + kGood + "," + kBad});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, Json> by_build;
    const Json listed = Json::parse(r.out);
    for (const auto& e : listed["releases"]) by_build[e["variant"].get<std::string>()] = e["headers"];
    const std::string good = server_->url() + "/" + kGood + "/", bad = server_->url() + "/" + kBad + "/";
    EXPECT_EQ(by_build[kGood],
              Json::array({good + "kernel-src.tar.gz", good + "kernel-headers.tgz", good + "toolchain_env"}));
    EXPECT_EQ(by_build[kBad], Json::array({bad + "kernel-src.tar.gz", bad + "kernel-headers.tgz"}));

    const ProcessResult none = crawl({});
    EXPECT_NE(none.exit_code, 0);
    EXPECT_EQ(test::lines_with(none.err, "name the COS builds to build: --option builds=17400.0.0[,...]"), 1)
        << none.err;
}

// No .config in the headers, or one that is a symlink out of them: one line, nothing read.
TEST_F(Cos, HeadersWithoutAConfigOfTheirOwnAreOneLine) {
    for (const std::string id : {kBad, kEscaping}) {
        const fs::path out = cache_ / ("out-" + id);
        const ProcessResult r = build(id, out);
        EXPECT_NE(r.exit_code, 0);
        const Json record = test::first_target(out);
        EXPECT_EQ(record["status"], "failed");
        const std::string reason = record["reason"];
        EXPECT_NE(reason.find(server_->url() + "/" + id + "/kernel-headers.tgz: usr/src/linux-headers-" + release_ +
                              "/ holds no .config (the kernel's config)"),
                  std::string::npos)
            << reason;
        EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
    }
}

}  // namespace
