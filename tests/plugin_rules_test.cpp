// Distro rules live in plugins (ABI 1.5): each family orders its own releases (--latest), and
// declares the targets it serves; the host names no distro and falls back to rules that name
// none. Plugins older than 1.5 keep working.
#include "plugin/bundle.h"
#include "plugin/host_services.h"
#include "plugin/plugin_host.h"
#include "targets/targets.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace kbuild;
using test::fixture_plugin_dir;

namespace {

std::vector<Release> releases_of(const std::string& distro, const std::vector<std::string>& names) {
    std::vector<Release> releases;
    for (const auto& name : names) {
        Release r;
        r.release = name;
        r.distro = distro;
        r.arch = "amd64";
        releases.push_back(r);
    }
    return releases;
}

std::vector<std::string> names_of(const std::vector<Release>& releases) {
    std::vector<std::string> names;
    for (const auto& r : releases) names.push_back(release_id(r));
    return names;
}

class InTreePlugins : public ::testing::Test {
protected:
    void SetUp() override {
        host_.load_directories({test::binary_dir() / "lib" / "kbuild"});
        context_.cache_dir = cache_.path();
    }

    // The releases --latest N keeps, newest first, as the distro's plugin orders them.
    std::vector<std::string> latest(const std::string& distro, const std::vector<std::string>& names, int n) {
        const Plugin* plugin = host_.find(distro);
        EXPECT_NE(plugin, nullptr) << distro;
        if (!plugin) return {};
        PluginInstance instance(*plugin, context_);
        std::vector<Release> releases = releases_of(distro, names);
        TargetOptions target;
        target.distro = distro;
        target.latest = n;
        select_releases(releases, target, &instance);
        return names_of(releases);
    }

    Description description_of(const std::string& distro) {
        PluginInstance instance(*host_.find(distro), context_);
        const auto description = instance.describe();
        EXPECT_TRUE(description.has_value()) << distro;
        return description.value_or(Description{});
    }

    PluginHost host_;
    test::TempDir cache_;
    HostContext context_;
};

std::vector<std::string> target_names(const std::vector<TargetInfo>& targets) {
    std::vector<std::string> names;
    for (const auto& t : targets) names.push_back(t.name + "@" + t.distro);
    return names;
}

}  // namespace

// ---- the order of releases ----

// The host knows no distro's key: the deb plugins name their archives' keyrings (describe,
// ABI 1.6), the config's keyring and --keyring replace them, and the rpm family names none.
TEST_F(InTreePlugins, DebAndUbuntuPluginsNameTheirArchiveKeyrings) {
    for (const std::string distro : {"debian", "ubuntu"}) {
        SCOPED_TRACE(distro);
        const Plugin* plugin = host_.find(distro);
        ASSERT_NE(plugin, nullptr);
        TargetOptions target;
        target.distro = distro;
        const std::vector<fs::path> archive{"/usr/share/keyrings/" + distro + "-archive-keyring.gpg"};
        EXPECT_EQ(trust_policy(*plugin, target).distro_keyrings.at(distro), archive);
        target.distro_keyrings = {"/etc/kbuild/keys/config.gpg"};
        EXPECT_EQ(trust_policy(*plugin, target).distro_keyrings.at(distro),
                  std::vector<fs::path>{"/etc/kbuild/keys/config.gpg"});
        target.keyrings = {"/tmp/cli.gpg"};
        EXPECT_EQ(trust_policy(*plugin, target).distro_keyrings.at(distro), std::vector<fs::path>{"/tmp/cli.gpg"});
    }
    const Plugin* centos = host_.find("centos");
    ASSERT_NE(centos, nullptr);
    TargetOptions target;
    target.distro = "centos";
    EXPECT_TRUE(trust_policy(*centos, target).distro_keyrings.empty());
}

