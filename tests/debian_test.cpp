// The debian plugin: release naming and pairing on real package names (kernel-packer's list),
// and on real .deb files whose control data, not their names, decides.
#include "fetch/fetch.h"
#include "mirror_server.h"
#include "pipeline/pipeline.h"
#include "plugin/plugin_host.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

class DebianPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        host_.load_directories({test::binary_dir() / "lib" / "kbuild"});
        plugin_ = host_.find("debian");
        ASSERT_NE(plugin_, nullptr) << "libkbuild-debian.so not built";
        fetcher_ = std::make_unique<Fetcher>(FetchOptions{cache_.path()});
        // These tests are about pairing packages: their unsigned archives are used unchecked, as
        // `verify = false` in the config file would (the trust tests check signatures).
        TrustPolicy policy;
        policy.insecure_distros = {"debian"};
        trust_ = std::make_unique<Trust>(policy, cache_.path());
        context_ = make_host_context(cache_.path(), *fetcher_, trust_.get());
        instance_ = std::make_unique<PluginInstance>(*plugin_, context_);
    }

    const Release& release(const ReleaseList& list, const std::string& name) {
        for (const auto& r : list.releases)
            if (r.release == name) return r;
        throw Error("no release " + name);
    }

    static std::vector<std::string> file_names(const Release& r) {
        std::vector<std::string> names;
        for (const auto& p : r.packages) names.push_back(fs::path(p.url.empty() ? p.path : p.url).filename());
        return names;
    }

    PluginHost host_;
    const Plugin* plugin_ = nullptr;
    test::TempDir cache_;
    std::unique_ptr<Fetcher> fetcher_;
    std::unique_ptr<Trust> trust_;
    HostContext context_;
    std::unique_ptr<PluginInstance> instance_;
};

TEST_F(DebianPlugin, GroupsEveryLineOfKernelPackersList) {
    const fs::path list = test::kernel_packer_lists() / "debian.txt";
    std::ifstream in(list);
    ASSERT_TRUE(in) << list;
    BatchRequest request;
    request.distro = "debian";
    request.names_only = true;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) request.files.push_back(line);
    ASSERT_EQ(request.files.size(), 49u);
    const ReleaseList result = instance_->batch_packages(request);

    // No line dropped: each is in a release or named as unclaimed with a reason.
    std::set<std::string> accounted;
    for (const auto& r : result.releases)
        for (const auto& p : r.packages) accounted.insert(p.url);
    for (const auto& u : result.unclaimed) accounted.insert(u.file);
    for (const auto& line : request.files) EXPECT_TRUE(accounted.count(line)) << line;
    EXPECT_EQ(result.releases.size(), 26u);

    EXPECT_EQ(file_names(release(result, "6.1.0-21-amd64")),
              (std::vector<std::string>{"linux-headers-6.1.0-21-amd64_6.1.90-1_amd64.deb",
                                        "linux-headers-6.1.0-21-common_6.1.90-1_all.deb",
                                        "linux-kbuild-6.1_6.1.90-1_amd64.deb"}));
    // No kbuild of the same version in the list: the newest that satisfies >= is taken.
    EXPECT_EQ(file_names(release(result, "4.19.0-20-cloud-amd64"))[2], "linux-kbuild-4.19_4.19.316-1_amd64.deb");
    EXPECT_EQ(file_names(release(result, "6.1.0-16-cloud-amd64"))[2], "linux-kbuild-6.1_6.1.67-1_amd64.deb");
    // Releases named by upstream version keep a kbuild package named the same way.
    const Release& rt = release(result, "6.8.12-rt-amd64");
    EXPECT_EQ(rt.unavailable,
              "linux-headers-6.8.12-rt-amd64 6.8.12-1 needs linux-headers-6.8.12-common-rt (= "
              "6.8.12-1), which no index or list holds");
    const Release& cloud = release(result, "6.9.7-cloud-amd64");
    EXPECT_NE(cloud.unavailable.find("linux-headers-6.9.7-common (= 6.9.7-1)"), std::string::npos);
    const Release& older = release(result, "5.10.0-28-amd64");
    EXPECT_EQ(older.kernelversion, "1");
    EXPECT_TRUE(older.unavailable.empty()) << older.unavailable;
    EXPECT_EQ(file_names(older)[2], "linux-kbuild-5.10_5.10.218-1_amd64.deb");
}

// Three small but real .debs laid out as Debian ships a kernel's headers.
struct KernelDebs {
    fs::path headers, common, kbuild;
};

