// The plugin host against real plugins built for each way a plugin can meet or break the ABI.
#include "plugin/plugin_host.h"
#include "plugin/host_services.h"
#include "test_util.h"
#include "util/process.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace kbuild;
using kbuild::test::fixture_plugin_dir;

namespace {

fs::path plugin_file(const std::string& variant, const std::string& name) {
    return fixture_plugin_dir(variant) / ("libkbuild-" + name + ".so");
}

std::string refusal_of(const std::string& variant, const std::string& name) {
    PluginHost host;
    auto refusal = host.load_file(plugin_file(variant, name));
    EXPECT_TRUE(refusal.has_value()) << variant << " was accepted";
    EXPECT_TRUE(host.plugins().empty());
    return refusal ? refusal->message() : "";
}

TEST(PluginHost, LoadsAGoodPluginWithItsMetadata) {
    PluginHost host;
    ASSERT_FALSE(host.load_file(plugin_file("good", "good")));
    ASSERT_EQ(host.plugins().size(), 1u);
    const Plugin& plugin = *host.plugins().front();
    EXPECT_EQ(plugin.name(), "good");
    EXPECT_EQ(plugin.version(), "1.2.3");
    EXPECT_EQ(plugin.abi_major(), unsigned{KBUILD_PLUGIN_ABI_MAJOR});
    EXPECT_EQ(plugin.abi_minor(), unsigned{KBUILD_PLUGIN_ABI_MINOR});
    EXPECT_EQ(plugin.distros(), (std::vector<std::string>{"gooddistro", "gooddistro-lts"}));
    EXPECT_EQ(plugin.builder_family(), "debian");
    EXPECT_EQ(host.find("gooddistro-lts"), &plugin);
    EXPECT_EQ(host.find("centos"), nullptr);
}

TEST(PluginHost, RefusesAnotherAbiMajorNamingBothVersions) {
    EXPECT_EQ(refusal_of("othermajor", "othermajor"),
              plugin_file("othermajor", "othermajor").string() +
                  ": refused: plugin ABI 2.0 is not compatible with kbuild's ABI " + test::kAbi +
                  " (major "
                  "versions differ)");
}

TEST(PluginHost, RefusesANewerMinor) {
    EXPECT_EQ(refusal_of("newminor", "newminor"), plugin_file("newminor", "newminor").string() +
                                                      ": refused: plugin ABI " + test::kNextMinor +
                                                      " is newer than kbuild's ABI " + test::kAbi +
                                                      " (rebuild the plugin "
                                                      "against this SDK or upgrade kbuild)");
}

TEST(PluginHost, AcceptsAnOlderMinorAndReadsNewerHooksAsAbsent) {
    PluginHost host;
    ASSERT_FALSE(host.load_file(plugin_file("oldminor", "oldminor")));
    const Plugin& plugin = *host.plugins().front();
    EXPECT_EQ(plugin.abi_minor(), 0u);
    // The library's table has describe set, but its struct_size (ABI 1.0) ends before it.
    EXPECT_EQ(plugin.api().describe, nullptr);
    HostContext context;
    PluginInstance instance(plugin, context);
    EXPECT_FALSE(instance.describe().has_value());
    EXPECT_TRUE(instance.batch_packages({}).releases.empty());
}

TEST(PluginHost, RefusesAMissingRequiredHook) {
    EXPECT_EQ(refusal_of("nounpack", "nounpack"),
              plugin_file("nounpack", "nounpack").string() + ": refused: missing required hook 'unpack'");
}

TEST(PluginHost, RefusesAFileNamedUnlikeItsPlugin) {
    EXPECT_EQ(refusal_of("misnamed", "misnamed"),
              plugin_file("misnamed", "misnamed").string() +
                  ": refused: file name 'libkbuild-misnamed.so' does not match the plugin's name "
                  "'renamed' (expected 'libkbuild-renamed.so')");
}

TEST(PluginHost, RefusesASharedObjectThatIsNotAPlugin) {
    EXPECT_EQ(refusal_of("notaplugin", "notaplugin"),
              plugin_file("notaplugin", "notaplugin").string() +
                  ": refused: not a kbuild plugin (no 'kbuild_plugin_entry' symbol)");
}

TEST(PluginHost, RefusesAFileThatIsNotAnObjectAtAll) {
    test::TempDir dir;
    test::write_file(dir / "libkbuild-text.so", "this is not ELF\n");
    PluginHost host;
    auto refusal = host.load_file(dir / "libkbuild-text.so");
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->message().rfind((dir / "libkbuild-text.so").string() + ": refused: cannot load: ", 0), 0u)
        << refusal->message();
    EXPECT_NE(refusal->message().find("libkbuild-text.so"), std::string::npos);
}