TEST_F(InTreePlugins, DebianOrdersReleasesAsDpkgDoesWithEpochsAndTildes) {
    // dpkg: an epoch beats any version, '~' sorts before anything (even the end), a number is
    // compared as a number. Natural text order would put 6.1.0-18~bpo11-amd64 above
    // 6.1.0-18-amd64 and 1:4.19... last.
    const std::vector<std::string> names = {"5.10.0-9-amd64", "6.1.0-18~bpo11-amd64", "1:4.19.0-1-amd64",
                                            "6.1.0-9-amd64", "6.1.0-18-amd64"};
    EXPECT_EQ(latest("debian", names, 5),
              (std::vector<std::string>{"1:4.19.0-1-amd64", "6.1.0-18-amd64", "6.1.0-18~bpo11-amd64", "6.1.0-9-amd64",
                                        "5.10.0-9-amd64"}));
    EXPECT_EQ(latest("debian", names, 2), (std::vector<std::string>{"1:4.19.0-1-amd64", "6.1.0-18-amd64"}));
}

TEST_F(InTreePlugins, UbuntuOrdersByDpkgToo) {
    EXPECT_EQ(latest("ubuntu", {"5.15.0-91-generic", "5.15.0-1051-aws", "6.8.0-31-generic", "5.15.0-101-generic"}, 3),
              (std::vector<std::string>{"6.8.0-31-generic", "5.15.0-1051-aws", "5.15.0-101-generic"}));
}

TEST_F(InTreePlugins, RpmFamiliesOrderReleasesAsRpmDoes) {
    // rpmvercmp: after 553, "5" (digits) is newer than "el8_10" (letters): 553.5.1 is the
    // update of 553. dpkg's order says the opposite ('.' then end < '.' then a letter).
    const std::vector<std::string> names = {"4.18.0-553.el8_10.x86_64", "4.18.0-80.el8.x86_64",
                                            "4.18.0-553.5.1.el8_10.x86_64", "4.18.0-513.24.1.el8_9.x86_64"};
    const std::vector<std::string> newest = {"4.18.0-553.5.1.el8_10.x86_64", "4.18.0-553.el8_10.x86_64",
                                             "4.18.0-513.24.1.el8_9.x86_64", "4.18.0-80.el8.x86_64"};
    for (const char* distro : {"centos", "rocky", "almalinux", "oracle"})
        EXPECT_EQ(latest(distro, names, 4), newest) << distro;
    // rpm's '~' (a pre-release) sorts before the release it precedes.
    EXPECT_EQ(latest("fedora", {"6.10.0-0.rc7.fc41.x86_64", "6.10.0-1.fc41.x86_64", "6.10.0-0~rc7.fc41.x86_64"}, 1),
              std::vector<std::string>{"6.10.0-1.fc41.x86_64"});
    EXPECT_EQ(
        latest("amazonlinux2",
               {"4.14.336-257.562.amzn2.x86_64", "5.10.210-201.852.amzn2.x86_64", "4.14.336-257.568.amzn2.x86_64"}, 2),
        (std::vector<std::string>{"5.10.210-201.852.amzn2.x86_64", "4.14.336-257.568.amzn2.x86_64"}));
}

TEST_F(InTreePlugins, FlatcarOrdersByItsOsVersionEvenBeforeTheKernelIsNamed) {
    std::vector<Release> releases = releases_of("flatcar", {"", "", ""});
    releases[0].variant = "3510.2.0";
    releases[1].variant = "3815.2.5";
    releases[2].variant = "3760.10.0";
    PluginInstance instance(*host_.find("flatcar"), context_);
    TargetOptions target;
    target.distro = "flatcar";
    target.latest = 2;
    select_releases(releases, target, &instance);
    EXPECT_EQ(names_of(releases), (std::vector<std::string>{"3815.2.5", "3760.10.0"}));
}

