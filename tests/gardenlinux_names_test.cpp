// The gardenlinux plugin's naming on real file names: every URL StackRox's kernel-packer listed
// for Garden Linux (tests/data/kernel-packer/gardenlinux.txt and gardenlinux-uncrawled.txt),
// grouped by `kbuild batch --from-list` as a user would run it. Nothing is fetched: the lists'
// hosts are not reachable.
//
// The lists hold 11 uploads of 5.10 and 5.15 (gardenlinux.txt, 44 lines) and 7 more with two of
// Debian's own 5.4 kernels (gardenlinux-uncrawled.txt, 30 lines). Each Garden Linux upload is
// four files: the amd64 and cloud-amd64 flavours' headers, the common package they share and
// linux-kbuild-<series>; each Debian one is three (cloud-amd64 alone).
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

fs::path list(const std::string& name) {
    return test::kernel_packer_lists() / name;
}

Json batch(const fs::path& file) {
    return test::batch_json({"--distro", "gardenlinux", "--from-list", file.string()});
}

// A list of lines in a temporary directory, batched.
Json batch_lines(const std::vector<std::string>& lines) {
    test::TempDir dir;
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    test::write_file(dir / "list.txt", text);
    return batch(dir / "list.txt");
}

std::vector<std::string> both_lists() {
    auto lines = test::list_lines(list("gardenlinux.txt"));
    const auto more = test::list_lines(list("gardenlinux-uncrawled.txt"));
    lines.insert(lines.end(), more.begin(), more.end());
    return lines;
}

std::string file_name(const std::string& url) {
    return fs::path(url).filename().string();
}

// name_version_arch.deb -> version
std::string version_of(const std::string& url) {
    const std::string name = file_name(url);
    const size_t first = name.find('_'), last = name.rfind('_');
    return name.substr(first + 1, last - first - 1);
}

// Every line lands somewhere: in a release (the common and kbuild packages of an upload go into
// both its flavours' releases) or among the unclaimed files with a reason. Each flavour's headers
// package is the first package of exactly one release; every release is three packages of one
// upload: its headers, their common package and a linux-kbuild.
void expect_every_line_placed(const std::vector<std::string>& lines, const Json& result, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(result["errors"].empty()) << result["errors"];
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    std::map<std::string, int> in_releases, as_headers;
    for (const auto& e : result["entries"]) {
        ASSERT_EQ(e["headers"].size(), 3u) << e.dump(1);
        const std::string release = e["kernelrelease"];
        const std::string headers = e["headers"][0], common = e["headers"][1], kbuild = e["headers"][2];
        EXPECT_EQ(file_name(headers).rfind("linux-headers-" + release + "_", 0), 0u) << headers;
        EXPECT_TRUE(std::regex_match(file_name(common), std::regex(R"(linux-headers-[0-9.]+-[a-z0-9-]*common_.*)")))
            << common;
        EXPECT_EQ(file_name(kbuild).rfind("linux-kbuild-", 0), 0u) << kbuild;
        EXPECT_EQ(version_of(common), version_of(headers)) << e.dump(1);
        EXPECT_EQ(version_of(kbuild), version_of(headers)) << e.dump(1);
        EXPECT_EQ(fs::path(common).parent_path(), fs::path(headers).parent_path());
        EXPECT_EQ(e["kernelversion"], "1");
        EXPECT_EQ(e["target"], "gardenlinux");
        as_headers[headers]++;
        for (const auto& h : e["headers"]) in_releases[h.get<std::string>()]++;
    }
    std::set<std::string> unclaimed;
    for (const auto& u : result["unclaimed"]) {
        unclaimed.insert(u["file"].get<std::string>());
        EXPECT_FALSE(u["reason"].get<std::string>().empty()) << u.dump();
    }
    for (const auto& line : lines) {
        const bool headers = std::regex_search(file_name(line), std::regex(R"(-amd64_)")) &&
                             file_name(line).rfind("linux-headers-", 0) == 0;
        EXPECT_TRUE(in_releases.count(line) || unclaimed.count(line)) << "not placed: " << line;
        if (headers) {
            EXPECT_EQ(as_headers[line], 1) << line;
        }
    }
    EXPECT_EQ(in_releases.size() + unclaimed.size(), std::set<std::string>(lines.begin(), lines.end()).size());
}

