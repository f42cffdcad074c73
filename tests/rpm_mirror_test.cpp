// The centos and amazonlinux plugins against rpm repositories on 127.0.0.1 (labels docker,
// network): real kernel headers from the Debian mirror, re-labelled as Red Hat style
// kernel-devel rpms by tests/fixtures/rpm/make-rpm-repo (rpmbuild, createrepo_c), crawled and
// built in a container (zstd and xz payloads), with the bad cases beside the good ones.
#include "mirror_server.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

// The newest bookworm kernel's packages, and K of its 6.1.0-K-amd64.
struct DebianKernel {
    std::vector<std::string> debs;
    std::string k;
};

DebianKernel debian_kernel() {
    const test::DebianKernel kernel = test::newest_bookworm_kernel(cache_dir());
    std::smatch m;
    if (!std::regex_match(kernel.release, m, std::regex(R"(6\.1\.0-(\d+)-amd64)")))
        throw Error("unexpected " + kernel.release);
    return {kernel.debs, m[1]};
}

void make_repo(const fs::path& out, const DebianKernel& kernel, std::vector<std::string> args) {
    std::vector<std::string> argv{(test::source_dir() / "tests/fixtures/rpm/make-rpm-repo").string(), "--out",
                                  out.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), kernel.debs.begin(), kernel.debs.end());
    const ProcessResult r = run_process(argv);
    if (r.exit_code != 0) throw Error("make-rpm-repo: " + r.err);
}

std::map<std::string, Json> targets_of(const fs::path& out) {
    std::map<std::string, Json> targets;
    const Json index = Json::parse(test::read_file(out / "index.json"));  // kept: the loop points into it
    for (const auto& t : index["targets"]) targets[t["kernelrelease"]] = t;
    return targets;
}

void expect_verified(const fs::path& out, const Json& target, const std::string& release) {
    ASSERT_EQ(target["status"], "built") << target.dump(2);
    EXPECT_EQ(target["builder"], "kbuild/builder-debian-bookworm:latest");
    EXPECT_NE(target["builder_reason"].get<std::string>().find("has the same gcc"), std::string::npos);
    const fs::path ko = out / target["artifacts"][0]["path"].get<std::string>();
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(modinfo.out.rfind(release + " ", 0), 0u) << modinfo.out;
}

// CentOS layout: one good kernel, one whose rpm was cut short after indexing, one whose payload
// reaches out of the tree; and a second repository whose primary index does not match repomd.
TEST(RpmMirror, CentOSRepositoriesCrawledAndBuiltWithTheBadOnesNamed) {
    const DebianKernel kernel = debian_kernel();
    test::TempDir archive, out;
    const std::string good = "6.1.0-" + kernel.k + ".el9.x86_64";
    const std::string cut = "6.1.0-" + kernel.k + ".1.el9.x86_64";
    const std::string escaping = "6.1.0-" + kernel.k + ".2.el9.x86_64";
    const std::string stream9 = "9-stream/AppStream/x86_64/os", stream8 = "8-stream/AppStream/x86_64/os";
    make_repo(archive.path(), kernel, {"--layout", "centos", "--repo-path", stream9, "--release", good});
    make_repo(archive.path(), kernel,
              {"--layout", "centos", "--repo-path", stream9, "--release", cut, "--truncate-one"});
    make_repo(archive.path(), kernel,
              {"--layout", "centos", "--repo-path", stream9, "--release", escaping, "--escape"});
    make_repo(archive.path(), kernel,
              {"--layout", "centos", "--repo-path", stream8, "--release", "6.1.0-" + kernel.k + ".el8.x86_64",
               "--corrupt-primary"});
    test::MirrorServer server(archive.path());

    // Both repositories: the corrupt index is refused and named; the other's kernels are listed.
    const ProcessResult crawl = test::run_kbuild(
        {"--cache-dir", cache_dir(), "crawl", "--distro", "centos", "--mirror", server.url(), "--option",
         "repos=8-stream/AppStream/{arch}/os,9-stream/AppStream/{arch}/os", "--output", "json"});
    EXPECT_EQ(crawl.exit_code, 1);
    EXPECT_NE(crawl.err.find(server.url() + "/" + stream8 + "/repodata/"), std::string::npos) << crawl.err;
    EXPECT_NE(crawl.err.find("primary.xml"), std::string::npos) << crawl.err;
    std::set<std::string> listed;
    const Json crawled = Json::parse(crawl.out);
    for (const auto& r : crawled["releases"]) listed.insert(r["kernelrelease"].get<std::string>());
    EXPECT_EQ(listed, (std::set<std::string>{good, cut, escaping}));

    const ProcessResult build =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "centos", "--mirror", server.url(),
                          "--option", "repos=9-stream/AppStream/{arch}/os", "--builder", "docker", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 1) << build.err;
    auto targets = targets_of(out.path());
    ASSERT_EQ(targets.size(), 3u);
    expect_verified(out.path(), targets[good], good);
    EXPECT_EQ(targets[good]["target"], "centos");
    // The cut rpm fails its size check on download; the escaping entry is refused on unpack.
    EXPECT_EQ(targets[cut]["status"], "failed");
    EXPECT_NE(targets[cut]["reason"].get<std::string>().find("kernel-devel-" + cut + ".rpm"), std::string::npos)
        << targets[cut]["reason"];
    EXPECT_EQ(targets[escaping]["status"], "failed");
    const std::string refused = targets[escaping]["reason"];
    EXPECT_NE(refused.find("kernel-devel-" + escaping + ".rpm"), std::string::npos) << refused;
    EXPECT_NE(refused.find("kbuild-rpm-escape"), std::string::npos) << refused;
    EXPECT_FALSE(fs::exists("/tmp/kbuild-rpm-escape-" + escaping));
}