TEST(ReleaseOrder, TheHostFallbackIsANaturalVersionOrderNamingNoDistro) {
    EXPECT_GT(natural_version_compare("6.1.10", "6.1.9"), 0);
    EXPECT_GT(natural_version_compare("6.1.0-18-amd64", "6.1.0-9-amd64"), 0);
    EXPECT_GT(natural_version_compare("6.1.1", "6.1"), 0);
    EXPECT_LT(natural_version_compare("rc", "2"), 0);
    EXPECT_LT(natural_version_compare("6.1", "6.1a"), 0);
    EXPECT_EQ(natural_version_compare("6.01", "6.1"), 0);
    EXPECT_EQ(natural_version_compare("a", "a"), 0);
    // No plugin (or one without the hook): that order, then the variant.
    std::vector<Release> releases = releases_of("x", {"6.1.9", "6.1.10", "5.19.100", "6.1.10"});
    releases[3].variant = "2";
    TargetOptions target;
    target.latest = 3;
    select_releases(releases, target, nullptr);
    EXPECT_EQ(names_of(releases), (std::vector<std::string>{"6.1.10~2", "6.1.10", "6.1.9"}));
}

TEST(ReleaseOrder, APluginsOrderHookDecidesAndOlderMinorsFallBack) {
    test::TempDir cache;
    HostContext context;
    context.cache_dir = cache.path();
    PluginHost host;
    ASSERT_FALSE(host.load_file(fixture_plugin_dir("ordering") / "libkbuild-ordering.so"));
    ASSERT_FALSE(host.load_file(fixture_plugin_dir("minor4") / "libkbuild-minorfour.so"));
    ASSERT_FALSE(host.load_file(fixture_plugin_dir("oldminor") / "libkbuild-oldminor.so"));
    const auto order_of = [&](const std::string& distro) {
        std::vector<Release> releases = releases_of(distro, {"1.10", "1.9"});
        PluginInstance instance(*host.find(distro), context);
        TargetOptions target;
        target.distro = distro;
        target.latest = 2;
        select_releases(releases, target, &instance);
        return names_of(releases);
    };
    // The 1.5 plugin answers [1,0]: its order, against the natural one.
    EXPECT_EQ(order_of("orderdistro"), (std::vector<std::string>{"1.9", "1.10"}));
    // 1.4 and 1.0 tables hold the hook past their struct_size: never read, the host's order.
    EXPECT_EQ(host.find("minorfourdistro")->api().order_releases, nullptr);
    EXPECT_EQ(host.find("minorfourdistro")->abi_minor(), 4u);
    EXPECT_EQ(order_of("minorfourdistro"), (std::vector<std::string>{"1.10", "1.9"}));
    EXPECT_EQ(order_of("olddistro"), (std::vector<std::string>{"1.10", "1.9"}));
    // An answer that is not an order of every release is an error naming the plugin.
    PluginInstance instance(*host.find("orderdistro"), context);
    try {
        instance.order_releases("orderdistro", releases_of("orderdistro", {"1", "2", "3"}));
        ADD_FAILURE() << "an order of two releases was taken for three";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "ordering: order_releases: the answer orders 2 of the 3 releases asked");
    }
}

