// The vanilla plugin and the host's source-kernel path (labels docker, network, slow): Debian's
// linux-source-6.1 (a real kernel source tarball, fetched with apt from the Debian mirror) laid
// out as kernel.org serves it on 127.0.0.1, its sha256sums.asc clearsigned by a throw-away key,
// and the config of a real Debian 6.1 kernel. The tree is prepared once in the builder image
// of the config's gcc, and a module built for the release asked for; a second module reuses
// the prepared tree; the bad cases are each one line. The build service answers the Falco
// build service's vanilla request as it is written.
#include "mirror_server.h"
#include "serve_client.h"
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

class Vanilla : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir;
        // Debian's newest linux-source-6.1, kept in the build tree's test cache across runs.
        const test::LinuxSource source = test::debian_linux_source();
        version_ = source.version;
        const fs::path& tarball = source.tarball;

        // The config of Debian's newest bookworm kernel (built by gcc 12).
        config_ = dir_->path() / "debian.config";
        test::write_bookworm_config(config_);

        // kernel.org's layout: the real tarball, and a small one its signed sums do not vouch for.
        test::make_test_key(dir_->path() / "key", "kernel.org mirror");
        const fs::path small = dir_->path() / "small.tar.xz";
        ASSERT_EQ(
            run_process({"sh", "-c", "mkdir -p \"$0.d/linux-5.10.1\" && tar -cJf \"$0\" -C \"$0.d\" .", small.string()})
                .exit_code,
            0);
        const ProcessResult mirror =
            run_process({(test::source_dir() / "tests/fixtures/vanilla/make-kernel-org-mirror").string(), "--out",
                         (dir_->path() / "mirror").string(), "--key", (dir_->path() / "key").string(),
                         version_ + "=" + tarball.string(), "5.10.1=" + small.string() + "@WRONG"});
        ASSERT_EQ(mirror.exit_code, 0) << mirror.err;
        server_ = new test::MirrorServer(dir_->path() / "mirror");
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    // kbuild build of the vanilla kernels `releases` with `config`, into `out`.
    ProcessResult build(const std::string& releases, const fs::path& config, const fs::path& out,
                        const fs::path& module = test::source_dir() / "examples/hello") {
        return test::run_kbuild({"--cache-dir", cache_.path().string(), "build", "--distro", "vanilla", "--mirror",
                                 server_->url(), "--keyring", (dir_->path() / "key/public.gpg").string(),
                                 "--kernel-config", config.string(), "--option", "releases=" + releases, "--builder",
                                 "docker", "--module-src", module.string(), "--out", out.string()});
    }

    // The Debian kernel's config with each line matching a pattern replaced, as a file.
    fs::path edited_config(const std::string& name,
                           const std::vector<std::pair<std::string, std::string>>& replacements) const {
        std::string text = test::read_file(config_);
        for (const auto& [pattern, replacement] : replacements)
            text = std::regex_replace(text, std::regex(pattern, std::regex::multiline), replacement);
        test::write_file(cache_ / name, text);
        return cache_ / name;
    }

    // The reason the build of `release` with `config` failed, as its index record says.
    std::string failure_of(const std::string& release, const fs::path& config) {
        const fs::path out = cache_ / "out";
        const ProcessResult r = build(release, config, out);
        EXPECT_NE(r.exit_code, 0) << r.err;
        const Json record = test::first_target(out);
        EXPECT_EQ(record["status"], "failed") << record.dump();
        return record.value("reason", "");
    }

    static test::TempDir* dir_;
    static test::MirrorServer* server_;
    static std::string version_;
    static fs::path config_;
    test::TempDir cache_;
};

test::TempDir* Vanilla::dir_ = nullptr;
test::MirrorServer* Vanilla::server_ = nullptr;
std::string Vanilla::version_;
fs::path Vanilla::config_;

