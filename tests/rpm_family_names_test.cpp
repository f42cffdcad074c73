// The suse, photon and alinux plugins' naming, from file names alone (`kbuild batch --from-list`,
// nothing fetched): every line of StackRox kernel-packer's SUSE list, SUSE's pairing of a
// flavour's devel package with its noarch source tree, Photon's flavoured releases and Alibaba
// Cloud Linux's CentOS-like ones.
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

Json batch(const std::string& distro, const fs::path& list) {
    return test::batch_json({"--distro", distro, "--from-list", list.string()});
}

Json batch_lines(const std::string& distro, const std::vector<std::string>& lines) {
    test::TempDir dir;
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    test::write_file(dir / "list.txt", text);
    return batch(distro, dir / "list.txt");
}

// kernelrelease -> the URLs its release takes.
std::map<std::string, std::vector<std::string>> releases_of(const Json& result) {
    std::map<std::string, std::vector<std::string>> releases;
    for (const auto& e : result["entries"]) releases[e["kernelrelease"]] = e["headers"].get<std::vector<std::string>>();
    return releases;
}

const std::string kSle = "https://updates.suse.com/SUSE/Updates/SLE-Module-Basesystem/";

TEST(RpmFamilyNames, EveryLineOfKernelPackersSuseListPairsIntoAKernel) {
    const fs::path list = test::kernel_packer_lists() / "suse.txt";
    const Json result = batch("sles", list);
    const auto lines = test::list_lines(list);
    ASSERT_EQ(lines.size(), 406u);
    // 203 kernels, each its kernel-default-devel and the noarch kernel-devel: no line is left.
    const auto releases = releases_of(result);
    EXPECT_EQ(releases.size(), 203u);
    EXPECT_TRUE(result["unclaimed"].empty()) << result["unclaimed"].dump(1);
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    std::multiset<std::string> placed;
    for (const auto& [release, urls] : releases) {
        ASSERT_EQ(urls.size(), 2u) << release;
        EXPECT_NE(urls[0].find("/kernel-default-devel-"), std::string::npos) << release;
        EXPECT_NE(urls[1].find("/kernel-devel-"), std::string::npos) << release;
        EXPECT_EQ(release.substr(release.size() - 8), "-default");
        placed.insert(urls.begin(), urls.end());
    }
    EXPECT_EQ(placed, std::multiset<std::string>(lines.begin(), lines.end()));

    // uname -r drops the build service's rebuild counter: 150400.22.1 -> 150400.22.
    EXPECT_EQ(releases.at("5.14.21-150400.22-default"),
              (std::vector<std::string>{
                  "https://updates.suse.com/SUSE/Products/SLE-Module-Basesystem/15-SP4/x86_64/product/x86_64/"
                  "kernel-default-devel-5.14.21-150400.22.1.x86_64.rpm",
                  "https://updates.suse.com/SUSE/Products/SLE-Module-Basesystem/15-SP4/x86_64/product/noarch/"
                  "kernel-devel-5.14.21-150400.22.1.noarch.rpm"}));
    // A maintenance rebuild of the flavour's package goes with the noarch tree it was not
    // rebuilt with (9 kernels of the list): 5.3.18-24.67.3 with kernel-devel 5.3.18-24.67.2.
    EXPECT_EQ(
        releases.at("5.3.18-24.67-default"),
        (std::vector<std::string>{kSle + "15-SP2/x86_64/update/x86_64/kernel-default-devel-5.3.18-24.67.3.x86_64.rpm",
                                  kSle + "15-SP2/x86_64/update/noarch/kernel-devel-5.3.18-24.67.2.noarch.rpm"}));
    EXPECT_EQ(releases.at("4.12.14-122.124-default")[1],
              "https://updates.suse.com/SUSE/Updates/SLE-SERVER/12-SP5/x86_64/update/noarch/"
              "kernel-devel-4.12.14-122.124.2.noarch.rpm");
}