TEST(ReleaseOrder, LatestOnAnRpmDistroPicksTheNewestByRpmsOrder) {
    test::TempDir dir;
    const fs::path list = dir / "kernels.txt";
    test::write_file(
        list,
        "https://mirror.invalid/8/BaseOS/x86_64/os/Packages/kernel-devel-4.18.0-553.el8_10.x86_64.rpm\n"
        "https://mirror.invalid/8/BaseOS/x86_64/os/Packages/kernel-devel-4.18.0-553.5.1.el8_10.x86_64.rpm\n"
        "https://mirror.invalid/8/BaseOS/x86_64/os/Packages/kernel-devel-4.18.0-80.el8.x86_64.rpm\n");
    const ProcessResult r =
        test::run_kbuild({"--cache-dir", (dir / "cache").string(), "batch", "--distro", "rocky", "--arch", "x86_64",
                          "--from-list", list.string(), "--latest", "1", "--output", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["releases"].size(), 1u) << r.out;
    EXPECT_TRUE(doc["releases"].contains("4.18.0-553.5.1.el8_10.x86_64")) << r.out;
}

// ---- targets ----

TEST_F(InTreePlugins, DescribeListsTheTargetsEachPluginServes) {
    EXPECT_EQ(target_names(description_of("ubuntu").targets), std::vector<std::string>{"ubuntu-<flavour>@ubuntu"});
    EXPECT_EQ(target_names(description_of("debian").targets), std::vector<std::string>{"debian@debian"});
    EXPECT_EQ(target_names(description_of("centos").targets),
              (std::vector<std::string>{"almalinux@almalinux", "centos@centos", "fedora@fedora", "oracle@oracle",
                                        "rocky@rocky"}));
    // What the host serves: declared targets, and a distro declaring none as itself.
    EXPECT_EQ(target_names(served_targets(*host_.find("ubuntu"), description_of("ubuntu"))),
              std::vector<std::string>{"ubuntu-<flavour>@ubuntu"});
    EXPECT_EQ(target_names(served_targets(*host_.find("flatcar"), description_of("flatcar"))),
              (std::vector<std::string>{"flatcar@flatcar", "coreos@coreos", "fedora-coreos@fedora-coreos"}));
}

TEST(Targets, APlaceholderStandsForOneWordAndNothingElse) {
    EXPECT_TRUE(target_matches("ubuntu-<flavour>", "ubuntu-aws"));
    EXPECT_TRUE(target_matches("ubuntu-<flavour>", "ubuntu-generic"));
    EXPECT_FALSE(target_matches("ubuntu-<flavour>", "ubuntu"));
    EXPECT_FALSE(target_matches("ubuntu-<flavour>", "ubuntu-"));
    EXPECT_FALSE(target_matches("ubuntu-<flavour>", "ubuntu-aws/../x"));
    EXPECT_FALSE(target_matches("ubuntu-<flavour>", "debian"));
    EXPECT_TRUE(target_matches("x-<a>-y", "x-1.2-y"));
    EXPECT_FALSE(target_matches("x-<a>-y", "x-1-2-y"));
    EXPECT_TRUE(target_matches("debian", "debian"));
    EXPECT_FALSE(target_matches("debian", "debian2"));
}

TEST(Targets, PluginsListsThemAndAnOlderPluginsDistrosAreItsTargets) {
    const ProcessResult r =
        test::run_kbuild({"plugins", "--output", "json", "--plugin-dir", fixture_plugin_dir("good").string(),
                          "--plugin-dir", fixture_plugin_dir("oldminor").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["plugins"].size(), 2u) << r.out;
    EXPECT_EQ(doc["plugins"][0]["targets"], Json::array({"goodos-<edition>", "gooddistro-lts"}));
    EXPECT_EQ(doc["plugins"][1]["targets"], Json::array({"olddistro"}));
    const ProcessResult table = test::run_kbuild({"plugins", "--plugin-dir", fixture_plugin_dir("good").string()});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("TARGETS"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("goodos-<edition>,gooddistro-lts"), std::string::npos) << table.out;
}

// ---- the bundle reader: no distro, its own hooks say what a bundle is ----

TEST(BundleReader, SaysItsTreeIsSelfContainedAndTakesTheSdksDefaults) {
    test::TempDir dir;
    test::write_file(dir / "usr/src/k/.config", "CONFIG_X=y\n");
    test::write_file(dir / "BUNDLE_BUILD_DIR", "./usr/src/k\n");
    const Plugin& bundle = bundle_plugin();
    // No builder family: the kernel's compiler alone picks the image.
    EXPECT_EQ(bundle.builder_family(), "");
    HostContext context;
    context.cache_dir = dir / "cache";
    PluginInstance instance(bundle, context);
    const KernelDir kernel_dir = instance.get_kernel_dir({"6.1.0-1-amd64", dir.path().string()});
    EXPECT_EQ(kernel_dir.kernel_dir, (dir / "usr/src/k").string());
    EXPECT_TRUE(kernel_dir.self_contained);
    // hash_config is the SDK's default: the kernel dir's .config and its MD5.
    const ConfigHash hash = instance.hash_config({"6.1.0-1-amd64", dir.path().string(), kernel_dir.kernel_dir});
    EXPECT_EQ(hash.config, (dir / "usr/src/k/.config").string());
    EXPECT_EQ(hash.md5, md5_file(hash.config));
}
