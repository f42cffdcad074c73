// The coreos plugin's naming on real file names: every developer-container image and
// kernel-devel rpm StackRox's kernel-packer listed for Flatcar (stable, beta), CoreOS Container
// Linux and Fedora CoreOS, grouped by `kbuild batch --from-list` as a user would run it; and
// local images named by what lies beside them. Nothing is fetched.
#include "test_util.h"

#include <kbuild/listing.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

fs::path list_named(const std::string& name) {
    return test::kernel_packer_lists() / name;
}

// What each release of a list is: the line's release id -> the entry.
std::map<std::string, Json> entries_by_file(const Json& result) {
    std::map<std::string, Json> by_file;
    for (const auto& e : result["entries"]) by_file[e["headers"][0].get<std::string>()] = e;
    return by_file;
}

// Index pages as servers write them: Apache's (Fedora's build system: sort links, icons,
// the parent), nginx's autoindex (release servers) and a lighttpd table.
TEST(DirectoryEntries, IndexPagesOfApacheNginxAndLighttpd) {
    const std::string apache =
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html><head><title>Index of "
        "/packages/kernel</title></head><body><h1>Index of /packages/kernel</h1><pre><img src=\"/icons/blank.gif\" "
        "alt=\"Icon \"> <a href=\"?C=N;O=D\">Name</a> <a href=\"?C=M;O=A\">Last modified</a><hr>"
        "<img src=\"/icons/back.gif\" alt=\"[PARENTDIR]\"> <a href=\"/packages/\">Parent Directory</a>\n"
        "<img src=\"/icons/folder.gif\" alt=\"[DIR]\"> <a href=\"6.9.1/\">6.9.1/</a>  2024-05-17 12:00 -\n"
        "<img src=\"/icons/folder.gif\" alt=\"[DIR]\"> <a HREF='6.10.0%2Brc1/'>6.10.0+rc1/</a>\n"
        "<a href=\"https://example.org/elsewhere/\">x</a> <a href=\"6.9.1/\">again</a></pre></body></html>\n";
    EXPECT_EQ(directory_entries(apache), (std::vector<std::string>{"6.9.1/", "6.10.0+rc1/"}));
    const std::string nginx =
        "<html>\r\n<head><title>Index of /amd64-usr/</title></head>\r\n<body>\r\n<h1>Index of /amd64-usr/</h1>"
        "<hr><pre><a href=\"../\">../</a>\r\n<a href=\"3510.2.0/\">3510.2.0/</a>    08-Mar-2023 13:03    -\r\n"
        "<a href=\"current/\">current/</a>\r\n<a href=\"version.txt\">version.txt</a>  154\r\n</pre><hr></body>";
    EXPECT_EQ(directory_entries(nginx), (std::vector<std::string>{"3510.2.0/", "current/", "version.txt"}));
    const std::string lighttpd =
        "<table><tr><td class=\"n\"><a href=\"./a%20b.rpm\">a b.rpm</a></td></tr>"
        "<tr><td><a href=../sub/x>up</a><a href=sub/>sub/</a><a href=\"deep/er/\">no</a></td></tr></table>";
    EXPECT_EQ(directory_entries(lighttpd), (std::vector<std::string>{"a b.rpm", "sub/"}));
}

TEST(CoreOSNames, EveryListedImageAndRpmIsARelease) {
    const std::vector<std::pair<std::string, std::string>> lists = {{"flatcar", "flatcar.txt"},
                                                                    {"flatcar", "flatcar-beta.txt"},
                                                                    {"coreos", "coreos-eol.txt"},
                                                                    {"fedora-coreos", "fedora-coreos.txt"}};
    size_t total = 0;
    for (const auto& [distro, name] : lists) {
        const auto lines = test::list_lines(list_named(name));
        const Json result = test::batch_json({"--distro", distro, "--from-list", list_named(name).string()});
        EXPECT_TRUE(result["unclaimed"].empty()) << name << ": " << result["unclaimed"].dump(1);
        EXPECT_TRUE(result["errors"].empty()) << result["errors"];
        const auto by_file = entries_by_file(result);
        EXPECT_EQ(by_file.size(), lines.size()) << name;
        for (const auto& line : lines) {
            ASSERT_TRUE(by_file.count(line)) << name << ": " << line;
            const Json& e = by_file.at(line);
            EXPECT_EQ(e["target"], distro);
            EXPECT_EQ(e["kernelversion"], "1");
            if (distro == "fedora-coreos") {
                // kernel-devel-<release>.rpm, in packages/kernel/<version>/<release>/<arch>/.
                const std::string release = e["kernelrelease"];
                EXPECT_EQ(line.substr(line.size() - release.size() - 4), release + ".rpm") << line;
                EXPECT_FALSE(e.contains("variant"));
            } else {
                // The version directory names the release; its kernel is read from the image.
                EXPECT_EQ(e["kernelrelease"], "");
                EXPECT_EQ(fs::path(line).parent_path().filename().string(), e["variant"].get<std::string>());
            }
        }
        total += lines.size();
    }
    EXPECT_EQ(total, 91u + 69u + 71u + 608u);
}