KernelDebs make_kernel_debs(const fs::path& dir, const std::string& headers_file_name) {
    KernelDebs debs;
    debs.headers =
        test::make_deb(dir,
                       {"linux-headers-6.1.0-99-amd64",
                        "6.1.300-1",
                        "amd64",
                        "linux-headers-6.1.0-99-common (= 6.1.300-1), linux-kbuild-6.1 (>= 6.1.300-1), "
                        "linux-compiler-gcc-12-x86",
                        {{"usr/src/linux-headers-6.1.0-99-amd64/Makefile",
                          "include /usr/src/linux-headers-6.1.0-99-common/Makefile\n"},
                         {"usr/src/linux-headers-6.1.0-99-amd64/.config",
                          "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_MODULES=y\n"},
                         {"usr/src/linux-headers-6.1.0-99-amd64/scripts", "->../../lib/linux-kbuild-6.1/scripts"}}},
                       headers_file_name);
    debs.common = test::make_deb(dir, {"linux-headers-6.1.0-99-common",
                                       "6.1.300-1",
                                       "all",
                                       "",
                                       {{"usr/src/linux-headers-6.1.0-99-common/Makefile", "# top\n"}}});
    debs.kbuild = test::make_deb(
        dir,
        {"linux-kbuild-6.1", "6.1.300-1", "amd64", "", {{"usr/lib/linux-kbuild-6.1/scripts/Makefile.build", "# b\n"}}});
    return debs;
}

TEST_F(DebianPlugin, LocalDebsAreGroupedByTheirControlDataNotTheirNames) {
    test::TempDir dir;
    const KernelDebs debs = make_kernel_debs(dir.path(), "renamed-by-someone.deb");
    test::write_file(dir / "notes.deb", "not a deb at all");
    BatchRequest request;
    request.distro = "debian";
    request.files = {debs.kbuild.string(), debs.headers.string(), debs.common.string()};
    const ReleaseList result = instance_->batch_packages(request);
    ASSERT_EQ(result.releases.size(), 1u);
    const Release& r = result.releases[0];
    EXPECT_EQ(r.release, "6.1.0-99-amd64");
    EXPECT_TRUE(r.unavailable.empty()) << r.unavailable;
    ASSERT_EQ(r.packages.size(), 3u);
    EXPECT_EQ(r.packages[0].path, debs.headers.string());
    EXPECT_EQ(r.packages[1].path, debs.common.string());
    EXPECT_EQ(r.packages[2].path, debs.kbuild.string());
    EXPECT_TRUE(result.unclaimed.empty());

    // A corrupt .deb is an error naming it; the kernel beside it is still grouped.
    request.files.push_back((dir / "notes.deb").string());
    const ReleaseList with_corrupt = instance_->batch_packages(request);
    ASSERT_EQ(with_corrupt.errors.size(), 1u);
    EXPECT_EQ(with_corrupt.errors[0].rfind((dir / "notes.deb").string() + ": ", 0), 0u) << with_corrupt.errors[0];
    ASSERT_EQ(with_corrupt.releases.size(), 1u);
    EXPECT_EQ(with_corrupt.releases[0].packages.size(), 3u);
}

TEST_F(DebianPlugin, UnpacksAndFindsTheKernelDirAndConfig) {
    test::TempDir dir;
    const KernelDebs debs = make_kernel_debs(dir.path(), "");
    Release r;
    r.release = "6.1.0-99-amd64";
    r.packages = {{"h", "", debs.headers.string()}, {"c", "", debs.common.string()}, {"k", "", debs.kbuild.string()}};
    const fs::path root = cache_.path() / "tree";
    fs::create_directories(root);
    EXPECT_EQ(instance_->unpack({r, root.string()}).root, root.string());
    EXPECT_TRUE(fs::is_symlink(root / "usr/src/linux-headers-6.1.0-99-amd64/scripts"));
    EXPECT_TRUE(fs::exists(root / "usr/src/linux-headers-6.1.0-99-amd64/scripts/Makefile.build"));

    const std::string kdir = instance_->get_kernel_dir({r.release, root.string()}).kernel_dir;
    EXPECT_EQ(kdir, (root / "usr/src/linux-headers-6.1.0-99-amd64").string());
    const ConfigHash hash = instance_->hash_config({r.release, root.string(), kdir});
    EXPECT_EQ(hash.md5, run_process({"md5sum", kdir + "/.config"}).out.substr(0, 32));

    fs::remove(kdir + "/.config");
    try {
        instance_->hash_config({r.release, root.string(), kdir});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "debian: hash_config: " + kdir + "/.config: missing (the headers package has no .config)");
    }
    EXPECT_THROW(instance_->get_kernel_dir({"6.1.0-98-amd64", root.string()}), Error);
}

// One package of a synthetic Packages index, in the shape of Debian's own paragraphs.
struct IndexEntry {
    std::string name, version, arch, depends;
};

