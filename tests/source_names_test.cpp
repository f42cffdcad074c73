// The source-kernel plugins' naming on real file names: every COS tools file, Minikube
// defconfig and kernel tarball, and LinuxKit source archive StackRox's kernel-packer listed,
// grouped by `kbuild batch --from-list` as a user would run it. Nothing is fetched.
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kCos = "https://storage.googleapis.com/cos-tools/";
const std::string kMinikube = "https://raw.githubusercontent.com/kubernetes/minikube/";
const std::string kKernelOrg = "https://cdn.kernel.org/pub/linux/kernel/";

Json batch_list(const std::string& distro, const fs::path& list, std::vector<std::string> more = {}) {
    std::vector<std::string> args{"--distro", distro, "--from-list", list.string()};
    args.insert(args.end(), more.begin(), more.end());
    return test::batch_json(args);
}

// Release id -> its entry.
std::map<std::string, Json> entries_by_id(const Json& result) {
    std::map<std::string, Json> by_id;
    for (const auto& e : result["entries"]) {
        const std::string release = e["kernelrelease"], variant = e.value("variant", "");
        by_id[release.empty() ? variant : variant.empty() ? release : release + "~" + variant] = e;
    }
    return by_id;
}

// Every line of the list is a package or the config of one release, or unclaimed with a reason.
void expect_every_line_placed(const fs::path& list, const Json& result) {
    std::set<std::string> placed, unclaimed;
    for (const auto& e : result["entries"]) {
        for (const auto& p : e["headers"]) placed.insert(p.get<std::string>());
        if (e.contains("config")) placed.insert(e["config"].get<std::string>());
    }
    for (const auto& u : result["unclaimed"]) {
        EXPECT_FALSE(u["reason"].get<std::string>().empty()) << u.dump();
        unclaimed.insert(u["file"].get<std::string>());
    }
    for (const auto& line : test::list_lines(list))
        EXPECT_EQ(placed.count(line) + unclaimed.count(line), 1u) << list << ": " << line;
}

TEST(CosNames, EveryBuildWithItsSourceIsAReleaseNamedByItsHeaders) {
    const fs::path list = test::kernel_packer_lists() / "cos.txt";
    const auto lines = test::list_lines(list);
    ASSERT_EQ(lines.size(), 1001u + 894u);
    const Json result = batch_list("cos", list);
    EXPECT_TRUE(result["unclaimed"].empty()) << result["unclaimed"].dump(1);
    EXPECT_TRUE(result["errors"].empty()) << result["errors"];
    expect_every_line_placed(list, result);
    ASSERT_EQ(result["entries"].size(), 1001u);
    // 107 builds list their source but no headers: nothing names their config.
    ASSERT_EQ(result["unavailable"].size(), 107u);
    for (const auto& [id, why] : result["unavailable"].items())
        EXPECT_EQ(why, "no kernel-headers.tgz beside kernel-src.tar.gz: it holds the kernel's config") << id;
    for (const auto& e : result["entries"]) {
        EXPECT_EQ(e["kernelrelease"], "");  // named by the headers once unpacked
        EXPECT_EQ(e["target"], "cos");
        EXPECT_EQ(e["config"], "kernel.config");
        const std::string id = e["variant"];
        EXPECT_EQ(e["headers"][0], kCos + id + "/kernel-src.tar.gz");
        EXPECT_EQ(e["headers"].size(), e.contains("unavailable") ? 1u : 2u) << e.dump();
    }

    const auto by_id = entries_by_id(result);
    for (const std::string id : {"17400.0.0", "16919.103.10", "11800.0.0"}) {
        ASSERT_TRUE(by_id.count(id)) << id;
        EXPECT_EQ(by_id.at(id)["headers"],
                  Json::array({kCos + id + "/kernel-src.tar.gz", kCos + id + "/kernel-headers.tgz"}));
        EXPECT_FALSE(by_id.at(id).contains("unavailable"));
    }
    ASSERT_TRUE(by_id.count("10032.22.0"));
    EXPECT_EQ(by_id.at("10032.22.0")["headers"], Json::array({kCos + "10032.22.0/kernel-src.tar.gz"}));
    EXPECT_TRUE(by_id.at("10032.22.0").contains("unavailable"));
}