TEST(GardenLinuxNames, EveryListedFileIsPlacedInEachListAndInBoth) {
    const auto crawled = test::list_lines(list("gardenlinux.txt"));
    const auto uncrawled = test::list_lines(list("gardenlinux-uncrawled.txt"));
    ASSERT_EQ(crawled.size(), 44u);
    ASSERT_EQ(uncrawled.size(), 30u);

    const Json a = batch(list("gardenlinux.txt"));
    expect_every_line_placed(crawled, a, "gardenlinux.txt");
    EXPECT_EQ(a["entries"].size(), 22u);  // 11 uploads, amd64 and cloud-amd64 each
    EXPECT_TRUE(a["unclaimed"].empty()) << a["unclaimed"].dump(1);

    const Json b = batch(list("gardenlinux-uncrawled.txt"));
    expect_every_line_placed(uncrawled, b, "gardenlinux-uncrawled.txt");
    EXPECT_EQ(b["entries"].size(), 14u);  // 6 Garden Linux uploads x 2 flavours, 2 Debian kernels
    EXPECT_TRUE(b["unclaimed"].empty()) << b["unclaimed"].dump(1);

    const auto all = both_lists();
    const Json both = batch_lines(all);
    expect_every_line_placed(all, both, "both lists");
    EXPECT_EQ(both["entries"].size(), 36u);
    EXPECT_TRUE(both["unclaimed"].empty()) << both["unclaimed"].dump(1);
    // No release is in both lists: together they are the two lists' releases side by side.
    EXPECT_EQ(both["releases"].size(), 36u);
}

struct Case {
    std::string release;
    std::vector<std::string> files;  // headers, common, kbuild: lines of the lists
};

const std::string kPool = "http://repo.gardenlinux.io/gardenlinux/pool/main/l/";

// Checked by hand against the lists: each of the three namings (5.10's garden, 5.15's
// gardenlinux, 5.10.0 of a 5.10.93 upload), both flavours of one upload, and Debian's own
// kernels from a plain directory and from a snapshot archive.
const std::vector<Case> kCases = {
    {"5.15.114-gardenlinux-cloud-amd64",
     {kPool + "linux-5.15/linux-headers-5.15.114-gardenlinux-cloud-amd64_5.15.114-0gardenlinux3_amd64.deb",
      kPool + "linux-5.15/linux-headers-5.15.114-gardenlinux-common_5.15.114-0gardenlinux3_all.deb",
      kPool + "linux-5.15/linux-kbuild-5.15_5.15.114-0gardenlinux3_amd64.deb"}},
    {"5.15.114-gardenlinux-amd64",
     {kPool + "linux-5.15/linux-headers-5.15.114-gardenlinux-amd64_5.15.114-0gardenlinux3_amd64.deb",
      kPool + "linux-5.15/linux-headers-5.15.114-gardenlinux-common_5.15.114-0gardenlinux3_all.deb",
      kPool + "linux-5.15/linux-kbuild-5.15_5.15.114-0gardenlinux3_amd64.deb"}},
    {"5.15.103-gardenlinux-cloud-amd64",
     {kPool + "linux-5.15/linux-headers-5.15.103-gardenlinux-cloud-amd64_5.15.103-0gardenlinux2_amd64.deb",
      kPool + "linux-5.15/linux-headers-5.15.103-gardenlinux-common_5.15.103-0gardenlinux2_all.deb",
      kPool + "linux-5.15/linux-kbuild-5.15_5.15.103-0gardenlinux2_amd64.deb"}},
    {"5.15.77-gardenlinux-amd64",
     {kPool + "linux-5.15/linux-headers-5.15.77-gardenlinux-amd64_5.15.77-0gardenlinux1_amd64.deb",
      kPool + "linux-5.15/linux-headers-5.15.77-gardenlinux-common_5.15.77-0gardenlinux1_all.deb",
      kPool + "linux-5.15/linux-kbuild-5.15_5.15.77-0gardenlinux1_amd64.deb"}},
    {"5.10.141-garden-cloud-amd64",
     {kPool + "linux-5.10/linux-headers-5.10.141-garden-cloud-amd64_5.10.141-0gardenlinux1_amd64.deb",
      kPool + "linux-5.10/linux-headers-5.10.141-garden-common_5.10.141-0gardenlinux1_all.deb",
      kPool + "linux-5.10/linux-kbuild-5.10_5.10.141-0gardenlinux1_amd64.deb"}},
    {"5.10.109-garden-amd64",
     {kPool + "linux-5.10/linux-headers-5.10.109-garden-amd64_5.10.109-0gardenlinux2_amd64.deb",
      kPool + "linux-5.10/linux-headers-5.10.109-garden-common_5.10.109-0gardenlinux2_all.deb",
      kPool + "linux-5.10/linux-kbuild-5.10_5.10.109-0gardenlinux2_amd64.deb"}},
    {"5.10.0-garden-cloud-amd64",
     {kPool + "linux-5.10/linux-headers-5.10.0-garden-cloud-amd64_5.10.93-0gardenlinux1_amd64.deb",
      kPool + "linux-5.10/linux-headers-5.10.0-garden-common_5.10.93-0gardenlinux1_all.deb",
      kPool + "linux-5.10/linux-kbuild-5.10_5.10.93-0gardenlinux1_amd64.deb"}},
    {"5.4.0-5-cloud-amd64",
     {"http://18.185.215.86/packages/linux-headers-5.4.0-5-cloud-amd64_5.4.68-1_amd64.deb",
      "http://18.185.215.86/packages/linux-headers-5.4.0-5-common_5.4.68-1_all.deb",
      "http://18.185.215.86/packages/linux-kbuild-5.4_5.4.68-1_amd64.deb"}},
};

