// The Ubuntu plugin's naming on real file names: every URL StackRox's kernel-packer crawled for
// Ubuntu (tests/data/kernel-packer/ubuntu-*.txt), grouped by `kbuild batch --from-list`
// as a user would run it. Nothing is fetched: the lists' hosts are not reachable.
#include "output/artifacts.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

std::vector<fs::path> ubuntu_lists() {
    std::vector<fs::path> lists;
    for (const auto& entry : fs::directory_iterator(test::kernel_packer_lists()))
        if (entry.path().filename().string().rfind("ubuntu-", 0) == 0) lists.push_back(entry.path());
    std::sort(lists.begin(), lists.end());
    return lists;
}

Json batch(const fs::path& list) {
    const ProcessResult r =
        test::run_kbuild({"batch", "--distro", "ubuntu", "--from-list", list.string(), "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out);
}

std::string pool_dir(const std::string& url) {
    return fs::path(url).parent_path().string();
}

// Every line of a list lands in exactly one place: a release's packages or the unclaimed
// files, each unclaimed one with a reason.
void expect_every_line_placed(const std::vector<std::string>& lines, const Json& result, const std::string& what) {
    std::multiset<std::string> placed;
    for (const auto& e : result["entries"])
        for (const auto& h : e["headers"]) placed.insert(h.get<std::string>());
    for (const auto& u : result["unclaimed"]) {
        placed.insert(u["file"].get<std::string>());
        EXPECT_FALSE(u["reason"].get<std::string>().empty()) << u["file"];
    }
    EXPECT_TRUE(result["errors"].empty()) << what << ": " << result["errors"];
    std::multiset<std::string> given(lines.begin(), lines.end());
    for (const auto& line : given) EXPECT_EQ(placed.count(line), given.count(line)) << what << ": " << line;
    EXPECT_EQ(placed.size(), given.size()) << what;
}

TEST(UbuntuNames, EveryListedFileIsPlacedAndEveryHeadersPackageFindsItsCommon) {
    std::vector<std::string> all;
    const auto lists = ubuntu_lists();
    ASSERT_GE(lists.size(), 12u);
    for (const auto& list : lists) {
        const auto lines = test::list_lines(list);
        all.insert(all.end(), lines.begin(), lines.end());
        expect_every_line_placed(lines, batch(list), list.filename().string());
    }
    EXPECT_GE(all.size(), 4800u);

    test::TempDir dir;
    std::ofstream(dir / "all.txt") << [&] {
        std::string text;
        for (const auto& line : all) text += line + "\n";
        return text;
    }();
    const Json result = batch(dir / "all.txt");
    expect_every_line_placed(all, result, "all lists");
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    EXPECT_GE(result["entries"].size(), 2400u);
    for (const auto& e : result["entries"]) {
        // The flavour's package, then its common package from the same source package.
        ASSERT_EQ(e["headers"].size(), 2u) << e.dump();
        const std::string headers = e["headers"][0], common = e["headers"][1];
        EXPECT_EQ(fs::path(headers).filename().string().rfind(
                      "linux-headers-" + e["kernelrelease"].get<std::string>() + "_", 0),
                  0u)
            << headers;
        EXPECT_EQ(pool_dir(headers), pool_dir(common)) << e.dump();
        EXPECT_FALSE(e["kernelversion"].get<std::string>().empty()) << e.dump();
    }
    // What is left over is a second copy or an older upload, named with the one taken.
    for (const auto& u : result["unclaimed"]) {
        const std::string reason = u["reason"];
        EXPECT_TRUE(reason.rfind("the same package as http", 0) == 0 ||
                    reason.rfind("an older upload than http", 0) == 0 || reason == "listed more than once")
            << u.dump();
    }
}

struct Case {
    std::string file;           // the headers package's file name, as the list has it
    std::string release;        // uname -r
    std::string kernelversion;  // what uname -v carries between '#' and "-Ubuntu"
    std::string target;         // Falco's loader's target: ubuntu-aws also for aws-fips
    std::string variant;        // a backport's tag
    std::string common;         // the common package's file name, without its _arch.deb
};

// Checked by hand against the lists and Ubuntu's naming: main kernels, derivatives, backports
// (~XX.04.1), FIPS, ESM (xenial's HWE and derivatives), universe and two uploads of one ABI.
const std::vector<Case> kCases = {
    {"linux-headers-4.15.0-2059-aws-fips_4.15.0-2059.61_amd64.deb", "4.15.0-2059-aws-fips", "61", "ubuntu-aws", "",
     "linux-aws-fips-headers-4.15.0-2059_4.15.0-2059.61"},
    {"linux-headers-4.15.0-2094-aws-fips_4.15.0-2094.100_amd64.deb", "4.15.0-2094-aws-fips", "100", "ubuntu-aws", "",
     "linux-aws-fips-headers-4.15.0-2094_4.15.0-2094.100"},
    {"linux-headers-5.15.0-1017-aws_5.15.0-1017.21~20.04.1_amd64.deb", "5.15.0-1017-aws", "21~20.04.1", "ubuntu-aws",
     "20.04.1", "linux-aws-5.15-headers-5.15.0-1017_5.15.0-1017.21~20.04.1"},
    {"linux-headers-4.4.0-1087-aws_4.4.0-1087.98_amd64.deb", "4.4.0-1087-aws", "98", "ubuntu-aws", "",
     "linux-aws-headers-4.4.0-1087_4.4.0-1087.98"},
    {"linux-headers-6.5.0-1008-aws_6.5.0-1008.8~22.04.1_amd64.deb", "6.5.0-1008-aws", "8~22.04.1", "ubuntu-aws",
     "22.04.1", "linux-aws-6.5-headers-6.5.0-1008_6.5.0-1008.8~22.04.1"},
    {"linux-headers-5.4.0-1092-aws_5.4.0-1092.100_amd64.deb", "5.4.0-1092-aws", "100", "ubuntu-aws", "",
     "linux-aws-headers-5.4.0-1092_5.4.0-1092.100"},
    {"linux-headers-4.4.0-1044-aws_4.4.0-1044.53_amd64.deb", "4.4.0-1044-aws", "53", "ubuntu-aws", "",
     "linux-aws-headers-4.4.0-1044_4.4.0-1044.53"},
    {"linux-headers-4.15.0-2050-azure-fips_4.15.0-2050.54_amd64.deb", "4.15.0-2050-azure-fips", "54", "ubuntu-azure",
     "", "linux-azure-fips-headers-4.15.0-2050_4.15.0-2050.54"},
    {"linux-headers-4.15.0-2009-azure-fips_4.15.0-2009.10_amd64.deb", "4.15.0-2009-azure-fips", "10", "ubuntu-azure",
     "", "linux-azure-fips-headers-4.15.0-2009_4.15.0-2009.10"},
    {"linux-headers-6.2.0-1018-azure_6.2.0-1018.18_amd64.deb", "6.2.0-1018-azure", "18", "ubuntu-azure", "",
     "linux-azure-headers-6.2.0-1018_6.2.0-1018.18"},
    {"linux-headers-6.5.0-1009-azure_6.5.0-1009.9~22.04.1_amd64.deb", "6.5.0-1009-azure", "9~22.04.1", "ubuntu-azure",
     "22.04.1", "linux-azure-6.5-headers-6.5.0-1009_6.5.0-1009.9~22.04.1"},
    {"linux-headers-5.11.0-1012-azure_5.11.0-1012.13~20.04.1_amd64.deb", "5.11.0-1012-azure", "13~20.04.1",
     "ubuntu-azure", "20.04.1", "linux-azure-5.11-headers-5.11.0-1012_5.11.0-1012.13~20.04.1"},
    {"linux-headers-4.15.0-1098-azure_4.15.0-1098.109~16.04.1_amd64.deb", "4.15.0-1098-azure", "109~16.04.1",
     "ubuntu-azure", "16.04.1", "linux-azure-headers-4.15.0-1098_4.15.0-1098.109~16.04.1"},
    {"linux-headers-4.15.0-1109-gcp_4.15.0-1109.123~16.04.1_amd64.deb", "4.15.0-1109-gcp", "123~16.04.1", "ubuntu-gcp",
     "16.04.1", "linux-gcp-headers-4.15.0-1109_4.15.0-1109.123~16.04.1"},
    {"linux-headers-4.15.0-161-generic_4.15.0-161.169~16.04.1_amd64.deb", "4.15.0-161-generic", "169~16.04.1",
     "ubuntu-generic", "16.04.1", "linux-headers-4.15.0-161_4.15.0-161.169~16.04.1"},
    {"linux-headers-4.15.0-161-generic_4.15.0-161.169_amd64.deb", "4.15.0-161-generic", "169", "ubuntu-generic", "",
     "linux-headers-4.15.0-161_4.15.0-161.169"},
    {"linux-headers-4.15.0-189-generic_4.15.0-189.200~16.04.1_amd64.deb", "4.15.0-189-generic", "200~16.04.1",
     "ubuntu-generic", "16.04.1", "linux-headers-4.15.0-189_4.15.0-189.200~16.04.1"},
    {"linux-headers-4.15.0-1134-azure_4.15.0-1134.147~16.04.1_amd64.deb", "4.15.0-1134-azure", "147~16.04.1",
     "ubuntu-azure", "16.04.1", "linux-azure-headers-4.15.0-1134_4.15.0-1134.147~16.04.1"},
    {"linux-headers-4.4.0-1017-fips_4.4.0-1017.22_amd64.deb", "4.4.0-1017-fips", "22", "ubuntu-fips", "",
     "linux-fips-headers-4.4.0-1017_4.4.0-1017.22"},
    {"linux-headers-5.4.0-1085-fips_5.4.0-1085.94_amd64.deb", "5.4.0-1085-fips", "94", "ubuntu-fips", "",
     "linux-fips-headers-5.4.0-1085_5.4.0-1085.94"},
    {"linux-headers-5.4.0-1090-fips_5.4.0-1090.100_amd64.deb", "5.4.0-1090-fips", "100", "ubuntu-fips", "",
     "linux-fips-headers-5.4.0-1090_5.4.0-1090.100"},
    {"linux-headers-4.15.0-2018-gcp-fips_4.15.0-2018.20_amd64.deb", "4.15.0-2018-gcp-fips", "20", "ubuntu-gcp", "",
     "linux-gcp-fips-headers-4.15.0-2018_4.15.0-2018.20"},
    {"linux-headers-4.15.0-2052-gcp-fips_4.15.0-2052.57_amd64.deb", "4.15.0-2052-gcp-fips", "57", "ubuntu-gcp", "",
     "linux-gcp-fips-headers-4.15.0-2052_4.15.0-2052.57"},
    {"linux-headers-5.11.0-1022-gcp_5.11.0-1022.24~20.04.1_amd64.deb", "5.11.0-1022-gcp", "24~20.04.1", "ubuntu-gcp",
     "20.04.1", "linux-gcp-5.11-headers-5.11.0-1022_5.11.0-1022.24~20.04.1"},
    {"linux-headers-5.4.0-1105-gcp_5.4.0-1105.114_amd64.deb", "5.4.0-1105-gcp", "114", "ubuntu-gcp", "",
     "linux-gcp-headers-5.4.0-1105_5.4.0-1105.114"},
    {"linux-headers-6.5.0-1024-gcp_6.5.0-1024.26_amd64.deb", "6.5.0-1024-gcp", "26", "ubuntu-gcp", "",
     "linux-gcp-headers-6.5.0-1024_6.5.0-1024.26"},
    {"linux-headers-5.4.0-1029-gcp_5.4.0-1029.31~18.04.1_amd64.deb", "5.4.0-1029-gcp", "31~18.04.1", "ubuntu-gcp",
     "18.04.1", "linux-gcp-5.4-headers-5.4.0-1029_5.4.0-1029.31~18.04.1"},
    {"linux-headers-4.15.0-1087-gcp_4.15.0-1087.100_amd64.deb", "4.15.0-1087-gcp", "100", "ubuntu-gcp", "",
     "linux-gcp-4.15-headers-4.15.0-1087_4.15.0-1087.100"},
    {"linux-headers-5.4.0-1077-gke_5.4.0-1077.83~18.04.1_amd64.deb", "5.4.0-1077-gke", "83~18.04.1", "ubuntu-gke",
     "18.04.1", "linux-gke-5.4-headers-5.4.0-1077_5.4.0-1077.83~18.04.1"},
    {"linux-headers-4.15.0-1050-gke_4.15.0-1050.53_amd64.deb", "4.15.0-1050-gke", "53", "ubuntu-gke", "",
     "linux-gke-4.15-headers-4.15.0-1050_4.15.0-1050.53"},
    {"linux-headers-5.15.0-1036-gke_5.15.0-1036.41~20.04.1_amd64.deb", "5.15.0-1036-gke", "41~20.04.1", "ubuntu-gke",
     "20.04.1", "linux-gke-5.15-headers-5.15.0-1036_5.15.0-1036.41~20.04.1"},
    {"linux-headers-4.4.0-1032-gke_4.4.0-1032.32_amd64.deb", "4.4.0-1032-gke", "32", "ubuntu-gke", "",
     "linux-gke-headers-4.4.0-1032_4.4.0-1032.32"},
    {"linux-headers-4.15.0-50-generic_4.15.0-50.54_amd64.deb", "4.15.0-50-generic", "54", "ubuntu-generic", "",
     "linux-headers-4.15.0-50_4.15.0-50.54"},
    {"linux-headers-5.4.0-125-generic_5.4.0-125.141_amd64.deb", "5.4.0-125-generic", "141", "ubuntu-generic", "",
     "linux-headers-5.4.0-125_5.4.0-125.141"},
    {"linux-headers-5.15.0-90-generic_5.15.0-90.100_amd64.deb", "5.15.0-90-generic", "100", "ubuntu-generic", "",
     "linux-headers-5.15.0-90_5.15.0-90.100"},
};

TEST(UbuntuNames, HandCheckedReleasesVersionsFlavoursAndCommons) {
    ASSERT_GE(kCases.size(), 30u);
    test::TempDir dir;
    std::string all;
    for (const auto& list : ubuntu_lists())
        for (const auto& line : test::list_lines(list)) all += line + "\n";
    std::ofstream(dir / "all.txt") << all;
    const Json result = batch(dir / "all.txt");

    std::map<std::string, Json> by_headers_file;
    for (const auto& e : result["entries"])
        by_headers_file[fs::path(e["headers"][0].get<std::string>()).filename().string()] = e;
    for (const auto& c : kCases) {
        SCOPED_TRACE(c.file);
        const auto it = by_headers_file.find(c.file);
        ASSERT_NE(it, by_headers_file.end()) << "no release made of " << c.file;
        const Json& e = it->second;
        EXPECT_EQ(e["kernelrelease"], c.release);
        EXPECT_EQ(e["kernelversion"], c.kernelversion);
        EXPECT_EQ(e["target"], c.target);
        EXPECT_EQ(e.value("variant", ""), c.variant);
        EXPECT_EQ(fs::path(e["headers"][1].get<std::string>()).filename().string().rfind(c.common + "_", 0), 0u)
            << e["headers"][1];
        // batch's plan names the release with its variant: the two builds stay apart.
        const std::string id = c.variant.empty() ? c.release : c.release + "~" + c.variant;
        EXPECT_EQ(result["releases"][id], e["headers"]);
    }
}

// Without their URLs' pool directories, the common packages are still found by the names each
// flavour's source packages give them.
TEST(UbuntuNames, BareFileNamesPairLikeURLs) {
    test::TempDir dir;
    std::string names;
    for (const auto& list : ubuntu_lists())
        for (const auto& line : test::list_lines(list)) names += fs::path(line).filename().string() + "\n";
    std::ofstream(dir / "names.txt") << names;
    const Json result = batch(dir / "names.txt");
    EXPECT_TRUE(result["unavailable"].empty()) << result["unavailable"].dump(1);
    for (const auto& c : kCases) {
        const std::string id = c.variant.empty() ? c.release : c.release + "~" + c.variant;
        ASSERT_TRUE(result["releases"].contains(id)) << id;
        EXPECT_EQ(result["releases"][id][1].get<std::string>().rfind(c.common + "_", 0), 0u) << id;
    }
}

// A list of bare names, one per line, in a temporary directory.
Json batch_names(const std::vector<std::string>& names) {
    test::TempDir dir;
    std::string text;
    for (const auto& name : names) text += name + "\n";
    std::ofstream(dir / "names.txt") << text;
    return batch(dir / "names.txt");
}

Json entry_of(const Json& result, const std::string& headers_file) {
    for (const auto& e : result["entries"])
        if (fs::path(e["headers"][0].get<std::string>()).filename() == headers_file) return e;
    ADD_FAILURE() << "no release made of " << headers_file << ": " << result.dump(1);
    return Json::object();
}

// `uname -v` of an Ubuntu kernel is #<upload><suffix>-Ubuntu: what follows <abi>. in the
// package version. Real lines of the lists (plain, focal's, jammy's and xenial's backports), and
// names in the shape of two the lists lack: an azure +cvm upload and a lowlatency respin.
TEST(UbuntuNames, KernelVersionIsWhatUnameVCarriesAfterTheHash) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"linux-headers-5.15.0-90-generic_5.15.0-90.100_amd64.deb", "100"},
        {"linux-headers-5.15.0-90_5.15.0-90.100_all.deb", ""},
        {"linux-headers-5.15.0-1017-aws_5.15.0-1017.21~20.04.1_amd64.deb", "21~20.04.1"},
        {"linux-aws-5.15-headers-5.15.0-1017_5.15.0-1017.21~20.04.1_all.deb", ""},
        {"linux-headers-6.5.0-1009-azure_6.5.0-1009.9~22.04.1_amd64.deb", "9~22.04.1"},
        {"linux-azure-6.5-headers-6.5.0-1009_6.5.0-1009.9~22.04.1_all.deb", ""},
        {"linux-headers-4.15.0-161-generic_4.15.0-161.169~16.04.1_amd64.deb", "169~16.04.1"},
        {"linux-headers-4.15.0-161_4.15.0-161.169~16.04.1_all.deb", ""},
        {"linux-headers-6.8.0-1010-azure_6.8.0-1010.67+cvm1_amd64.deb", "67+cvm1"},
        {"linux-azure-headers-6.8.0-1010_6.8.0-1010.67+cvm1_all.deb", ""},
        {"linux-headers-6.5.0-9-lowlatency_6.5.0-9.9.1_amd64.deb", "9.1"},
        {"linux-lowlatency-headers-6.5.0-9_6.5.0-9.9.1_all.deb", ""},
    };
    std::set<std::string> listed;
    for (const auto& list : ubuntu_lists())
        for (const auto& line : test::list_lines(list)) listed.insert(fs::path(line).filename().string());
    for (const auto& c : {cases[0], cases[2], cases[4], cases[6]}) EXPECT_TRUE(listed.count(c.first)) << c.first;

    std::vector<std::string> names;
    for (const auto& c : cases) names.push_back(c.first);
    const Json result = batch_names(names);
    EXPECT_TRUE(result["unclaimed"].empty()) << result["unclaimed"].dump(1);
    for (const auto& [file, kernelversion] : cases) {
        if (kernelversion.empty()) continue;  // a common package
        EXPECT_EQ(entry_of(result, file)["kernelversion"], kernelversion) << file;
    }
}