TEST(CosNames, WhatIsNoBuildsSourceIsUnclaimedWithAReason) {
    test::TempDir dir;
    test::write_file(dir / "list.txt", kCos + "17400.0.0/kernel-src.tar.gz\n" + kCos + "17400.0.0/toolchain_env\n" +
                                           kCos + "16000.0.0/kernel-headers.tgz\n" + kCos +
                                           "17400.0.0/kernel-src.tar.xz\n" + kCos + "latest/kernel-src.tar.gz\n");
    const Json result = batch_list("cos", dir / "list.txt");
    ASSERT_EQ(result["entries"].size(), 1u);
    EXPECT_EQ(result["entries"][0]["headers"],
              Json::array({kCos + "17400.0.0/kernel-src.tar.gz", kCos + "17400.0.0/toolchain_env"}));
    std::map<std::string, std::string> unclaimed;
    for (const auto& u : result["unclaimed"]) unclaimed[u["file"]] = u["reason"];
    EXPECT_EQ(unclaimed,
              (std::map<std::string, std::string>{
                  {kCos + "16000.0.0/kernel-headers.tgz",
                   "no kernel-src.tar.gz beside it: COS's kernel is built from source"},
                  {kCos + "17400.0.0/kernel-src.tar.xz",
                   "not a COS tools file (<build id>/kernel-src.tar.gz, kernel-headers.tgz or toolchain_env)"},
                  {kCos + "latest/kernel-src.tar.gz", "its directory latest is not a COS build id (17400.0.0)"}}));
}

TEST(CosNames, LocalFilesAreGroupedByTheirBuildDirectory) {
    test::TempDir dir;
    for (const std::string name : {"kernel-src.tar.gz", "kernel-headers.tgz", "toolchain_env"})
        test::write_file(dir / "17400.0.0" / name, "");
    const Json result =
        test::batch_json({"--distro", "cos", (dir / "17400.0.0/kernel-src.tar.gz").string(),
                          (dir / "17400.0.0/kernel-headers.tgz").string(), (dir / "17400.0.0/toolchain_env").string()});
    ASSERT_EQ(result["entries"].size(), 1u) << result.dump(1);
    const Json& e = result["entries"][0];
    EXPECT_EQ(e["variant"], "17400.0.0");
    EXPECT_EQ(e["config"], "kernel.config");
    EXPECT_EQ(e["headers"].size(), 3u);
    EXPECT_TRUE(result["unavailable"].empty());
}

TEST(MinikubeNames, EachDefconfigIsAReleaseOfItsKernelsTarball) {
    const fs::path list = test::kernel_packer_lists() / "minikube.txt";
    ASSERT_EQ(test::list_lines(list).size(), 21u);
    const Json result = batch_list("minikube", list);
    EXPECT_TRUE(result["unclaimed"].empty()) << result["unclaimed"].dump(1);
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    expect_every_line_placed(list, result);
    EXPECT_EQ(result["entries"].size(), 18u);
    const auto by_id = entries_by_id(result);
    const std::string board = "/deploy/iso/minikube-iso/board/";
    const std::map<std::string, std::pair<std::string, std::string>> checked = {
        {"4.19.202~v1.24.0",
         {kMinikube + "v1.24.0" + board + "coreos/minikube/linux_defconfig?kernel=4.19.202",
          kKernelOrg + "v4.x/linux-4.19.202.tar.xz"}},
        {"5.10.57~v1.26.0",
         {kMinikube + "v1.26.0" + board + "minikube/x86_64/linux_x86_64_defconfig?kernel=5.10.57",
          kKernelOrg + "v5.x/linux-5.10.57.tar.xz"}},
        {"5.10.207~v1.33.1",
         {kMinikube + "v1.33.1" + board + "minikube/x86_64/linux_x86_64_defconfig?kernel=5.10.207",
          kKernelOrg + "v5.x/linux-5.10.207.tar.xz"}}};
    for (const auto& [id, files] : checked) {
        ASSERT_TRUE(by_id.count(id)) << id << " in " << result["releases"].dump(1);
        const Json& e = by_id.at(id);
        EXPECT_EQ(e["target"], "minikube");
        EXPECT_EQ(e["config"], files.first);
        EXPECT_EQ(e["headers"], Json::array({files.second}));
    }
}