// Two modules for one source kernel, built at once by two kbuild processes sharing a cache: the
// tree is prepared once, the other waits for it and reuses it (no second modules_prepare).
TEST_F(Vanilla, ASourceKernelIsPreparedOnceAndEachModuleBuiltForTheReleaseAsked) {
    const std::string release = version_ + "-kbuild1";
    const fs::path other = cache_ / "hello-again";
    fs::copy(test::source_dir() / "examples/hello", other, fs::copy_options::recursive);
    ProcessResult runs[2];
    std::thread second([&] { runs[1] = build(release, config_, cache_ / "out2", other); });
    runs[0] = build(release, config_, cache_ / "out1");
    second.join();
    int prepared_by = -1;
    for (int i : {0, 1}) {
        ASSERT_EQ(runs[i].exit_code, 0) << runs[i].err;
        if (runs[i].err.find("vanilla " + release +
                             ": preparing the source tree with gcc 12 in kbuild/builder-debian-bookworm:latest") !=
            std::string::npos) {
            EXPECT_EQ(prepared_by, -1) << "prepared twice";
            prepared_by = i;
        } else {
            EXPECT_NE(runs[i].err.find("the source tree prepared with this config is reused"), std::string::npos)
                << runs[i].err;
        }
    }
    ASSERT_NE(prepared_by, -1) << runs[0].err << runs[1].err;
    int prepared = 0;
    for (const auto& entry : fs::directory_iterator(cache_ / "prepared")) prepared += entry.is_directory();
    EXPECT_EQ(prepared, 1);

    for (int i : {0, 1}) {
        const fs::path out = cache_ / ("out" + std::to_string(i + 1));
        const Json record = test::first_target(out);
        EXPECT_EQ(record["status"], "built");
        EXPECT_EQ(record["kernelrelease"], release);
        const std::string vermagic = record["artifacts"].at(0)["vermagic"];
        EXPECT_EQ(vermagic.rfind(release + " SMP preempt mod_unload modversions", 0), 0u) << vermagic;
        EXPECT_NE(record["source_tree"].get<std::string>().find("no Module.symvers: built with KBUILD_MODPOST_WARN=1"),
                  std::string::npos)
            << record.dump();
        const std::string log = test::read_file(out / record["log"].get<std::string>());
        if (i != prepared_by) {
            EXPECT_EQ(log.find("modules_prepare"), std::string::npos) << log;
        }
    }
}

TEST_F(Vanilla, ATarballItsSignedSumsDoNotVouchForIsRefused) {
    const fs::path out = cache_ / "out";
    const ProcessResult r = build("5.10.1", config_, out);
    EXPECT_NE(r.exit_code, 0);
    const Json record = test::first_target(out);
    EXPECT_EQ(record["status"], "failed");
    const std::string reason = record["reason"];
    EXPECT_NE(reason.find("linux-5.10.1.tar.xz: sha256 mismatch"), std::string::npos) << reason;
}