// The falco preset names a module as Falco's driver loader asks its repositories for it
// (falcosecurity/falcoctl, pkg/driver/distro/distro.go and ubuntu.go):
// <driver version>/<uname -m>/falco_<target>_<uname -r>_<kernel version>.ko, where the target is
// "ubuntu-" and the first dash-separated part of uname -r made of letters alone, and the kernel
// version what uname -v says between '#' and "-Ubuntu". Expected names worked out by hand from
// those rules and each kernel's uname -r and uname -v.
TEST(UbuntuNames, FalcoPresetNamesAsFalcosLoaderAsks) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        // generic: uname -v #100-Ubuntu
        {"linux-headers-5.15.0-90-generic_5.15.0-90.100_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-generic_5.15.0-90-generic_100.ko"},
        // aws, focal's backport: #21~20.04.1-Ubuntu
        {"linux-headers-5.15.0-1017-aws_5.15.0-1017.21~20.04.1_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-aws_5.15.0-1017-aws_21~20.04.1.ko"},
        // flavours with a dash: the target is their first word
        {"linux-headers-4.15.0-2094-aws-fips_4.15.0-2094.100_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-aws_4.15.0-2094-aws-fips_100.ko"},
        {"linux-headers-4.15.0-2050-azure-fips_4.15.0-2050.54_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-azure_4.15.0-2050-azure-fips_54.ko"},
        {"linux-headers-4.15.0-2052-gcp-fips_4.15.0-2052.57_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-gcp_4.15.0-2052-gcp-fips_57.ko"},
        // gke, bionic's backport; fips alone
        {"linux-headers-5.4.0-1077-gke_5.4.0-1077.83~18.04.1_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-gke_5.4.0-1077-gke_83~18.04.1.ko"},
        {"linux-headers-5.4.0-1090-fips_5.4.0-1090.100_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-fips_5.4.0-1090-fips_100.ko"},
        // xenial's generic backport of bionic's 4.15 beside bionic's own build
        {"linux-headers-4.15.0-161-generic_4.15.0-161.169~16.04.1_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-generic_4.15.0-161-generic_169~16.04.1.ko"},
        {"linux-headers-4.15.0-161-generic_4.15.0-161.169_amd64.deb",
         "7.0.0+driver/x86_64/falco_ubuntu-generic_4.15.0-161-generic_169.ko"},
    };
    std::string all;
    for (const auto& list : ubuntu_lists())
        for (const auto& line : test::list_lines(list)) all += line + "\n";
    test::TempDir dir;
    std::ofstream(dir / "all.txt") << all;
    const Json result = batch(dir / "all.txt");
    for (const auto& [file, expected] : cases) {
        const Json e = entry_of(result, file);
        ASSERT_FALSE(e.empty()) << file;
        NamingFields fields;
        fields.module = "falco";
        fields.module_version = "7.0.0+driver";
        fields.arch = e["arch"];
        fields.machine = machine_of(e["arch"]);
        fields.kernelrelease = e["kernelrelease"];
        fields.kernelversion = e["kernelversion"];
        fields.target = e["target"];
        fields.distro = "ubuntu";
        fields.variant = e.value("variant", "");
        EXPECT_EQ(artifact_name(naming_preset("falco"), fields), expected) << file;
    }
}

