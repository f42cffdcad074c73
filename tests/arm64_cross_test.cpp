// arm64 kernels cross-built on this x86_64 machine, with no emulation (labels docker, network):
// the newest arm64 kernel of bullseye, bookworm and trixie from the Debian mirror apt uses,
// each built in the image of its own gcc with that gcc's aarch64 cross compiler and this host's
// linux-kbuild-* programs; the module is an aarch64 ELF whose vermagic carries arm64's mark,
// named as Falco's loader on an arm64 node asks for it. An arm64 bundle, named apart from an
// x86 one, built from alone. And an rpm aarch64 kernel-devel whose host programs are aarch64's
// (Red Hat's layout: scripts/ whole, sources beside the programs), rebuilt here from their
// sources before the module is built. And an arm64 node asking the build service for its module.
#include "fetch/fetch.h"
#include "kernel/kernel_arch.h"
#include "mirror_server.h"
#include "plugin/bundle.h"
#include "serve_client.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <elf.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

struct Suite {
    std::string suites, kernel, image;
    int gcc;
};

// bookworm's newest arm64 kernel as the crawl lists it (its packages: this host's kbuild).
Json newest_bookworm_arm64() {
    const ProcessResult crawl =
        test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "debian", "--arch", "arm64", "--option",
                          "suites=bookworm,bookworm-updates,bookworm-security", "--kernel", "^6\\.1\\.0-[0-9]+-arm64$",
                          "--latest", "1", "--output", "json"});
    if (crawl.exit_code != 0) throw Error("crawl: " + crawl.err);
    return Json::parse(crawl.out)["releases"].at(0);
}

// What a machine that can run arm64 programs would have: a binfmt_misc handler for aarch64
// (qemu-user-static registers qemu-aarch64).
std::vector<std::string> aarch64_handlers() {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc/sys/fs/binfmt_misc", ec))
        if (entry.path().filename().string().find("aarch64") != std::string::npos)
            found.push_back(entry.path().string());
    return found;
}

TEST(Arm64Cross, TheNewestArm64KernelOfEachDebianReleaseBuildsHereWithItsOwnGcc) {
    ASSERT_EQ(host_kernel_arch(), "x86");
    EXPECT_TRUE(aarch64_handlers().empty()) << "this machine can run arm64 programs: " << aarch64_handlers()[0];
    // bullseye-security's index names arm64 packages its pool does not serve here (404: the
    // mirror keeps only amd64's of the LTS updates), so bullseye's newest comes from its release.
    const std::vector<Suite> suites = {
        {"bullseye,bullseye-updates", "^5\\.10\\.0-[0-9]+-arm64$", "debian-bullseye", 10},
        {"bookworm,bookworm-updates,bookworm-security", "^6\\.1\\.0-[0-9]+-arm64$", "debian-bookworm", 12},
        {"trixie,trixie-updates,trixie-security", "^6\\.12\\.[0-9]+\\+deb13-arm64$", "debian-trixie", 14},
    };
    for (const auto& suite : suites) {
        SCOPED_TRACE(suite.suites);
        test::TempDir out;
        const ProcessResult build = test::run_kbuild({"--cache-dir",
                                                      cache_dir(),
                                                      "build",
                                                      "--distro",
                                                      "debian",
                                                      "--arch",
                                                      "arm64",
                                                      "--option",
                                                      "suites=" + suite.suites,
                                                      "--kernel",
                                                      suite.kernel,
                                                      "--latest",
                                                      "1",
                                                      "--builder",
                                                      "docker",
                                                      "--naming",
                                                      "falco",
                                                      "--module-src",
                                                      (test::source_dir() / "examples/hello").string(),
                                                      "--out",
                                                      out.path().string()});
        ASSERT_EQ(build.exit_code, 0) << build.err;
        const Json t = test::first_target(out.path());
        ASSERT_EQ(t["status"], "built") << t.dump(2);
        const std::string release = t["kernelrelease"];
        const std::string gcc = std::to_string(suite.gcc);
        EXPECT_EQ(t["arch"], "arm64");
        EXPECT_EQ(t["builder"], "kbuild/builder-" + suite.image + ":latest");
        EXPECT_EQ(t["builder_reason"].get<std::string>().rfind("kernel for arm64 built by gcc " + gcc + " (", 0), 0u)
            << t["builder_reason"];
        // Falco's loader on an arm64 node asks <version>/aarch64/falco_<target>_<release>_<#N>.ko.
        const std::string path = t["artifacts"][0]["path"];
        EXPECT_EQ(path, "1.0.0/aarch64/falco_debian_" + release + "_1.ko");
        const fs::path ko = out / path;
        EXPECT_EQ(elf_machine(ko), EM_AARCH64);
        const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", ko.string()});
        EXPECT_EQ(vermagic.out.rfind(release + " SMP ", 0), 0u) << vermagic.out;
        EXPECT_NE(vermagic.out.find(" aarch64"), std::string::npos) << vermagic.out;
        // Cross-compiled by gcc's aarch64 compiler, with this host's kbuild programs.
        const std::string log = test::read_file(out / t["log"].get<std::string>());
        EXPECT_NE(log.find("CC=aarch64-linux-gnu-gcc-" + gcc + " HOSTCC=gcc-" + gcc +
                           " ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-"),
                  std::string::npos)
            << log;
    }
}