TEST_F(Vanilla, SumsWithoutAKeyringAreNotTrusted) {
    const ProcessResult r = test::run_kbuild({"--cache-dir", cache_.path().string(), "crawl", "--distro", "vanilla",
                                              "--mirror", server_->url(), "--kernel-config", config_.string(),
                                              "--option", "releases=" + version_, "--output", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json release = Json::parse(r.out)["releases"].at(0);
    const std::string why = release.value("unavailable", "");
    EXPECT_NE(why.find(server_->url() + "/v6.x/sha256sums.asc: "), std::string::npos) << why;
}

// A config line Kconfig does not take (a string without its quotes) is dropped by olddefconfig:
// the tree's release is then not the one asked for, and the target fails saying so.
TEST_F(Vanilla, AConfigOlddefconfigChangesSoTheReleaseBreaksIsOneLine) {
    const fs::path config =
        edited_config("unquoted.config", {{"^CONFIG_LOCALVERSION=.*$", "CONFIG_LOCALVERSION=-custom"}});
    const std::string release = version_ + "-custom";
    const std::string reason = failure_of(release, config);
    EXPECT_NE(
        reason.find("is kernel " + version_ + ", not " + release +
                    " (make olddefconfig changed what makes its release: CONFIG_LOCALVERSION \"-custom\" became \"\")"),
        std::string::npos)
        << reason;
    // Nothing half-prepared is left to be taken for a prepared tree (only the tree's lock file).
    for (const auto& entry : fs::directory_iterator(cache_ / "prepared"))
        if (entry.path().extension() != ".lock") ADD_FAILURE() << "left behind: " << entry.path();
}

// A kernel built by clang is prepared and built in the clang image with LLVM=1: the config of
// the Debian kernel as clang 16 would have written it.
TEST_F(Vanilla, AKernelBuiltByClangIsPreparedAndBuiltWithClang) {
    const fs::path config = edited_config(
        "clang.config",
        {{"^CONFIG_CC_VERSION_TEXT=.*$", "CONFIG_CC_VERSION_TEXT=\"Debian clang version 16.0.6 (15~deb12u1)\""},
         {"^CONFIG_CC_IS_GCC=y$", "CONFIG_CC_IS_CLANG=y\nCONFIG_CLANG_VERSION=160006"},
         {"^CONFIG_GCC_VERSION=.*$", "CONFIG_GCC_VERSION=0"}});
    const std::string release = version_ + "-clang1";
    const fs::path out = cache_ / "out";
    const ProcessResult r = build(release, config, out);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("vanilla " + release +
                         ": preparing the source tree with clang 16 in kbuild/builder-debian-bookworm-clang16:latest"),
              std::string::npos)
        << r.err;
    const Json record = test::first_target(out);
    ASSERT_EQ(record["status"], "built") << record.dump();
    EXPECT_EQ(record["artifacts"].at(0)["vermagic"].get<std::string>().rfind(release + " SMP preempt", 0), 0u);
    const ProcessResult comment = run_process(
        {"readelf", "-p", ".comment", (out / record["artifacts"].at(0)["path"].get<std::string>()).string()});
    EXPECT_NE(comment.out.find("clang version 16.0.6"), std::string::npos) << comment.out;
    EXPECT_EQ(comment.out.find("GCC:"), std::string::npos) << comment.out;
}

// The Falco build service's vanilla example, as written (no kernelversion, no moduleVersion):
// the node's config is the one the tree is prepared with, and a release the source cannot
// produce by itself (-arch1-1) is made with LOCALVERSION.
TEST_F(Vanilla, TheBuildServiceAnswersTheVanillaRequestAsWritten) {
    const std::string release = version_ + "-arch1-1";
    const std::string config_text = test::read_file(config_);
    test::ServeProcess server(cache_.path(),
                              "[serve]\nposts_per_minute = 0\n\n[serve.modules.hello]\npath = \"" +
                                  (test::source_dir() / "examples/hello").string() +
                                  "\"\nversion = \"1.0.0\"\n\n[vanilla]\nmirror = \"" + server_->url() +
                                  "\"\nkeyring = \"" + (dir_->path() / "key/public.gpg").string() + "\"\n",
                              cache_ / "cache", {"--builder", "docker"});
    const std::string body = Json{{"buildType", "vanilla"},
                                  {"architecture", "x86_64"},
                                  {"kernelrelease", release},
                                  {"kernelConfigData", test::base64(config_text)}}
                                 .dump();
    test::Reply r = test::http(server.port(), "POST", "/v1/module", body);
    ASSERT_EQ(r.status, 202) << r.body << server.log();
    const std::string location = r.header("location");
    EXPECT_EQ(location, "/v1/module/vanilla/x86_64/1.0.0/" + release + "/1/" + sha256_text(config_text) + "/hello.ko");

    r = test::wait_built(server.port(), location, std::chrono::minutes(15));
    ASSERT_EQ(r.status, 200) << r.body << server.log();
    test::write_file(cache_ / "got.ko", r.body);
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", (cache_ / "got.ko").string()});
    EXPECT_EQ(modinfo.out.rfind(release + " SMP preempt mod_unload modversions", 0), 0u) << modinfo.out;

    // A config that is not base64 is refused as the field it is.
    r = test::http(server.port(), "POST", "/v1/module",
                   Json{{"buildType", "vanilla"},
                        {"architecture", "x86_64"},
                        {"kernelrelease", release},
                        {"kernelConfigData", "not base64!"}}
                       .dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("kernelConfigData: not base64"), std::string::npos) << r.body;
}

}  // namespace
