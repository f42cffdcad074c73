// The coreos plugin against release servers on 127.0.0.1 (labels docker, network): real kernel
// headers from the Debian mirror, made into Flatcar releases by
// tests/fixtures/coreos/make-flatcar-release (a GPT disk image with an ext4 root made by
// mkfs.ext4 -d, bzip2-compressed, in the release server's layout) and into Fedora's
// build-system layout by tests/fixtures/rpm/make-rpm-repo; crawled, read out of the image in
// process, built in a container and verified, with the broken images beside the good one.
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

std::vector<std::string> debian_kernel_debs() {
    return test::newest_bookworm_kernel(cache_dir()).debs;
}

// Runs a fixture script with the three packages last; its stdout, trimmed.
std::string fixture(const std::string& script, std::vector<std::string> args, const std::vector<std::string>& debs) {
    args.insert(args.begin(), (test::source_dir() / "tests/fixtures" / script).string());
    args.insert(args.end(), debs.begin(), debs.end());
    const ProcessResult r = run_process(args);
    if (r.exit_code != 0) throw Error(script + ": " + r.err);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

// Targets by Flatcar version, else by kernel release.
std::map<std::string, Json> targets_by_variant(const fs::path& out) {
    std::map<std::string, Json> targets;
    const Json index = Json::parse(test::read_file(out / "index.json"));  // kept: the loop points into it
    for (const auto& t : index["targets"]) {
        const std::string variant = t.value("variant", "");
        targets[variant.empty() ? t["kernelrelease"].get<std::string>() : variant] = t;
    }
    return targets;
}

void expect_verified(const fs::path& out, const Json& target, const std::string& release) {
    ASSERT_EQ(target["status"], "built") << target.dump(2);
    EXPECT_EQ(target["kernelrelease"], release);
    EXPECT_EQ(target["builder"], "kbuild/builder-debian-bookworm:latest");
    const fs::path ko = out / target["artifacts"][0]["path"].get<std::string>();
    const ProcessResult modinfo = run_process({"modinfo", "-F", "vermagic", ko.string()});
    EXPECT_EQ(modinfo.out.rfind(release + " ", 0), 0u) << modinfo.out;
}

// One channel of a release server: a good release, whose DIGESTS is signed as Flatcar signs it,
// and three whose image is cut short, holds no ext4 file system, or holds a symlink leading out
// of it, their DIGESTS unsigned. The crawl names every kernel from its config without fetching an
// image; the build reads the good image in process and builds in the container of the kernel's
// gcc; each broken image is one failed target saying why. With the signing key configured, only
// the signed release is taken.
TEST(CoreOSMirror, FlatcarReleasesCrawledReadOutOfTheirImagesAndBuilt) {
    const auto debs = debian_kernel_debs();
    test::TempDir server_root, out, names_out, key;
    test::make_test_key(key / "home", "flatcar");
    const std::string keyring = (key / "home/public.asc").string();
    const std::string release = fixture("coreos/make-flatcar-release",
                                        {"--out", server_root.path().string(), "--channel", "stable", "--version",
                                         "3510.2.0", "--sign-digests", (key / "home").string()},
                                        debs);
    ASSERT_TRUE(std::regex_match(release, std::regex(R"(6\.1\.\d+-flatcar)"))) << release;
    fixture("coreos/make-flatcar-release",
            {"--out", server_root.path().string(), "--channel", "stable", "--version", "3510.3.0", "--truncate"}, debs);
    fixture("coreos/make-flatcar-release",
            {"--out", server_root.path().string(), "--channel", "stable", "--version", "3510.4.0", "--no-ext4"}, debs);
    fixture("coreos/make-flatcar-release",
            {"--out", server_root.path().string(), "--channel", "stable", "--version", "3510.5.0", "--escape-symlink"},
            debs);
    test::MirrorServer server(server_root.path());

    // crawl: four releases of one kernel, told apart by their Flatcar version; the beta channel
    // this server lacks is said to be missing.
    const ProcessResult crawl =
        test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "flatcar", "--mirror", server.url(),
                          "--option", "channels=stable,beta", "--output", "json"});
    EXPECT_EQ(crawl.exit_code, 1) << crawl.err;
    EXPECT_NE(crawl.err.find(server.url() + "/beta/amd64-usr/"), std::string::npos) << crawl.err;
    std::set<std::string> versions;
    const Json crawled = Json::parse(crawl.out);
    for (const auto& r : crawled["releases"]) {
        EXPECT_EQ(r["kernelrelease"], release);
        versions.insert(r["variant"].get<std::string>());
    }
    EXPECT_EQ(versions, (std::set<std::string>{"3510.2.0", "3510.3.0", "3510.4.0", "3510.5.0"}));

    const ProcessResult build =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "flatcar", "--mirror", server.url(),
                          "--option", "channels=stable", "--builder", "docker", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 1) << build.err;
    auto targets = targets_by_variant(out.path());
    ASSERT_EQ(targets.size(), 4u);
    expect_verified(out.path(), targets["3510.2.0"], release);
    EXPECT_EQ(targets["3510.2.0"]["target"], "flatcar");
    const std::string image = "flatcar_developer_container.bin.bz2";
    auto reason = [&](const std::string& v) { return targets[v]["reason"].get<std::string>(); };
    EXPECT_EQ(targets["3510.3.0"]["status"], "failed");
    EXPECT_NE(reason("3510.3.0").find(image), std::string::npos) << reason("3510.3.0");
    EXPECT_NE(reason("3510.3.0").find("truncated"), std::string::npos) << reason("3510.3.0");
    EXPECT_NE(reason("3510.4.0").find(image + ": no ext2/3/4 file system in its 1 GPT partition"), std::string::npos)
        << reason("3510.4.0");
    EXPECT_NE(reason("3510.5.0").find("leads out of the image"), std::string::npos) << reason("3510.5.0");
    EXPECT_NE(reason("3510.5.0").find(image), std::string::npos) << reason("3510.5.0");
    // No key configured: each target records its own release's DIGESTS as unchecked.
    const std::string dir = server.url() + "/stable/amd64-usr/";
    EXPECT_EQ(targets["3510.2.0"]["unverified"],
              Json::array({dir + "3510.2.0/" + image + ".DIGESTS.asc: no key configured for flatcar"}));
    EXPECT_EQ(targets["3510.4.0"]["unverified"],
              Json::array({dir + "3510.4.0/" + image + ".DIGESTS: no key configured for flatcar"}));

    // With the key, the unsigned releases are refused, each named; the signed one is listed.
    const ProcessResult keyed =
        test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "flatcar", "--mirror", server.url(),
                          "--option", "channels=stable", "--keyring", keyring, "--output", "json"});
    EXPECT_EQ(keyed.exit_code, 1) << keyed.err;
    for (const char* v : {"3510.3.0", "3510.4.0", "3510.5.0"})
        EXPECT_NE(keyed.err.find(dir + v + "/" + image + ".DIGESTS: no signature"), std::string::npos) << keyed.err;
    const Json keyed_releases = Json::parse(keyed.out)["releases"];
    ASSERT_EQ(keyed_releases.size(), 1u) << keyed.out;
    EXPECT_EQ(keyed_releases[0]["variant"], "3510.2.0");

    // The same good image by URL alone (kernel-packer's lists): checked against the signed
    // DIGESTS beside it, the kernel named from the tree read out of it, then built as any other.
    test::write_file(names_out / "list", server.url() + "/stable/amd64-usr/3510.2.0/" + image + "\n");
    const ProcessResult by_name =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "flatcar", "--from-list",
                          (names_out / "list").string(), "--keyring", keyring, "--builder", "docker", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (names_out / "out").string()});
    EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
    auto named = targets_by_variant(names_out / "out");
    ASSERT_EQ(named.size(), 1u);
    expect_verified(names_out / "out", named["3510.2.0"], release);
    EXPECT_EQ(named["3510.2.0"]["unverified"], Json::array());
}