// The Debian snapshot's host is a placeholder in the list (SOURCE): its release is checked by
// file names.
const std::vector<std::string> kSnapshotFiles = {"linux-headers-5.4.0-4-cloud-amd64_5.4.19-1_amd64.deb",
                                                 "linux-headers-5.4.0-4-common_5.4.19-1_all.deb",
                                                 "linux-kbuild-5.4_5.4.19-1_amd64.deb"};

TEST(GardenLinuxNames, HandCheckedReleasesAndTheirPackages) {
    const Json result = batch_lines(both_lists());
    for (const auto& c : kCases) {
        SCOPED_TRACE(c.release);
        ASSERT_TRUE(result["releases"].contains(c.release));
        EXPECT_EQ(result["releases"][c.release], Json(c.files));
    }
    ASSERT_TRUE(result["releases"].contains("5.4.0-4-cloud-amd64"));
    std::vector<std::string> names;
    for (const auto& url : result["releases"]["5.4.0-4-cloud-amd64"]) names.push_back(file_name(url));
    EXPECT_EQ(names, kSnapshotFiles);
    for (const auto& e : result["entries"]) {
        if (e["kernelrelease"] != "5.15.114-gardenlinux-cloud-amd64") continue;
        ASSERT_EQ(e["packages"].size(), 3u);
        EXPECT_EQ(e["packages"][0]["name"], "linux-headers-5.15.114-gardenlinux-cloud-amd64");
        EXPECT_EQ(e["packages"][1]["name"], "linux-headers-5.15.114-gardenlinux-common");
        EXPECT_EQ(e["packages"][2]["name"], "linux-kbuild-5.15");
    }
}

// Without their URLs, the file names alone pair the same way: the rules read names, not paths.
TEST(GardenLinuxNames, BareFileNamesPairLikeURLs) {
    std::vector<std::string> names;
    for (const auto& line : both_lists()) names.push_back(file_name(line));
    const Json result = batch_lines(names);
    expect_every_line_placed(names, result, "file names");
    ASSERT_EQ(result["releases"].size(), 36u);
    for (const auto& c : kCases) {
        std::vector<std::string> expected;
        for (const auto& f : c.files) expected.push_back(file_name(f));
        EXPECT_EQ(result["releases"][c.release], Json(expected)) << c.release;
    }
}