// Amazon Linux 2: the repository is found through mirror.list, its packages in ../blobstore.
TEST(RpmMirror, AmazonLinux2ThroughMirrorListBuildsInTheContainer) {
    const DebianKernel kernel = debian_kernel();
    test::TempDir archive, out;
    test::MirrorServer server(archive.path());
    const std::string release = "6.1.0-" + kernel.k + ".amzn2.x86_64";
    make_repo(archive.path(), kernel,
              {"--layout", "amazonlinux2", "--release", release, "--payload", "xz", "--base-url", server.url()});

    const ProcessResult build =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "amazonlinux2", "--mirror", server.url(),
                          "--option", "repos=2/core/latest/{arch}/mirror.list", "--builder", "docker", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 0) << build.err;
    auto targets = targets_of(out.path());
    ASSERT_EQ(targets.size(), 1u);
    expect_verified(out.path(), targets[release], release);
    EXPECT_EQ(targets[release]["target"], "amazonlinux2");
    EXPECT_NE(targets[release]["packages"][0].get<std::string>().find(server.url() + "/blobstore/"), std::string::npos)
        << targets[release]["packages"][0];

    // Its bundle (an rpm family tree: usr/src/kernels/<release>) builds the same module alone.
    test::TempDir bundles, from_bundle;
    const ProcessResult bundle =
        test::run_kbuild({"--cache-dir", cache_dir(), "bundle", "--distro", "amazonlinux2", "--mirror", server.url(),
                          "--option", "repos=2/core/latest/{arch}/mirror.list", "--out", bundles.path().string()});
    ASSERT_EQ(bundle.exit_code, 0) << bundle.err;
    const fs::path file = bundles / ("bundle-" + release + ".tgz");
    ASSERT_TRUE(fs::is_regular_file(file)) << bundle.err;
    const ProcessResult rebuilt = test::run_kbuild(
        {"--cache-dir", (bundles / "cache").string(), "build", "--from-bundle", file.string(), "--builder", "docker",
         "--module-src", (test::source_dir() / "examples/hello").string(), "--out", from_bundle.path().string()});
    ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt.err;
    auto again = targets_of(from_bundle.path());
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[release]["target"], "amazonlinux2");
    const std::string path = targets[release]["artifacts"][0]["path"];
    EXPECT_EQ(again[release]["artifacts"][0]["path"], path);
    EXPECT_EQ(test::read_file(from_bundle / path), test::read_file(out / path));
}

}  // namespace