// Without pool directories, a focal lowlatency backport's common package is not told by names:
// linux-hwe-5.15 (generic) and linux-lowlatency-hwe-5.15 each have one, of one version. Such a
// kernel is left unclaimed, saying why, and its possible commons too; the generic kernel beside
// it, and a lowlatency kernel whose only possible common is linux's, are paired as before.
// (kernel-packer's lists hold no lowlatency kernel: the names are in the shape Ubuntu gives them.)
TEST(UbuntuNames, BareNamesThatCannotTellTheCommonPackageAreUnclaimedSayingSo) {
    const std::string generic = "linux-headers-5.15.0-91-generic_5.15.0-91.101~20.04.1_amd64.deb";
    const std::string generic_common = "linux-hwe-5.15-headers-5.15.0-91_5.15.0-91.101~20.04.1_all.deb";
    const std::string lowlatency = "linux-headers-5.15.0-91-lowlatency_5.15.0-91.101~20.04.1_amd64.deb";
    const std::string lowlatency_common = "linux-lowlatency-hwe-5.15-headers-5.15.0-91_5.15.0-91.101~20.04.1_all.deb";
    const std::string old_lowlatency = "linux-headers-5.4.0-150-lowlatency_5.4.0-150.167_amd64.deb";
    const std::string old_common = "linux-headers-5.4.0-150_5.4.0-150.167_all.deb";
    const Json result =
        batch_names({generic, generic_common, lowlatency, lowlatency_common, old_lowlatency, old_common});

    EXPECT_EQ(result["releases"]["5.15.0-91-generic~20.04.1"], (Json{generic, generic_common}));
    EXPECT_EQ(result["releases"]["5.4.0-150-lowlatency"], (Json{old_lowlatency, old_common}));
    EXPECT_FALSE(result["releases"].contains("5.15.0-91-lowlatency~20.04.1")) << result["releases"].dump(1);
    EXPECT_TRUE(result["errors"].empty()) << result["errors"];
    EXPECT_EQ(result["unclaimed"],
              (Json{{{"file", lowlatency},
                     {"reason",
                      "which of linux-hwe-5.15-headers-5.15.0-91 and linux-lowlatency-hwe-5.15-headers-5.15.0-91 "
                      "(5.15.0-91.101~20.04.1) it needs, file names alone cannot tell: list URLs with their pool "
                      "directories, or the .deb files"}},
                    {{"file", lowlatency_common},
                     {"reason",
                      "one of the packages linux-headers-5.15.0-91-lowlatency may need (file names alone cannot "
                      "tell which)"}}}));

    // With their pool directories the same files pair.
    const std::string pool = "http://archive.example/ubuntu/pool/main/l/";
    const Json urls = batch_names({pool + "linux-hwe-5.15/" + generic, pool + "linux-hwe-5.15/" + generic_common,
                                   pool + "linux-lowlatency-hwe-5.15/" + lowlatency,
                                   pool + "linux-lowlatency-hwe-5.15/" + lowlatency_common});
    EXPECT_TRUE(urls["unclaimed"].empty()) << urls["unclaimed"].dump(1);
    EXPECT_EQ(urls["releases"]["5.15.0-91-lowlatency~20.04.1"],
              (Json{pool + "linux-lowlatency-hwe-5.15/" + lowlatency,
                    pool + "linux-lowlatency-hwe-5.15/" + lowlatency_common}));
}

}  // namespace