// Newer Garden Linux (1443 and on) names its releases <upstream>-<flavour> and its kbuild
// package by the upstream version, and tags a backport built for an older Garden Linux with
// ~bp<version>: the names of 6.6.103's packages as Garden Linux 1592's release notes list them.
// Both builds of 6.6.103-cloud-amd64 are releases, the backport's variant its Garden Linux
// version; what is not a headers package, or is needed by none, is said to be so.
TEST(GardenLinuxNames, NewerNamingAndBackportsAreVariants) {
    const Json result = batch_lines({
        "linux-headers-6.6.103-cloud-amd64_6.6.103-0gl0~bp1592_amd64.deb",
        "linux-headers-6.6.103-amd64_6.6.103-0gl0~bp1592_amd64.deb",
        "linux-headers-6.6.103-common_6.6.103-0gl0~bp1592_all.deb",
        "linux-kbuild-6.6.103_6.6.103-0gl0~bp1592_amd64.deb",
        "linux-kbuild-6.6.103-dbgsym_6.6.103-0gl0~bp1592_amd64.deb",
        "linux-image-6.6.103-cloud-amd64_6.6.103-0gl0~bp1592_amd64.deb",
        "linux-headers-6.6.103-cloud-amd64_6.6.103-0gl0_amd64.deb",
        "linux-headers-6.6.103-common_6.6.103-0gl0_all.deb",
        "linux-kbuild-6.6.103_6.6.103-0gl0_amd64.deb",
    });
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    const Json expected = {
        {"6.6.103-cloud-amd64",
         {"linux-headers-6.6.103-cloud-amd64_6.6.103-0gl0_amd64.deb",
          "linux-headers-6.6.103-common_6.6.103-0gl0_all.deb", "linux-kbuild-6.6.103_6.6.103-0gl0_amd64.deb"}},
        {"6.6.103-cloud-amd64~1592",
         {"linux-headers-6.6.103-cloud-amd64_6.6.103-0gl0~bp1592_amd64.deb",
          "linux-headers-6.6.103-common_6.6.103-0gl0~bp1592_all.deb",
          "linux-kbuild-6.6.103_6.6.103-0gl0~bp1592_amd64.deb"}},
        {"6.6.103-amd64~1592",
         {"linux-headers-6.6.103-amd64_6.6.103-0gl0~bp1592_amd64.deb",
          "linux-headers-6.6.103-common_6.6.103-0gl0~bp1592_all.deb",
          "linux-kbuild-6.6.103_6.6.103-0gl0~bp1592_amd64.deb"}}};
    EXPECT_EQ(result["releases"], expected);
    for (const auto& e : result["entries"])
        EXPECT_EQ(e.value("variant", ""),
                  version_of(e["headers"][0]).find("bp1592") != std::string::npos ? "1592" : "");
    std::map<std::string, std::string> reasons;
    for (const auto& u : result["unclaimed"]) reasons[u["file"]] = u["reason"];
    EXPECT_EQ(reasons,
              (std::map<std::string, std::string>{{"linux-image-6.6.103-cloud-amd64_6.6.103-0gl0~bp1592_amd64.deb",
                                                   "linux-image-6.6.103-cloud-amd64 is not a kernel headers package"},
                                                  {"linux-kbuild-6.6.103-dbgsym_6.6.103-0gl0~bp1592_amd64.deb",
                                                   "no headers package in the batch needs it"}}));
}

// A headers package whose common package is not in the batch is a release that is unavailable,
// naming what it needs.
TEST(GardenLinuxNames, HeadersWithoutTheirCommonAreUnavailableNamingIt) {
    const Json result = batch_lines({
        "linux-headers-5.15.114-gardenlinux-cloud-amd64_5.15.114-0gardenlinux3_amd64.deb",
        "linux-kbuild-5.15_5.15.114-0gardenlinux3_amd64.deb",
    });
    const std::string reason =
        "linux-headers-5.15.114-gardenlinux-cloud-amd64 5.15.114-0gardenlinux3 needs "
        "linux-headers-5.15.114-gardenlinux-common (= 5.15.114-0gardenlinux3), which no index or list holds";
    ASSERT_EQ(result["entries"].size(), 1u) << result.dump(1);
    EXPECT_EQ(result["entries"][0]["unavailable"], reason);
    EXPECT_EQ(result["unavailable"], Json({{"5.15.114-gardenlinux-cloud-amd64", reason}}));
    EXPECT_TRUE(result["unclaimed"].empty()) << result.dump(1);
}

}  // namespace
