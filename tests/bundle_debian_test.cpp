// A bundle of a real Debian kernel (the Debian mirror, labels docker, network, slow): written by
// kbuild bundle, then built from alone, in a container without network, with an empty cache and
// no plugins: the same artifact, byte for byte, as the build from the packages.
#include "plugin/bundle.h"
#include "test_util.h"

#include <kbuild/digest.hpp>
#include <kbuild/types.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSuites = "suites=bookworm,bookworm-updates,bookworm-security";
const std::string kKernel = "^6\\.1\\.0-[0-9]+-amd64$";

std::string shared_cache() {
    return (test::binary_dir() / "test-cache").string();
}

TEST(BundleDebian, ABundleBuildsOfflineAsThePackagesDo) {
    test::TempDir dir;
    const ProcessResult made = test::run_kbuild({"--cache-dir", shared_cache(), "bundle", "--distro", "debian",
                                                 "--option", kSuites, "--kernel", kKernel, "--latest", "1", "--out",
                                                 (dir / "bundles").string(), "--output", "json"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    const Json bundles = Json::parse(made.out)["bundles"];
    ASSERT_EQ(bundles.size(), 1u) << made.out;
    const std::string release = bundles[0]["kernelrelease"];
    const fs::path bundle = dir / "bundles" / ("bundle-" + release + ".tgz");
    EXPECT_EQ(bundles[0]["file"], bundle.string());
    ASSERT_TRUE(fs::is_regular_file(bundle));

    // The kernel-packer meta files, as a consumer reads them.
    const BundleMeta meta = read_bundle_meta(bundle);
    EXPECT_EQ(meta.uname, release);
    EXPECT_EQ(meta.distro, "debian");
    EXPECT_EQ(meta.build_dir, "./usr/src/linux-headers-" + release);
    EXPECT_EQ(meta.version + "." + meta.major + "." + meta.minor, "6.1.0");
    EXPECT_EQ(meta.checksum, bundles[0]["checksum"]);
    EXPECT_EQ(meta.checksum.size(), 64u);
    // Pruned: the x86 tree is in, arm64's is not; a bundle is far smaller than the tree.
    const ProcessResult listing = run_process({"tar", "-tzf", bundle.string()});
    ASSERT_EQ(listing.exit_code, 0);
    EXPECT_NE(listing.out.find("/arch/x86/include/asm/"), std::string::npos);
    EXPECT_EQ(listing.out.find("/arch/arm64/"), std::string::npos);
    EXPECT_LT(fs::file_size(bundle), 40u << 20);

    // From the bundle alone: no plugin directory, an empty cache, a container with no network.
    const fs::path empty_plugins = dir / "no-plugins";
    fs::create_directories(empty_plugins);
    const ProcessResult from_bundle =
        test::run_kbuild({"--plugin-dir", empty_plugins.string(), "--cache-dir", (dir / "cache").string(), "build",
                          "--builder", "docker", "--from-bundle", bundle.string(), "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (dir / "from-bundle").string()});
    ASSERT_EQ(from_bundle.exit_code, 0) << from_bundle.err;
    EXPECT_FALSE(fs::exists(dir / "cache/downloads"));
    const Json target = Json::parse(test::read_file(dir / "from-bundle/index.json"))["targets"][0];
    EXPECT_EQ(target["status"], "built");
    EXPECT_EQ(target["distro"], "debian");
    EXPECT_EQ(target["kernelrelease"], release);
    EXPECT_NE(test::read_file(dir / "from-bundle" / target["log"].get<std::string>()).find("docker run --network none"),
              std::string::npos);
    const fs::path module = dir / "from-bundle" / target["artifacts"][0]["path"].get<std::string>();
    const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", module.string()});
    EXPECT_EQ(vermagic.out.rfind(release + " SMP preempt mod_unload modversions", 0), 0u) << vermagic.out;

    // The same kernel from its packages: the same name, the same bytes.
    const ProcessResult from_packages =
        test::run_kbuild({"--cache-dir", shared_cache(), "build", "--builder", "docker", "--distro", "debian",
                          "--option", kSuites, "--kernel", "^" + release + "$", "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (dir / "from-packages").string()});
    ASSERT_EQ(from_packages.exit_code, 0) << from_packages.err;
    const Json direct = Json::parse(test::read_file(dir / "from-packages/index.json"))["targets"][0];
    EXPECT_EQ(direct["artifacts"][0]["path"], target["artifacts"][0]["path"]);
    EXPECT_EQ(direct["config_md5"], target["config_md5"]);
    EXPECT_EQ(sha256_file((dir / "from-packages" / direct["artifacts"][0]["path"].get<std::string>()).string()),
              sha256_file(module.string()));

    // A bundle cut short is named, and nothing is built from it.
    const fs::path cut = dir / ("bundle-" + release + "-cut.tgz");
    {
        const std::string bytes = test::read_file(bundle);
        test::write_file(cut, bytes.substr(0, bytes.size() / 2));
    }
    const ProcessResult from_cut =
        test::run_kbuild({"--plugin-dir", empty_plugins.string(), "--cache-dir", (dir / "cache").string(), "build",
                          "--builder", "docker", "--from-bundle", cut.string(), "--module-src",
                          (test::source_dir() / "examples/hello").string(), "--out", (dir / "from-cut").string()});
    EXPECT_EQ(from_cut.exit_code, 1);
    EXPECT_NE(from_cut.err.find(cut.string() + ": gzip data is truncated"), std::string::npos) << from_cut.err;
}

}  // namespace