TEST(CoreOSNames, HandCheckedReleases) {
    struct Case {
        std::string distro, url, release, variant;
    };
    const std::string flatcar = "https://stable.release.flatcar-linux.net/amd64-usr/";
    const std::string beta = "https://beta.release.flatcar-linux.net/amd64-usr/";
    const std::string coreos = "http://stable.release.core-os.net/amd64-usr/";
    const std::string koji = "https://kojipkgs.fedoraproject.org/packages/kernel/";
    const std::vector<Case> cases = {
        {"flatcar", flatcar + "2605.10.0/flatcar_developer_container.bin.bz2", "", "2605.10.0"},
        {"flatcar", flatcar + "3510.2.0/flatcar_developer_container.bin.bz2", "", "3510.2.0"},
        {"flatcar", flatcar + "3602.2.0/flatcar_developer_container.bin.bz2", "", "3602.2.0"},
        {"flatcar", flatcar + "3760.2.0/flatcar_developer_container.bin.bz2", "", "3760.2.0"},
        {"flatcar", flatcar + "3815.2.5/flatcar_developer_container.bin.bz2", "", "3815.2.5"},
        {"flatcar", beta + "2801.1.0/flatcar_developer_container.bin.bz2", "", "2801.1.0"},
        {"flatcar", beta + "2920.1.0/flatcar_developer_container.bin.bz2", "", "2920.1.0"},
        {"flatcar", beta + "3510.1.0/flatcar_developer_container.bin.bz2", "", "3510.1.0"},
        {"flatcar", beta + "3760.1.0/flatcar_developer_container.bin.bz2", "", "3760.1.0"},
        {"flatcar", beta + "3850.1.0/flatcar_developer_container.bin.bz2", "", "3850.1.0"},
        {"coreos", coreos + "1185.3.0/coreos_developer_container.bin.bz2", "", "1185.3.0"},
        {"coreos", coreos + "1235.12.0/coreos_developer_container.bin.bz2", "", "1235.12.0"},
        {"coreos", coreos + "1409.2.0/coreos_developer_container.bin.bz2", "", "1409.2.0"},
        {"coreos", coreos + "1911.3.0/coreos_developer_container.bin.bz2", "", "1911.3.0"},
        {"coreos", coreos + "2512.3.0/coreos_developer_container.bin.bz2", "", "2512.3.0"},
        {"fedora-coreos", koji + "5.8.10/100.fc31/x86_64/kernel-devel-5.8.10-100.fc31.x86_64.rpm",
         "5.8.10-100.fc31.x86_64", ""},
        {"fedora-coreos", koji + "5.14.18/100.fc33/x86_64/kernel-devel-5.14.18-100.fc33.x86_64.rpm",
         "5.14.18-100.fc33.x86_64", ""},
        {"fedora-coreos", koji + "5.15.10/200.fc35/x86_64/kernel-devel-5.15.10-200.fc35.x86_64.rpm",
         "5.15.10-200.fc35.x86_64", ""},
        {"fedora-coreos", koji + "6.5.5/300.fc39/x86_64/kernel-devel-6.5.5-300.fc39.x86_64.rpm",
         "6.5.5-300.fc39.x86_64", ""},
        {"fedora-coreos", koji + "6.8.3/100.fc38/x86_64/kernel-devel-6.8.3-100.fc38.x86_64.rpm",
         "6.8.3-100.fc38.x86_64", ""},
        {"fedora-coreos", koji + "6.9.1/200.fc40/x86_64/kernel-devel-6.9.1-200.fc40.x86_64.rpm",
         "6.9.1-200.fc40.x86_64", ""},
        {"fedora-coreos", koji + "6.8.0/63.fc41/x86_64/kernel-devel-6.8.0-63.fc41.x86_64.rpm", "6.8.0-63.fc41.x86_64",
         ""},
    };
    test::TempDir dir;
    std::map<std::string, std::string> lists;
    for (const auto& c : cases) lists[c.distro] += c.url + "\n";
    std::map<std::string, std::map<std::string, Json>> found;
    for (const auto& [distro, text] : lists) {
        test::write_file(dir / distro, text);
        found[distro] = entries_by_file(test::batch_json({"--distro", distro, "--from-list", (dir / distro).string()}));
    }
    for (const auto& c : cases) {
        ASSERT_TRUE(found[c.distro].count(c.url)) << c.url;
        const Json& e = found[c.distro][c.url];
        EXPECT_EQ(e["kernelrelease"], c.release) << c.url;
        EXPECT_EQ(e.value("variant", ""), c.variant) << c.url;
        EXPECT_EQ(e["target"], c.distro) << c.url;
    }
}