TEST(PluginHost, LoadsTheRestWhenSomeAreRefused) {
    PluginHost host;
    host.load_directories({fixture_plugin_dir("othermajor"), fixture_plugin_dir("good"), fixture_plugin_dir("nounpack"),
                           fixture_plugin_dir("oldminor"), fixture_plugin_dir("does-not-exist")});
    ASSERT_EQ(host.plugins().size(), 2u);
    EXPECT_EQ(host.plugins()[0]->name(), "good");
    EXPECT_EQ(host.plugins()[1]->name(), "oldminor");
    ASSERT_EQ(host.refusals().size(), 2u);
    EXPECT_EQ(host.refusals()[0].path, plugin_file("othermajor", "othermajor"));
    EXPECT_EQ(host.refusals()[1].path, plugin_file("nounpack", "nounpack"));
}

TEST(PluginHost, FirstPluginOnTheSearchPathWinsADistro) {
    PluginHost host;
    host.load_directories({fixture_plugin_dir("good"), fixture_plugin_dir("rival")});
    ASSERT_EQ(host.plugins().size(), 2u);
    EXPECT_EQ(host.find("gooddistro")->name(), "good");
    EXPECT_EQ(host.find("rivaldistro")->name(), "rival");
    EXPECT_EQ(host.plugins()[1]->distros(), std::vector<std::string>{"rivaldistro"});

    PluginHost reversed;
    reversed.load_directories({fixture_plugin_dir("rival"), fixture_plugin_dir("good")});
    EXPECT_EQ(reversed.find("gooddistro")->name(), "rival");
    EXPECT_EQ(reversed.find("gooddistro-lts")->name(), "good");
}

TEST(PluginHost, RefusesAPluginWhoseEveryDistroIsTaken) {
    PluginHost host;
    host.load_directories({fixture_plugin_dir("good"), fixture_plugin_dir("good")});
    EXPECT_EQ(host.plugins().size(), 1u);  // the same directory twice is searched once
    auto refusal = host.load_file(plugin_file("good", "good"));
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->reason, "every distro it serves is already served by an earlier plugin");
}

class GoodPlugin : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_FALSE(host_.load_file(plugin_file("good", "good")));
        context_.cache_dir = cache_.path();
    }
    PluginHost host_;
    HostContext context_;
    test::TempDir cache_;
};

TEST_F(GoodPlugin, CrawlRoundTripsRequestAndReleases) {
    PluginInstance instance(*host_.plugins().front(), context_);
    ASSERT_TRUE(instance.can_crawl());
    CrawlRequest request;
    request.distro = "gooddistro";
    request.arch = "arm64";
    request.mirrors = {"http://127.0.0.1:9/a", "http://127.0.0.1:9/b"};
    request.options = {{"releases", "6.1.0-1-amd64,6.1.0-2-amd64"}};
    const ReleaseList list = instance.crawl(request);
    ASSERT_EQ(list.releases.size(), 2u);
    EXPECT_EQ(list.releases[1].release, "6.1.0-2-amd64");
    EXPECT_EQ(list.releases[1].arch, "arm64");
    ASSERT_EQ(list.releases[1].packages.size(), 2u);
    EXPECT_EQ(list.releases[1].packages[1].url, "http://127.0.0.1:9/b/testkernel-headers-6.1.0-2-amd64.pkg");
}

TEST_F(GoodPlugin, BatchGroupsFilesAndNamesWhatItCannotPlace) {
    PluginInstance instance(*host_.plugins().front(), context_);
    BatchRequest request;
    request.files = {"/x/testkernel-headers-5.10.0-9-amd64.pkg", "/y/readme.txt"};
    const ReleaseList list = instance.batch_packages(request);
    ASSERT_EQ(list.releases.size(), 1u);
    EXPECT_EQ(list.releases[0].release, "5.10.0-9-amd64");
    EXPECT_EQ(list.releases[0].packages[0].path, "/x/testkernel-headers-5.10.0-9-amd64.pkg");
    ASSERT_EQ(list.unclaimed.size(), 1u);
    EXPECT_EQ(list.unclaimed[0].file, "/y/readme.txt");
}