// <root>/dists/<suite>/Release and main/binary-<arch>/Packages.xz holding `entries` (for each
// architecture they name, amd64 when only "all"; "all" entries in every index), the indexes'
// sha256 and size in Release as crawl checks them.
void write_suite(const fs::path& root, const std::string& suite, const std::vector<IndexEntry>& entries) {
    std::set<std::string> arches;
    for (const auto& e : entries)
        if (e.arch != "all") arches.insert(e.arch);
    if (arches.empty()) arches.insert("amd64");
    std::string release = "Suite: " + suite + "\nCodename: " + suite + "\nSHA256:\n";
    for (const auto& arch : arches) {
        const fs::path dir = root / "dists" / suite / ("main/binary-" + arch);
        fs::create_directories(dir);
        std::string packages;
        for (const auto& e : entries) {
            if (e.arch != arch && e.arch != "all") continue;
            const std::string file = e.name + "_" + e.version + "_" + e.arch + ".deb";
            packages += "Package: " + e.name + "\nSource: linux (" + e.version + ")\nVersion: " + e.version +
                        "\nArchitecture: " + e.arch + "\n" + (e.depends.empty() ? "" : "Depends: " + e.depends + "\n") +
                        "Filename: pool/main/l/linux/" + file + "\nSize: 1000\nSHA256: " + sha256_text(file) + "\n\n";
        }
        test::write_file(dir / "Packages", packages);
        ASSERT_EQ(run_process({"xz", "-kf", (dir / "Packages").string()}).exit_code, 0);
        const fs::path xz = dir / "Packages.xz";
        release += " " + sha256_file(xz.string()) + " " + std::to_string(fs::file_size(xz)) + " main/binary-" + arch +
                   "/Packages.xz\n";
    }
    test::write_file(root / "dists" / suite / "Release", release);
}

// A kernel's headers and common package of one version, with Debian's Depends.
std::vector<IndexEntry> kernel(const std::string& abi, const std::string& version, const std::string& gcc) {
    return {{"linux-headers-" + abi + "-amd64", version, "amd64",
             "linux-headers-" + abi + "-common (= " + version + "), linux-kbuild-6.1 (>= " + version +
                 "), linux-compiler-gcc-" + gcc + "-x86"},
            {"linux-headers-" + abi + "-common", version, "all", ""}};
}

// linux-kbuild-* holds programs linked against its release's glibc. Each kernel takes the one of
// its own version, else its own release's (bullseye's backports of 6.1 are built in the
// bullseye image), else the newest: never bookworm's for a bullseye kernel that bullseye's
// own suites can serve.
TEST_F(DebianPlugin, EachKernelTakesTheKbuildPackageThatRunsWhereItIsBuilt) {
    test::TempDir archive;
    auto suite = [&](const std::string& name, std::vector<std::vector<IndexEntry>> parts) {
        std::vector<IndexEntry> entries;
        for (const auto& part : parts) entries.insert(entries.end(), part.begin(), part.end());
        write_suite(archive.path(), name, entries);
    };
    suite("bullseye", {kernel("6.1.0-0.deb11.35", "6.1.160-1~deb11u1", "10"),
                       {{"linux-kbuild-6.1", "6.1.160-1~deb11u1", "amd64", "libc6 (>= 2.14)"}}});
    suite("bullseye-security", {kernel("6.1.0-0.deb11.40", "6.1.170-1~deb11u1", "10"),
                                {{"linux-kbuild-6.1", "6.1.180-1~deb11u1", "amd64", "libc6 (>= 2.14)"}}});
    suite("bookworm", {kernel("6.1.0-41", "6.1.190-1", "12"),
                       kernel("6.1.0-42", "6.1.192-3", "12"),
                       {{"linux-kbuild-6.1", "6.1.192-3", "amd64", "libc6 (>= 2.34)"}}});
    test::MirrorServer server(archive.path());

    CrawlRequest request;
    request.distro = "debian";
    request.mirrors = {server.url()};
    request.options = {{"suites", "bullseye,bullseye-security,bookworm"}};
    const ReleaseList result = instance_->crawl(request);
    ASSERT_TRUE(result.errors.empty()) << result.errors[0];
    ASSERT_EQ(result.releases.size(), 4u);
    auto kbuild_of = [&](const std::string& name) {
        const Release& r = release(result, name);
        EXPECT_TRUE(r.unavailable.empty()) << r.unavailable;
        return file_names(r).back();
    };
    // A bullseye backport with no kbuild of its version: bullseye-security's, not bookworm's newer one.
    EXPECT_EQ(kbuild_of("6.1.0-0.deb11.40-amd64"), "linux-kbuild-6.1_6.1.180-1~deb11u1_amd64.deb");
    // Its own version, though newer ones of its release and of bookworm are listed.
    EXPECT_EQ(kbuild_of("6.1.0-0.deb11.35-amd64"), "linux-kbuild-6.1_6.1.160-1~deb11u1_amd64.deb");
    // A bookworm kernel: bookworm's.
    EXPECT_EQ(kbuild_of("6.1.0-41-amd64"), "linux-kbuild-6.1_6.1.192-3_amd64.deb");
    EXPECT_EQ(kbuild_of("6.1.0-42-amd64"), "linux-kbuild-6.1_6.1.192-3_amd64.deb");

    // From names alone, the version says the release: ~deb11u1 is bullseye's.
    BatchRequest names;
    names.distro = "debian";
    names.names_only = true;
    for (const auto& r : result.releases)
        for (const auto& p : r.packages) names.files.push_back(p.url);
    const ReleaseList from_names = instance_->batch_packages(names);
    const Release& backport = release(from_names, "6.1.0-0.deb11.40-amd64");
    EXPECT_EQ(file_names(backport).back(), "linux-kbuild-6.1_6.1.180-1~deb11u1_amd64.deb");
}