TEST(RpmFamilyNames, SuseVariantsMacrosAndMissingHalvesAreNamed) {
    const std::string base = kSle + "15-SP5/x86_64/update/";
    const Json result = batch_lines("sles", {base + "x86_64/kernel-default-devel-5.14.21-150500.55.65.1.x86_64.rpm",
                                             base + "noarch/kernel-devel-5.14.21-150500.55.65.1.noarch.rpm",
                                             base + "noarch/kernel-macros-5.14.21-150500.55.65.1.noarch.rpm",
                                             // The rt variant has its own source tree, kernel-devel-rt.
                                             base + "x86_64/kernel-rt-devel-5.14.21-150500.13.58.1.x86_64.rpm",
                                             base + "noarch/kernel-devel-rt-5.14.21-150500.13.58.1.noarch.rpm",
                                             // A flavour's package without its noarch half, and a noarch half alone.
                                             base + "x86_64/kernel-azure-devel-5.14.21-150500.33.60.1.x86_64.rpm",
                                             base + "noarch/kernel-devel-5.14.21-150500.55.62.1.noarch.rpm",
                                             // Not a build tree.
                                             base + "x86_64/kernel-default-5.14.21-150500.55.65.1.x86_64.rpm"});
    const auto releases = releases_of(result);
    EXPECT_EQ(releases.at("5.14.21-150500.55.65-default").size(), 3u);
    EXPECT_NE(releases.at("5.14.21-150500.55.65-default")[2].find("kernel-macros"), std::string::npos);
    EXPECT_EQ(releases.at("5.14.21-150500.13.58-rt")[1],
              base + "noarch/kernel-devel-rt-5.14.21-150500.13.58.1.noarch.rpm");
    ASSERT_TRUE(result["unavailable"].contains("5.14.21-150500.33.60-azure")) << result.dump(1);
    EXPECT_EQ(result["unavailable"]["5.14.21-150500.33.60-azure"],
              "no kernel-devel-5.14.21-150500.33.60.*.noarch.rpm listed: it holds /usr/src/linux-5.14.21-150500.33.60, "
              "the source tree kernel-azure-devel builds over");
    std::map<std::string, std::string> unclaimed;
    for (const auto& u : result["unclaimed"]) unclaimed[u["file"]] = u["reason"];
    EXPECT_EQ(unclaimed.size(), 2u) << result["unclaimed"].dump(1);
    EXPECT_EQ(unclaimed[base + "noarch/kernel-devel-5.14.21-150500.55.62.1.noarch.rpm"],
              "part of a kernel's tree, and no kernel listed here uses it");
    EXPECT_EQ(unclaimed[base + "x86_64/kernel-default-5.14.21-150500.55.65.1.x86_64.rpm"],
              "kernel-default is not a kernel-devel package");

    // --latest: the newest by rpm's order of version-release, whatever the flavour.
    test::TempDir dir;
    test::write_file(dir / "list.txt", base + "x86_64/kernel-default-devel-5.14.21-150500.55.9.1.x86_64.rpm\n" + base +
                                           "noarch/kernel-devel-5.14.21-150500.55.9.1.noarch.rpm\n" + base +
                                           "x86_64/kernel-default-devel-5.14.21-150500.55.10.1.x86_64.rpm\n" + base +
                                           "noarch/kernel-devel-5.14.21-150500.55.10.1.noarch.rpm\n");
    const Json latest =
        test::batch_json({"--distro", "sles", "--from-list", (dir / "list.txt").string(), "--latest", "1"});
    ASSERT_EQ(latest["entries"].size(), 1u) << latest.dump(1);
    EXPECT_EQ(latest["entries"][0]["kernelrelease"], "5.14.21-150500.55.10-default");
}

TEST(RpmFamilyNames, PhotonFlavoursAndAlibabaCloudLinux) {
    const std::string repo = "https://packages.vmware.com/photon/5.0/photon_updates_5.0_x86_64/x86_64/";
    const Json photon = batch_lines(
        "photon", {repo + "linux-devel-6.1.83-6.ph5.x86_64.rpm", repo + "linux-esx-devel-6.1.83-6.ph5.x86_64.rpm",
                   repo + "linux-rt-devel-6.1.83-6.ph5.x86_64.rpm", repo + "linux-secure-devel-6.1.83-6.ph5.x86_64.rpm",
                   repo + "linux-6.1.83-6.ph5.x86_64.rpm"});
    const auto releases = releases_of(photon);
    EXPECT_EQ(releases.size(), 4u);
    for (const std::string release : {"6.1.83-6.ph5", "6.1.83-6.ph5-esx", "6.1.83-6.ph5-rt", "6.1.83-6.ph5-secure"})
        EXPECT_TRUE(releases.count(release)) << release;
    EXPECT_EQ(releases.at("6.1.83-6.ph5-esx"),
              (std::vector<std::string>{repo + "linux-esx-devel-6.1.83-6.ph5.x86_64.rpm"}));
    for (const auto& e : photon["entries"]) EXPECT_EQ(e["target"], "photon");
    ASSERT_EQ(photon["unclaimed"].size(), 1u);
    EXPECT_EQ(photon["unclaimed"][0]["reason"], "linux is not a kernel-devel package");

    const std::string alinux = "http://mirrors.aliyun.com/alinux/";
    const Json ali =
        batch_lines("alinux", {alinux + "3/updates/x86_64/Packages/kernel-devel-5.10.134-16.3.al8.x86_64.rpm",
                               alinux + "2.1903/plus/x86_64/Packages/kernel-devel-4.19.91-27.al7.x86_64.rpm"});
    const auto ali_releases = releases_of(ali);
    EXPECT_EQ(ali_releases.size(), 2u);
    EXPECT_TRUE(ali_releases.count("5.10.134-16.3.al8.x86_64"));
    EXPECT_TRUE(ali_releases.count("4.19.91-27.al7.x86_64"));
}

TEST(RpmFamilyNames, PluginsListTheNewDistros) {
    const ProcessResult plugins = test::run_kbuild({"plugins"});
    ASSERT_EQ(plugins.exit_code, 0) << plugins.err;
    for (const std::string line : {"suse", "sles", "opensuse", "photon", "alinux"})
        EXPECT_NE(plugins.out.find(line), std::string::npos) << line << "\n" << plugins.out;
}

}  // namespace