TEST(Arm64Cross, AnArm64BundleIsNamedApartAndBuildsFromAlone) {
    test::TempDir dir;
    const ProcessResult made =
        test::run_kbuild({"--cache-dir", cache_dir(), "bundle", "--distro", "debian", "--arch", "arm64", "--option",
                          "suites=bookworm,bookworm-updates,bookworm-security", "--kernel", "^6\\.1\\.0-[0-9]+-arm64$",
                          "--latest", "1", "--out", (dir / "bundles").string(), "--output", "json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const Json bundles = Json::parse(made.out)["bundles"];
    ASSERT_EQ(bundles.size(), 1u) << made.out;
    const std::string release = bundles[0]["kernelrelease"];
    const fs::path bundle = dir / "bundles" / ("bundle-aarch64_" + release + ".tgz");
    ASSERT_TRUE(fs::is_regular_file(bundle)) << made.out;
    const BundleMeta meta = read_bundle_meta(bundle);
    EXPECT_EQ(meta.arch, "arm64");
    // arm64's tree is in, x86's is not.
    const ProcessResult listing = run_process({"tar", "-tzf", bundle.string()});
    EXPECT_NE(listing.out.find("/arch/arm64/"), std::string::npos);
    EXPECT_EQ(listing.out.find("/arch/x86/"), std::string::npos);

    test::TempDir empty_cache;
    const ProcessResult built =
        test::run_kbuild({"--cache-dir", empty_cache.path().string(), "--plugin-dir", empty_cache.path().string(),
                          "build", "--builder", "docker", "--from-bundle", bundle.string(), "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (dir / "out").string()});
    ASSERT_EQ(built.exit_code, 0) << built.err;
    const Json t = test::first_target(dir / "out");
    ASSERT_EQ(t["status"], "built") << t.dump(2);
    EXPECT_EQ(t["artifacts"][0]["path"],
              "hello-1.0.0-aarch64-" + release + "-" + t["config_md5"].get<std::string>() + ".ko");
    EXPECT_EQ(elf_machine(dir / "out" / t["artifacts"][0]["path"].get<std::string>()), EM_AARCH64);
}

TEST(Arm64Cross, AnAarch64KernelDevelHasItsHostProgramsRebuiltHereFromItsSources) {
    // bookworm's newest arm64 kernel, and its kbuild package of arm64 (aarch64 programs): what an
    // rpm aarch64 kernel-devel holds, with the sources of its programs (from linux-source-6.1).
    const Json release = newest_bookworm_arm64();
    FetchOptions options;
    options.cache_dir = cache_dir();
    Fetcher fetcher(options);
    std::vector<std::string> debs;
    for (const auto& p : release["packages"]) {
        std::string url = p["url"];
        if (const size_t at = url.rfind("_amd64.deb"); at != std::string::npos) {
            // The fixture's input only: the arm64 build of the same kbuild package, beside it in the pool.
            debs.push_back(fetcher.fetch({url.replace(at, 10, "_arm64.deb"), "", -1}).path);
            continue;
        }
        debs.push_back(fetcher.fetch({p["url"], p["sha256"], p["size"]}).path);
    }
    const test::LinuxSource source = test::debian_linux_source();
    test::TempDir archive, out;
    const std::string rel = "6.1.192-1.el9.aarch64";
    std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/rpm/make-rpm-repo").string(),
                                  "--out",
                                  archive.path().string(),
                                  "--layout",
                                  "centos",
                                  "--repo-path",
                                  "9-stream/BaseOS/aarch64/os",
                                  "--release",
                                  rel,
                                  "--scripts-source",
                                  source.tarball.string()};
    argv.insert(argv.end(), debs.begin(), debs.end());
    const ProcessResult made = run_process(argv);
    ASSERT_EQ(made.exit_code, 0) << made.err;
    test::MirrorServer server(archive.path());

    const ProcessResult build = test::run_kbuild(
        {"--cache-dir", cache_dir(), "build", "--distro", "centos", "--arch", "aarch64", "--mirror", server.url(),
         "--option", "repos=9-stream/BaseOS/{arch}/os", "--builder", "docker", "--module-src",
         (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    const Json t = test::first_target(out.path());
    ASSERT_EQ(build.exit_code, 0) << build.err << test::read_file(out / t["log"].get<std::string>());
    ASSERT_EQ(t["status"], "built") << t.dump(2);
    EXPECT_EQ(t["kernelrelease"], rel);
    EXPECT_EQ(t["artifacts"][0]["path"],
              "hello-1.0.0-aarch64-" + rel + "-" + t["config_md5"].get<std::string>() + ".ko");
    const fs::path ko = out / t["artifacts"][0]["path"].get<std::string>();
    EXPECT_EQ(elf_machine(ko), EM_AARCH64);
    const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(vermagic.out.rfind(rel + " SMP ", 0), 0u) << vermagic.out;
    EXPECT_NE(vermagic.out.find(" aarch64"), std::string::npos) << vermagic.out;
    const std::string log = test::read_file(out / t["log"].get<std::string>());
    EXPECT_NE(log.find("kbuild: scripts/basic/fixdep is a program for arm64: the tree's host programs are rebuilt "
                       "for this host from its sources"),
              std::string::npos)
        << log;

    // The local builder cannot rebuild them: it says so, naming the program.
    test::TempDir local_out;
    const ProcessResult local = test::run_kbuild(
        {"--cache-dir", cache_dir(), "build", "--distro", "centos", "--arch", "aarch64", "--mirror", server.url(),
         "--option", "repos=9-stream/BaseOS/{arch}/os", "--builder", "local", "--module-src",
         (test::source_dir() / "examples/hello").string(), "--out", local_out.path().string()});
    EXPECT_NE(local.exit_code, 0);
    EXPECT_EQ(test::lines_with(local.err,
                               "its scripts/basic/fixdep is a program for arm64, which cannot run on this "
                               "x86 host"),
              1)
        << local.err;
}

TEST(Arm64Cross, AnArm64NodeAsksTheBuildServiceAndGetsAnAarch64Module) {
    const std::string release = newest_bookworm_arm64()["kernelrelease"];
    test::TempDir dir;
    test::ServeProcess server(dir.path(),
                              "[serve]\nposts_per_minute = 0\n\n[serve.modules.hello]\npath = \"" +
                                  (test::source_dir() / "examples/hello").string() +
                                  "\"\nversion = \"1.0.0\"\n\n[debian]\noption = "
                                  "[\"suites=bookworm,bookworm-updates,bookworm-security\"]\n",
                              cache_dir(), {"--builder", "docker"});
    test::ModuleAsk ask;
    ask.arch = "aarch64";  // as `uname -m` says it on the node
    ask.kernelrelease = release;
    test::Reply reply = test::http(server.port(), "POST", "/v1/module", ask.body());
    ASSERT_EQ(reply.status, 202) << reply.body << server.log();
    const std::string location = reply.header("location");
    EXPECT_EQ(location, "/v1/module/debian/aarch64/1.0.0/" + release + "/1/" + sha256_text(ask.config) + "/hello.ko");
    reply = test::wait_built(server.port(), location, std::chrono::minutes(5));
    ASSERT_EQ(reply.status, 200) << reply.body << server.log();
    test::write_file(dir / "got.ko", reply.body);
    EXPECT_EQ(elf_machine(dir / "got.ko"), EM_AARCH64);
    const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", (dir / "got.ko").string()});
    EXPECT_EQ(vermagic.out.rfind(release + " SMP ", 0), 0u) << vermagic.out;
    EXPECT_NE(vermagic.out.find(" aarch64"), std::string::npos) << vermagic.out;
}

}  // namespace