TEST_F(DebianPlugin, AnArm64KernelBuiltOnThisHostTakesThisHostsKbuild) {
    test::TempDir archive;
    const std::string version = "6.1.176-1";
    const std::vector<IndexEntry> arm64 = {{"linux-headers-6.1.0-50-arm64", version, "arm64",
                                            "linux-headers-6.1.0-50-common (= " + version +
                                                "), linux-kbuild-6.1 (>= " + version + "), linux-compiler-gcc-12-arm"},
                                           {"linux-headers-6.1.0-50-common", version, "all", ""},
                                           {"linux-kbuild-6.1", version, "arm64", "libc6 (>= 2.34)"}};
    std::vector<IndexEntry> both = arm64;
    both.push_back({"linux-kbuild-6.1", version, "amd64", "libc6 (>= 2.34)"});
    write_suite(archive.path(), "bookworm", both);
    write_suite(archive.path(), "sid", arm64);  // no amd64 index at all
    test::MirrorServer server(archive.path());

    CrawlRequest request;
    request.distro = "debian";
    request.arch = "arm64";
    request.mirrors = {server.url()};
    request.options = {{"suites", "bookworm"}};
    // On an arm64 host (or from a host older than ABI 1.8): the kernel's own kbuild.
    ReleaseList native = instance_->crawl(request);
    ASSERT_EQ(native.releases.size(), 1u);
    EXPECT_EQ(file_names(native.releases[0]).back(), "linux-kbuild-6.1_6.1.176-1_arm64.deb");
    // Cross-building on amd64: amd64's, read from amd64's index.
    request.host_arch = "amd64";
    const ReleaseList cross = instance_->crawl(request);
    ASSERT_EQ(cross.releases.size(), 1u);
    EXPECT_EQ(cross.releases[0].arch, "arm64");
    EXPECT_TRUE(cross.releases[0].unavailable.empty()) << cross.releases[0].unavailable;
    EXPECT_EQ(file_names(cross.releases[0]),
              (std::vector<std::string>{"linux-headers-6.1.0-50-arm64_6.1.176-1_arm64.deb",
                                        "linux-headers-6.1.0-50-common_6.1.176-1_all.deb",
                                        "linux-kbuild-6.1_6.1.176-1_amd64.deb"}));
    // A suite with no index of the build host's architecture: the kernel is unavailable, said why.
    request.options = {{"suites", "sid"}};
    const ReleaseList lacking = instance_->crawl(request);
    ASSERT_EQ(lacking.releases.size(), 1u);
    EXPECT_EQ(lacking.releases[0].unavailable,
              "linux-headers-6.1.0-50-arm64 6.1.176-1 needs linux-kbuild-6.1 (>= 6.1.176-1) of amd64, the build "
              "host's, which no index or list holds");

    // A list of names holding both kbuild packages: amd64's is taken, arm64's left unclaimed.
    BatchRequest names;
    names.distro = "debian";
    names.arch = "arm64";
    names.host_arch = "amd64";
    names.names_only = true;
    for (const auto& e : both)
        names.files.push_back("pool/main/l/linux/" + e.name + "_" + e.version + "_" + e.arch + ".deb");
    const ReleaseList listed = instance_->batch_packages(names);
    ASSERT_EQ(listed.releases.size(), 1u);
    EXPECT_EQ(file_names(listed.releases[0]).back(), "linux-kbuild-6.1_6.1.176-1_amd64.deb");
    ASSERT_EQ(listed.unclaimed.size(), 1u);
    EXPECT_EQ(fs::path(listed.unclaimed[0].file).filename(), "linux-kbuild-6.1_6.1.176-1_arm64.deb");
}

}  // namespace