TEST_F(GoodPlugin, KernelDirAndConfigHashMatchMd5sum) {
    PluginInstance instance(*host_.plugins().front(), context_);
    test::TempDir root;
    const fs::path kdir = root / "usr/src/testkernel-6.1.0-9-amd64";
    test::write_file(kdir / ".config", "CONFIG_MODULES=y\nCONFIG_SMP=y\n");
    const KernelDir dir = instance.get_kernel_dir({"6.1.0-9-amd64", root.path().string()});
    EXPECT_EQ(dir.kernel_dir, kdir.string());
    const ConfigHash hash = instance.hash_config({"6.1.0-9-amd64", root.path().string(), dir.kernel_dir});
    const ProcessResult md5sum = run_process({"md5sum", (kdir / ".config").string()});
    EXPECT_EQ(hash.md5, md5sum.out.substr(0, 32));
    EXPECT_EQ(hash.config, (kdir / ".config").string());

    try {
        instance.get_kernel_dir({"6.1.0-10-amd64", root.path().string()});
        FAIL() << "no error for a missing tree";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "good: get_kernel_dir: " + root.path().string() +
                                             "/usr/src/testkernel-6.1.0-10-amd64: no kernel tree");
    }
}

TEST_F(GoodPlugin, ServicesTheHostDoesNotOfferReadAsNotSupported) {
    PluginInstance instance(*host_.plugins().front(), context_);  // context offers no extract
    UnpackRequest request;
    request.release.packages = {{"p", "", "/nonexistent.pkg"}};
    request.dest = cache_.path().string();
    EXPECT_THROW(instance.unpack(request), NotSupported);
}

TEST_F(GoodPlugin, HostServicesReachThePlugin) {
    std::vector<std::string> asked;
    context_.extract = [&](const std::string& request) {
        asked.push_back(request);
        return std::string(R"({"schema":1,"dest":"/d","entries":3})");
    };
    PluginInstance instance(*host_.plugins().front(), context_);
    UnpackRequest request;
    request.release.packages = {{"p", "", "/a.pkg"}, {"q", "", "/b.pkg"}};
    request.dest = "/d";
    EXPECT_EQ(instance.unpack(request).root, "/d");
    ASSERT_EQ(asked.size(), 2u);
    const Json second = Json::parse(asked[1]);
    EXPECT_EQ(second["archive"], "/b.pkg");
    EXPECT_EQ(second["dest"], "/d");
    EXPECT_EQ(second["schema"], kSchema);
}

TEST_F(GoodPlugin, AServiceErrorReachesTheHostAsTheHookError) {
    context_.extract = [](const std::string&) -> std::string { throw Error("/a.pkg: truncated archive"); };
    PluginInstance instance(*host_.plugins().front(), context_);
    UnpackRequest request;
    request.release.packages = {{"p", "", "/a.pkg"}};
    try {
        instance.unpack(request);
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "good: unpack: /a.pkg: truncated archive");
    }
}

TEST_F(GoodPlugin, DescribeListsOptions) {
    PluginInstance instance(*host_.plugins().front(), context_);
    auto description = instance.describe();
    ASSERT_TRUE(description);
    ASSERT_EQ(description->options.size(), 1u);
    EXPECT_EQ(description->options[0].name, "releases");
}

class ThrowingPlugin : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_FALSE(host_.load_file(plugin_file("throwing", "throwing"))); }
    std::string error_of(const std::function<void(PluginInstance&)>& call) {
        PluginInstance instance(*host_.plugins().front(), context_);
        try {
            call(instance);
        } catch (const Error& e) {
            return e.what();
        }
        return "no error";
    }
    PluginHost host_;
    HostContext context_;
};

TEST_F(ThrowingPlugin, ExceptionTextReachesTheHost) {
    EXPECT_EQ(error_of([](PluginInstance& p) {
                  p.crawl({"throwdistro", "amd64", {"http://m"}, {}});
              }),
              "throwing: crawl: mirror http://m answered 503");
    EXPECT_EQ(error_of([](PluginInstance& p) { p.hash_config({}); }),
              "throwing: hash_config: no .config in the headers package");
    EXPECT_EQ(error_of([](PluginInstance& p) { p.batch_packages({}); }), "throwing: batch_packages: unknown exception");
    const std::string out_of_range = error_of([](PluginInstance& p) { p.get_kernel_dir({}); });
    EXPECT_EQ(out_of_range.rfind("throwing: get_kernel_dir: ", 0), 0u) << out_of_range;
}

TEST_F(ThrowingPlugin, NotSupportedIsItsOwnError) {
    PluginInstance instance(*host_.plugins().front(), context_);
    EXPECT_THROW(instance.unpack({}), NotSupported);
    // The instance still answers after every failure.
    EXPECT_THROW(instance.hash_config({}), Error);
}

TEST_F(ThrowingPlugin, AFailedCreateIsAnError) {
    try {
        PluginInstance instance(*host_.plugins().front(), context_, {{"refuse_to_start", true}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "throwing: create failed");
    }
}

}  // namespace