TEST(MinikubeNames, ADefconfigWithoutItsTarballIsUnavailableAndAStrayTarballUnclaimed) {
    test::TempDir dir;
    const std::string config = kMinikube + "v1.33.0/deploy/iso/linux_x86_64_defconfig?kernel=5.10.207";
    test::write_file(dir / "list.txt", config + "\n" + kKernelOrg + "v6.x/linux-6.1.1.tar.xz\n" + kMinikube +
                                           "v1.33.0/deploy/iso/linux_x86_64_defconfig\n" + kMinikube + "README.md\n");
    const Json result = batch_list("minikube", dir / "list.txt");
    ASSERT_EQ(result["entries"].size(), 1u);
    EXPECT_EQ(result["unavailable"], (Json{{"5.10.207~v1.33.0",
                                            "no linux-5.10.207.tar.* listed: Minikube v1.33.0 builds kernel.org's "
                                            "5.10.207"}}));
    std::map<std::string, std::string> unclaimed;
    for (const auto& u : result["unclaimed"]) unclaimed[u["file"]] = u["reason"];
    EXPECT_EQ(unclaimed,
              (std::map<std::string, std::string>{
                  {kKernelOrg + "v6.x/linux-6.1.1.tar.xz", "no Minikube defconfig listed for kernel 6.1.1"},
                  {kMinikube + "v1.33.0/deploy/iso/linux_x86_64_defconfig",
                   "a defconfig naming no kernel version: give --option kernel=5.10.207"},
                  {kMinikube + "README.md",
                   "neither a Minikube defconfig (linux_x86_64_defconfig?kernel=<version>) nor a kernel source "
                   "tarball (linux-<version>.tar.xz)"}}));
}

TEST(MinikubeNames, ALocalDefconfigIsTheKernelTheOptionNames) {
    test::TempDir dir;
    test::write_file(dir / "linux-5.10.207.tar.xz", "");
    test::write_file(dir / "v1.33.0" / "linux_x86_64_defconfig", "CONFIG_64BIT=y\n");
    const Json result =
        test::batch_json({"--distro", "minikube", (dir / "linux-5.10.207.tar.xz").string(),
                          (dir / "v1.33.0/linux_x86_64_defconfig").string(), "--option", "kernel=5.10.207"});
    ASSERT_EQ(result["entries"].size(), 1u) << result.dump(1);
    const Json& e = result["entries"][0];
    EXPECT_EQ(e["kernelrelease"], "5.10.207");
    EXPECT_EQ(e["variant"], "v1.33.0");
    EXPECT_EQ(e["config"], (dir / "v1.33.0/linux_x86_64_defconfig").string());
    EXPECT_EQ(e["headers"], Json::array({(dir / "linux-5.10.207.tar.xz").string()}));
}

TEST(LinuxKitNames, EachArchiveIsItsLinuxkitReleaseWithTheConfigGiven) {
    const fs::path list = test::kernel_packer_lists() / "linuxkit.txt";
    ASSERT_EQ(test::list_lines(list).size(), 4u);
    const std::map<std::string, std::string> expected = {
        {"4.9.125-linuxkit", "https://github.com/linuxkit/linux/archive/v4.9.125.tar.gz"},
        {"4.9.184-linuxkit", kKernelOrg + "v4.x/linux-4.9.184.tar.gz"},
        {"4.14.131-linuxkit", kKernelOrg + "v4.x/linux-4.14.131.tar.gz"},
        {"4.19.76-linuxkit", kKernelOrg + "v4.x/linux-4.19.76.tar.gz"}};

    // Without a config: listed, and unavailable saying what to give.
    Json result = batch_list("linuxkit", list);
    EXPECT_TRUE(result["unclaimed"].empty()) << result["unclaimed"].dump(1);
    expect_every_line_placed(list, result);
    ASSERT_EQ(result["entries"].size(), 4u);
    for (const auto& [release, url] : expected) {
        EXPECT_EQ(result["releases"][release], Json::array({url})) << release;
        EXPECT_EQ(result["unavailable"][release],
                  "no config: give --kernel-config (LinuxKit's kernel/config-<series>-x86_64)");
    }

    // With one: each release is built with it.
    test::TempDir dir;
    test::write_file(dir / "config-4.19.x-x86_64", "CONFIG_LOCALVERSION=\"-linuxkit\"\n");
    result = batch_list("linuxkit", list, {"--kernel-config", (dir / "config-4.19.x-x86_64").string()});
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    const auto by_id = entries_by_id(result);
    for (const auto& [release, url] : expected) {
        ASSERT_TRUE(by_id.count(release)) << release;
        EXPECT_EQ(by_id.at(release)["config"], (dir / "config-4.19.x-x86_64").string());
        EXPECT_EQ(by_id.at(release)["target"], "linuxkit");
    }
}

}  // namespace
