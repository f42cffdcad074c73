// A plugin author's path: install the SDK into a prefix, build a plugin out of tree against it
// with find_package(kbuild_sdk) + kbuild_add_plugin, and have kbuild load it and call its hooks.
#include "mirror_server.h"
#include "plugin/host_services.h"
#include "plugin/plugin_host.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

ProcessResult run_checked(const std::vector<std::string>& argv) {
    ProcessResult r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << argv[0] << " " << argv[1] << "\n" << r.out << r.err;
    return r;
}

TEST(SdkInstall, OutOfTreePluginBuildsLoadsAndAnswers) {
    test::TempDir work;
    const std::string cmake = test::cmake_binary().string();
    const fs::path prefix = work / "prefix", build = work / "build";

    run_checked({cmake, "--install", test::binary_dir().string(), "--prefix", prefix.string(), "--component", "sdk"});
    ASSERT_TRUE(fs::exists(prefix / "include/kbuild/plugin_api.h"));

    run_checked({cmake, "-S", (test::source_dir() / "examples/plugin").string(), "-B", build.string(), "-G", "Ninja",
                 "-DCMAKE_PREFIX_PATH=" + prefix.string()});
    run_checked({cmake, "--build", build.string()});
    const fs::path library = build / "libkbuild-example.so";
    ASSERT_TRUE(fs::exists(library));

    // Exactly one exported symbol.
    const ProcessResult nm = run_checked({"nm", "-D", "--defined-only", library.string()});
    std::istringstream lines(nm.out);
    std::vector<std::string> exported;
    for (std::string line; std::getline(lines, line);) {
        std::istringstream fields(line);
        std::string address, type, name;
        fields >> address >> type >> name;
        if (!name.empty()) exported.push_back(name);
    }
    EXPECT_EQ(exported, std::vector<std::string>{"kbuild_plugin_entry"});

    // kbuild lists it.
    const ProcessResult listed = test::run_kbuild({"plugins", "--output", "json", "--plugin-dir", build.string()});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    const Json doc = Json::parse(listed.out);
    ASSERT_EQ(doc["plugins"].size(), 1u) << listed.out;
    EXPECT_EQ(doc["plugins"][0]["name"], "example");
    EXPECT_EQ(doc["plugins"][0]["distros"], Json::array({"exampleos"}));

    // And its hooks answer.
    PluginHost host;
    ASSERT_FALSE(host.load_file(library));
    HostContext context;
    context.cache_dir = work / "cache";
    PluginInstance instance(*host.plugins().front(), context);
    BatchRequest request;
    request.names_only = true;
    request.files = {"https://mirror.invalid/pool/exampleos-headers-6.6.1-3.tar.gz",
                     "https://mirror.invalid/pool/README"};
    const ReleaseList list = instance.batch_packages(request);
    ASSERT_EQ(list.releases.size(), 1u);
    EXPECT_EQ(list.releases[0].release, "6.6.1-3");
    ASSERT_EQ(list.unclaimed.size(), 1u);
    EXPECT_EQ(list.unclaimed[0].file, "https://mirror.invalid/pool/README");

    // hash_config is the SDK's default, which the example does not write: the .config's MD5.
    test::write_file(work / "root/usr/src/linux-6.6.1-3/.config", "CONFIG_EXAMPLE=y\n");
    const KernelDir dir = instance.get_kernel_dir({"6.6.1-3", (work / "root").string()});
    const ConfigHash hash = instance.hash_config({"6.6.1-3", (work / "root").string(), dir.kernel_dir});
    EXPECT_EQ(hash.config, (work / "root/usr/src/linux-6.6.1-3/.config").string());
    EXPECT_EQ(hash.md5, md5_file(hash.config));

    // Its crawl reads a mirror's SHA256SUMS through the host's fetch; --latest 1 keeps the
    // newest by the host's natural order (the example has no compare_releases).
    test::write_file(work / "mirror/SHA256SUMS", std::string(64, 'a') + "  exampleos-headers-6.6.9-1.tar.gz\n" +
                                                     std::string(64, 'b') + "  exampleos-headers-6.6.10-1.tar.gz\n" +
                                                     std::string(64, 'c') + "  README\n");
    test::MirrorServer mirror(work / "mirror");
    const ProcessResult crawled =
        test::run_kbuild({"--cache-dir", (work / "cache").string(), "crawl", "--plugin-dir", build.string(), "--distro",
                          "exampleos", "--mirror", mirror.url(), "--latest", "1", "--output", "json"});
    ASSERT_EQ(crawled.exit_code, 0) << crawled.err;
    const Json releases = Json::parse(crawled.out)["releases"];
    ASSERT_EQ(releases.size(), 1u) << crawled.out;
    EXPECT_EQ(releases[0]["kernelrelease"], "6.6.10-1") << crawled.out;
    EXPECT_EQ(releases[0]["packages"][0]["url"], mirror.url() + "/exampleos-headers-6.6.10-1.tar.gz") << crawled.out;
    EXPECT_EQ(releases[0]["packages"][0]["sha256"], std::string(64, 'b')) << crawled.out;
}

}  // namespace