TEST(CoreOSNames, ImagesOfAnotherFlavourOrBoardAreNamedAsSuch) {
    test::TempDir dir;
    const std::string base = "https://stable.release.flatcar-linux.net/";
    test::write_file(dir / "list",
                     base + "amd64-usr/3510.2.0/flatcar_developer_container.bin.bz2\n" + base +
                         "arm64-usr/3510.2.0/flatcar_developer_container.bin.bz2\n" +
                         "http://stable.release.core-os.net/amd64-usr/2512.3.0/coreos_developer_container.bin.bz2\n" +
                         base + "amd64-usr/current/flatcar_developer_container.bin.bz2\n" + base +
                         "amd64-usr/3510.2.0/flatcar_production_image.bin.bz2\n" + base +
                         "amd64-usr/3510.2.0/../3510.2.0/flatcar_developer_container.bin.bz2\n");
    const Json result = test::batch_json({"--distro", "flatcar", "--from-list", (dir / "list").string()});
    ASSERT_EQ(result["entries"].size(), 1u);
    std::map<std::string, std::string> why;
    for (const auto& u : result["unclaimed"]) why[u["file"]] = u["reason"];
    EXPECT_EQ(why[base + "arm64-usr/3510.2.0/flatcar_developer_container.bin.bz2"],
              "an arm64-usr image, not amd64's amd64-usr");
    EXPECT_EQ(why["http://stable.release.core-os.net/amd64-usr/2512.3.0/coreos_developer_container.bin.bz2"],
              "a CoreOS Container Linux image, not Flatcar's");
    EXPECT_EQ(why[base + "amd64-usr/current/flatcar_developer_container.bin.bz2"],
              "names no version: neither its path (<board>/<version>/) nor a version.txt beside it");
    EXPECT_EQ(why[base + "amd64-usr/3510.2.0/flatcar_production_image.bin.bz2"],
              "not a developer container image (flatcar_developer_container.bin.bz2)");
    EXPECT_EQ(why[base + "amd64-usr/3510.2.0/../3510.2.0/flatcar_developer_container.bin.bz2"],
              "the same release as " + base + "amd64-usr/3510.2.0/flatcar_developer_container.bin.bz2");
}

TEST(CoreOSNames, WithArchArm64TheArm64UsrBoardIsTaken) {
    test::TempDir dir;
    const std::string base = "https://stable.release.flatcar-linux.net/";
    test::write_file(dir / "list", base + "amd64-usr/3510.2.0/flatcar_developer_container.bin.bz2\n" + base +
                                       "arm64-usr/3510.2.0/flatcar_developer_container.bin.bz2\n");
    const Json result =
        test::batch_json({"--distro", "flatcar", "--arch", "arm64", "--from-list", (dir / "list").string()});
    ASSERT_EQ(result["entries"].size(), 1u) << result.dump(2);
    EXPECT_EQ(result["entries"][0]["arch"], "arm64");
    EXPECT_EQ(result["entries"][0]["headers"][0], base + "arm64-usr/3510.2.0/flatcar_developer_container.bin.bz2");
    ASSERT_EQ(result["unclaimed"].size(), 1u);
    EXPECT_EQ(result["unclaimed"][0]["reason"], "an amd64-usr image, not arm64's arm64-usr");
}

// A downloaded image in a directory of its own: version.txt names the release and the kernel
// config beside it names the kernel, so the release is complete before anything is unpacked.
TEST(CoreOSNames, ALocalImageIsNamedByTheFilesBesideIt) {
    test::TempDir dir;
    test::write_file(dir / "dl/flatcar_developer_container.bin.bz2", "not read by batch");
    test::write_file(dir / "dl/version.txt",
                     "FLATCAR_BUILD=3815\nFLATCAR_BRANCH=2\nFLATCAR_PATCH=5\n"
                     "FLATCAR_VERSION=3815.2.5\nFLATCAR_VERSION_ID=3815.2.5\n");
    test::write_file(
        dir / "dl/flatcar_production_image_kernel_config.txt",
        "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.96 Kernel Configuration\n#\n"
        "CONFIG_CC_VERSION_TEXT=\"x86_64-cros-linux-gnu-gcc (Gentoo Hardened 13.3.1_p20240614 p17) 13.3.1 20240614\"\n"
        "CONFIG_LOCALVERSION=\"-flatcar\"\n# CONFIG_LOCALVERSION_AUTO is not set\n");
    const Json result =
        test::batch_json({"--distro", "flatcar", (dir / "dl/flatcar_developer_container.bin.bz2").string()});
    ASSERT_EQ(result["entries"].size(), 1u) << result.dump(1);
    EXPECT_EQ(result["entries"][0]["kernelrelease"], "6.1.96-flatcar");
    EXPECT_EQ(result["entries"][0]["variant"], "3815.2.5");
    EXPECT_EQ(result["releases"].begin().key(), "6.1.96-flatcar~3815.2.5");
}

}  // namespace
