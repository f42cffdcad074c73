// Kernels built by a gcc no Debian suite uses by default (labels docker, network): real Debian
// headers re-labelled as kernels gcc 9, 11 and 13 configured (tests/fixtures/rpm/make-rpm-repo
// --gcc: the config's compiler and the options that gcc has no flag for), served as one rpm
// repository on 127.0.0.1, each built in the image with exactly its gcc, which the module's
// .comment shows.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

void make_repo(const fs::path& out, const test::DebianKernel& kernel, const std::string& release, int gcc) {
    std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/rpm/make-rpm-repo").string(),
                                  "--out",
                                  out.string(),
                                  "--layout",
                                  "centos",
                                  "--repo-path",
                                  "matrix/x86_64",
                                  "--release",
                                  release,
                                  "--gcc",
                                  std::to_string(gcc)};
    argv.insert(argv.end(), kernel.debs.begin(), kernel.debs.end());
    const ProcessResult r = run_process(argv);
    if (r.exit_code != 0) throw Error("make-rpm-repo: " + r.err);
}

TEST(CompilerMatrix, KernelsOfGcc9And11And13BuildWithExactlyTheirGcc) {
    // gcc 9's kernel is bullseye's 5.10 (its kbuild programs need bullseye's glibc, which the gcc 9
    // image has); gcc 11's and 13's are bookworm's 6.1.
    const test::DebianKernel bullseye = test::newest_debian_kernel(
        cache_dir(), "bullseye,bullseye-updates,bullseye-security", "^5\\.10\\.0-[0-9]+-amd64$");
    const test::DebianKernel bookworm = test::newest_bookworm_kernel(cache_dir());
    test::TempDir archive, out;
    const std::map<int, std::string> releases = {
        {9, "5.10.0-9.el8.x86_64"}, {11, "6.1.192-11.el9.x86_64"}, {13, "6.1.192-13.el10.x86_64"}};
    const std::map<int, std::string> images = {
        {9, "debian-bullseye-gcc9"}, {11, "debian-bookworm-gcc11"}, {13, "debian-trixie-gcc13"}};
    for (const auto& [gcc, release] : releases) make_repo(archive.path(), gcc == 9 ? bullseye : bookworm, release, gcc);
    test::MirrorServer server(archive.path());

    const ProcessResult build =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "centos", "--mirror", server.url(),
                          "--option", "repos=matrix/{arch}", "--builder", "docker", "--jobs", "2", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 0) << build.err;
    std::map<std::string, Json> targets;
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    ASSERT_EQ(targets.size(), 3u) << build.err;
    for (const auto& [gcc, release] : releases) {
        const std::string major = std::to_string(gcc);
        const Json& t = targets[release];
        ASSERT_EQ(t["status"], "built") << t.dump(2);
        EXPECT_EQ(t["builder"], "kbuild/builder-" + images.at(gcc) + ":latest");
        EXPECT_EQ(t["builder_reason"], "kernel built by gcc " + major + " (gcc-" + major + " (kbuild fixture) " +
                                           major + ".1.0): kbuild/builder-" + images.at(gcc) +
                                           ":latest has the same gcc");
        const fs::path ko = out / t["artifacts"][0]["path"].get<std::string>();
        const ProcessResult comment = run_process({"readelf", "-p", ".comment", ko.string()});
        EXPECT_NE(comment.out.find("GCC: (Debian " + major + "."), std::string::npos) << comment.out;
        const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", ko.string()});
        EXPECT_EQ(vermagic.out.rfind(release + " SMP ", 0), 0u) << vermagic.out;
    }
}

}  // namespace