// CoreOS Container Linux (end of life) is laid out the same with its own names: its crawl finds
// coreos_* files and names the kernel -coreos from the config; Flatcar's crawl of that server
// finds none of its own.
TEST(CoreOSMirror, ContainerLinuxReleasesAreFoundByTheirOwnNames) {
    const auto debs = debian_kernel_debs();
    test::TempDir server_root;
    const std::string release = fixture(
        "coreos/make-flatcar-release",
        {"--out", server_root.path().string(), "--flavour", "coreos", "--channel", "stable", "--version", "2512.3.0"},
        debs);
    ASSERT_TRUE(std::regex_match(release, std::regex(R"(6\.1\.\d+-coreos)"))) << release;
    test::MirrorServer server(server_root.path());
    const ProcessResult crawl =
        test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "coreos", "--mirror",
                          server.url() + "/{channel}", "--option", "channels=stable", "--output", "json"});
    ASSERT_EQ(crawl.exit_code, 0) << crawl.err;
    const Json crawled = Json::parse(crawl.out);
    ASSERT_EQ(crawled["releases"].size(), 1u) << crawl.out;
    EXPECT_EQ(crawled["releases"][0]["kernelrelease"], release);
    EXPECT_EQ(crawled["releases"][0]["variant"], "2512.3.0");
    EXPECT_EQ(crawled["releases"][0]["headers"][0],
              server.url() + "/stable/amd64-usr/2512.3.0/coreos_developer_container.bin.bz2");

    const ProcessResult flatcar =
        test::run_kbuild({"--cache-dir", cache_dir(), "crawl", "--distro", "flatcar", "--mirror", server.url(),
                          "--option", "channels=stable", "--output", "json"});
    EXPECT_EQ(flatcar.exit_code, 1);
    EXPECT_NE(flatcar.err.find("2512.3.0/flatcar_production_image_kernel_config.txt"), std::string::npos)
        << flatcar.err;
}

// Fedora CoreOS: a kernel-devel rpm in Fedora's build-system layout, found through its index
// pages, built and verified; a release of a dist tag not asked for is left alone.
TEST(CoreOSMirror, FedoraCoreOSKernelsFromTheBuildSystemLayout) {
    const auto debs = debian_kernel_debs();
    test::TempDir server_root, out;
    fixture("rpm/make-rpm-repo",
            {"--out", server_root.path().string(), "--layout", "koji", "--release", "6.1.0-200.fc40.x86_64"}, debs);
    fixture("rpm/make-rpm-repo",
            {"--out", server_root.path().string(), "--layout", "koji", "--release", "6.1.0-100.fc39.x86_64"}, debs);
    test::MirrorServer server(server_root.path());
    const ProcessResult build =
        test::run_kbuild({"--cache-dir", cache_dir(), "build", "--distro", "fedora-coreos", "--mirror", server.url(),
                          "--option", "dist=fc40", "--builder", "docker", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", out.path().string()});
    EXPECT_EQ(build.exit_code, 0) << build.err;
    ASSERT_TRUE(fs::exists(out / "index.json")) << build.err;
    auto targets = targets_by_variant(out.path());
    ASSERT_EQ(targets.size(), 1u);
    expect_verified(out.path(), targets["6.1.0-200.fc40.x86_64"], "6.1.0-200.fc40.x86_64");
    EXPECT_EQ(targets["6.1.0-200.fc40.x86_64"]["target"], "fedora-coreos");
}

}  // namespace
