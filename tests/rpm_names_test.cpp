// The centos and amazonlinux plugins' naming on real file names: every URL StackRox's
// kernel-packer crawled for CentOS, RHEL, Oracle UEK, Fedora CoreOS and Amazon Linux, grouped
// by `kbuild batch --from-list` as a user would run it. Nothing is fetched.
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::vector<fs::path> lists_named(const std::vector<std::string>& prefixes) {
    std::vector<fs::path> lists;
    for (const auto& entry : fs::directory_iterator(test::kernel_packer_lists())) {
        const std::string name = entry.path().filename().string();
        for (const auto& prefix : prefixes)
            if (name.rfind(prefix, 0) == 0 && entry.path().extension() == ".txt") lists.push_back(entry.path());
    }
    std::sort(lists.begin(), lists.end());
    return lists;
}

Json batch(const std::string& distro, const fs::path& list) {
    const ProcessResult r =
        test::run_kbuild({"batch", "--distro", distro, "--from-list", list.string(), "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out);
}

// Every line lands in exactly one place: a release or the unclaimed files, with a reason.
void expect_every_line_placed(const fs::path& list, const Json& result) {
    std::multiset<std::string> placed;
    for (const auto& e : result["entries"])
        for (const auto& h : e["headers"]) placed.insert(h.get<std::string>());
    for (const auto& u : result["unclaimed"]) placed.insert(u["file"].get<std::string>());
    const auto lines = test::list_lines(list);
    std::multiset<std::string> given(lines.begin(), lines.end());
    for (const auto& line : given) EXPECT_EQ(placed.count(line), given.count(line)) << list << ": " << line;
    EXPECT_EQ(placed.size(), given.size()) << list;
    EXPECT_TRUE(result["errors"].empty()) << result["errors"];
}

TEST(RpmNames, EveryListedFileIsPlacedAndNamedFilesBecomeReleases) {
    size_t lines = 0, releases = 0;
    const std::vector<std::pair<std::string, std::vector<std::string>>> families = {
        {"centos", {"centos", "rhel", "oracle-uek", "fedora-coreos"}}, {"amazonlinux2", {"amazon"}}};
    for (const auto& [distro, prefixes] : families) {
        const auto lists = lists_named(prefixes);
        ASSERT_FALSE(lists.empty());
        for (const auto& list : lists) {
            const Json result = batch(distro, list);
            expect_every_line_placed(list, result);
            lines += test::list_lines(list).size();
            releases += result["entries"].size();
            for (const auto& e : result["entries"]) {
                // One package, whose file name is the release's: <name>-<release>.rpm.
                ASSERT_EQ(e["headers"].size(), 1u);
                const std::string file = fs::path(e["headers"][0].get<std::string>()).filename().string();
                const std::string release = e["kernelrelease"];
                EXPECT_EQ(file.substr(file.size() - release.size() - 4), release + ".rpm") << file;
                EXPECT_EQ(e["kernelversion"], "1");
                EXPECT_EQ(e["target"], distro);
            }
            // A line that names no rpm (Red Hat's opaque download URLs) or repeats one is
            // said to be so; nothing is left without a reason.
            for (const auto& u : result["unclaimed"]) {
                const std::string reason = u["reason"];
                EXPECT_TRUE(reason == "names no name-version-release.arch.rpm file" ||
                            reason == "listed more than once" || reason.rfind("the same package as ", 0) == 0)
                    << u.dump();
            }
        }
    }
    EXPECT_GE(lines, 3000u);
    EXPECT_GE(releases, 2300u);
}

struct Case {
    std::string distro;
    std::string file;     // as a list or a repository names it
    std::string release;  // uname -r
};

// Checked by hand: the rpm's version-release.arch is `uname -r`, whatever the package's name
// (kernel-devel, kernel-rt-devel, kernel-uek-devel, ELRepo's kernel-lt-devel).
const std::vector<Case> kCases = {
    {"centos", "kernel-devel-3.10.0-1127.8.2.el7.x86_64.rpm", "3.10.0-1127.8.2.el7.x86_64"},
    {"centos", "kernel-devel-3.10.0-1160.el7.x86_64.rpm", "3.10.0-1160.el7.x86_64"},
    {"centos", "kernel-devel-3.10.0-1127.19.1.el7.x86_64.rpm", "3.10.0-1127.19.1.el7.x86_64"},
    {"centos", "kernel-devel-4.9.44-29.el7.x86_64.rpm", "4.9.44-29.el7.x86_64"},
    {"centos", "kernel-lt-devel-5.4.250-1.el7.elrepo.x86_64.rpm", "5.4.250-1.el7.elrepo.x86_64"},
    {"centos", "kernel-lt-devel-4.4.150-1.el7.elrepo.x86_64.rpm", "4.4.150-1.el7.elrepo.x86_64"},
    {"centos", "kernel-devel-3.10.0-123.13.1.el7.x86_64.rpm", "3.10.0-123.13.1.el7.x86_64"},
    {"centos", "kernel-devel-3.10.0-862.14.4.el7.x86_64.rpm", "3.10.0-862.14.4.el7.x86_64"},
    {"centos", "kernel-devel-4.18.0-513.5.1.el8_9.x86_64.rpm", "4.18.0-513.5.1.el8_9.x86_64"},
    {"centos", "kernel-devel-4.18.0-305.25.1.el8_4.x86_64.rpm", "4.18.0-305.25.1.el8_4.x86_64"},
    {"centos", "kernel-devel-4.18.0-240.el8.x86_64.rpm", "4.18.0-240.el8.x86_64"},
    {"centos", "kernel-devel-4.18.0-526.el8.x86_64.rpm", "4.18.0-526.el8.x86_64"},
    {"centos", "kernel-uek-devel-4.14.35-1902.306.2.el7uek.x86_64.rpm", "4.14.35-1902.306.2.el7uek.x86_64"},
    {"centos", "kernel-rt-devel-4.18.0-372.93.1.rt7.253.el8_6.x86_64.rpm", "4.18.0-372.93.1.rt7.253.el8_6.x86_64"},
    {"centos", "kernel-rt-devel-5.14.0-284.16.1.rt14.301.el9_2.x86_64.rpm", "5.14.0-284.16.1.rt14.301.el9_2.x86_64"},
    {"centos", "kernel-devel-5.14.0-284.10.1.el9_2.x86_64.rpm", "5.14.0-284.10.1.el9_2.x86_64"},
    {"centos", "kernel-devel-4.18.0-240.23.2.el8_3.x86_64.rpm", "4.18.0-240.23.2.el8_3.x86_64"},
    {"centos", "kernel-uek-devel-5.4.17-2136.332.5.2.el7uek.x86_64.rpm", "5.4.17-2136.332.5.2.el7uek.x86_64"},
    {"centos", "kernel-uek-devel-4.14.35-2047.504.1.el7uek.x86_64.rpm", "4.14.35-2047.504.1.el7uek.x86_64"},
    {"centos", "kernel-uek-devel-5.4.17-2011.1.2.el7uek.x86_64.rpm", "5.4.17-2011.1.2.el7uek.x86_64"},
    {"centos", "kernel-devel-5.10.15-100.fc32.x86_64.rpm", "5.10.15-100.fc32.x86_64"},
    {"centos", "kernel-devel-5.15.13-200.fc35.x86_64.rpm", "5.15.13-200.fc35.x86_64"},
    {"centos", "kernel-devel-6.8.3-300.fc40.x86_64.rpm", "6.8.3-300.fc40.x86_64"},
    {"centos", "kernel-devel-6.9.7-200.fc40.x86_64.rpm", "6.9.7-200.fc40.x86_64"},
    {"centos", "kernel-devel-6.6.3-200.fc39.x86_64.rpm", "6.6.3-200.fc39.x86_64"},
    {"amazonlinux2", "kernel-devel-4.14.47-64.38.amzn2.x86_64.rpm", "4.14.47-64.38.amzn2.x86_64"},
    {"amazonlinux2", "kernel-devel-4.14.343-259.562.amzn2.x86_64.rpm", "4.14.343-259.562.amzn2.x86_64"},
    {"amazonlinux2", "kernel-devel-5.10.179-171.711.amzn2.x86_64.rpm", "5.10.179-171.711.amzn2.x86_64"},
    {"amazonlinux2", "kernel-devel-5.10.50-44.131.amzn2.x86_64.rpm", "5.10.50-44.131.amzn2.x86_64"},
    {"amazonlinux2", "kernel-devel-5.4.242-155.348.amzn2.x86_64.rpm", "5.4.242-155.348.amzn2.x86_64"},
    {"amazonlinux2", "kernel-devel-5.4.231-137.341.amzn2.x86_64.rpm", "5.4.231-137.341.amzn2.x86_64"},
};

TEST(RpmNames, HandCheckedReleases) {
    ASSERT_GE(kCases.size(), 31u);
    std::map<std::string, std::map<std::string, Json>> by_file;  // distro -> file name -> entry
    for (const std::string distro : {"centos", "amazonlinux2"}) {
        const auto prefixes = distro == "centos"
                                  ? std::vector<std::string>{"centos", "rhel", "oracle-uek", "fedora-coreos"}
                                  : std::vector<std::string>{"amazon"};
        test::TempDir dir;
        std::string all;
        for (const auto& list : lists_named(prefixes))
            for (const auto& line : test::list_lines(list)) all += line + "\n";
        std::ofstream(dir / "all.txt") << all;
        const Json result = batch(distro, dir / "all.txt");  // kept: the loop points into it
        for (const auto& e : result["entries"])
            by_file[distro][fs::path(e["headers"][0].get<std::string>()).filename().string()] = e;
    }
    for (const auto& c : kCases) {
        const auto it = by_file[c.distro].find(c.file);
        ASSERT_NE(it, by_file[c.distro].end()) << c.file;
        EXPECT_EQ(it->second["kernelrelease"], c.release) << c.file;
    }
}

// Names the lists do not hold, in the forms Amazon Linux 1 and 2023 and the extras topics
// use, and URL-escaped characters.
TEST(RpmNames, AmazonLinuxGenerationsAndEscapedNames) {
    test::TempDir dir;
    std::ofstream(dir / "list.txt")
        << "https://mirror.example/blobstore/ab/kernel-devel-4.14.355-196.280.amzn1.x86_64.rpm\n"
           "https://mirror.example/blobstore/cd/kernel-devel-6.1.61-85.141.amzn2023.x86_64.rpm\n"
           "https://mirror.example/blobstore/ef/kernel-devel-6.1.61-85.141.amzn2023.aarch64.rpm\n"
           "https://mirror.example/2/extras/kernel5.10-devel-5.10.210-201.852.amzn2.x86_64.rpm\n"
           "https://mirror.example/x/kernel-devel-5.14.0-1%5Egit1.el9.x86_64.rpm\n"
           "https://mirror.example/x/kernel-headers-6.1.61-85.141.amzn2023.x86_64.rpm\n";
    const Json result = batch("amazonlinux2023", dir / "list.txt");
    std::set<std::string> releases;
    for (const auto& e : result["entries"]) releases.insert(e["kernelrelease"].get<std::string>());
    EXPECT_EQ(releases, (std::set<std::string>{"4.14.355-196.280.amzn1.x86_64", "6.1.61-85.141.amzn2023.x86_64",
                                               "5.10.210-201.852.amzn2.x86_64", "5.14.0-1^git1.el9.x86_64"}));
    // Another architecture's package and a package that is not a build tree are named.
    ASSERT_EQ(result["unclaimed"].size(), 2u) << result["unclaimed"].dump(1);
    EXPECT_EQ(result["unclaimed"][0]["reason"], "an aarch64 package, not amd64's x86_64");
    EXPECT_EQ(result["unclaimed"][1]["reason"], "kernel-headers is not a kernel-devel package");
}

}  // namespace

namespace {

// Local rpms are known by their headers, not their names; one cut short is an error naming
// it, and the others are still grouped.
TEST(RpmNames, LocalRpmsAreGroupedByTheirHeaders) {
    test::TempDir dir;
    const fs::path data = test::source_dir() / "tests/fixtures/rpm-data";
    fs::copy_file(data / "kernel-devel-5.14.0-284.11.1.el9_2.x86_64.rpm", dir / "renamed.rpm");
    fs::copy_file(data / "kbuild-fixture-tools-1.0^20240101git1f2e3d-3.fc40.noarch.rpm", dir / "tools.rpm");
    const std::string rpm = test::read_file(dir / "renamed.rpm");
    test::write_file(dir / "cut.rpm", rpm.substr(0, 200));
    const ProcessResult r =
        test::run_kbuild({"batch", "--distro", "centos", (dir / "renamed.rpm").string(), (dir / "tools.rpm").string(),
                          (dir / "cut.rpm").string(), "--output", "json"});
    EXPECT_EQ(r.exit_code, 1);  // one file could not be read
    EXPECT_NE(r.err.find("error: " + (dir / "cut.rpm").string() + ": "), std::string::npos) << r.err;
    const Json result = Json::parse(r.out);
    ASSERT_EQ(result["entries"].size(), 1u);
    EXPECT_EQ(result["entries"][0]["kernelrelease"], "5.14.0-284.11.1.el9_2.x86_64");
    EXPECT_EQ(result["entries"][0]["headers"][0], (dir / "renamed.rpm").string());
    ASSERT_EQ(result["unclaimed"].size(), 1u);
    EXPECT_EQ(result["unclaimed"][0]["reason"], "kbuild-fixture-tools is not a kernel-devel package");
}

}  // namespace
