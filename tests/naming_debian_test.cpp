// A real Debian kernel built once per naming preset (labels network, slow): each artifact where
// its preset says, the collector's gzip-compressed, index.json naming the template.
#include "output/artifacts.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <map>
#include <regex>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// One real kernel built three times, once per preset: each artifact where its preset says, the
// collector's gzip-compressed; index.json names the template; a wrong preset is a usage error.
TEST(NamingDebian, ARealBuildNamedByEachPreset) {
    test::TempDir dir;
    const auto build = [&](const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> args{"--cache-dir",
                                      (test::binary_dir() / "test-cache").string(),
                                      "build",
                                      "--distro",
                                      "debian",
                                      "--option",
                                      "suites=bookworm,bookworm-updates,bookworm-security",
                                      "--kernel",
                                      "^6\\.1\\.0-[0-9]+-amd64$",
                                      "--latest",
                                      "1",
                                      "--builder",
                                      "local",
                                      "--module-src",
                                      (test::source_dir() / "examples/hello").string(),
                                      "--out",
                                      (dir / out).string()};
        args.insert(args.end(), extra.begin(), extra.end());
        return test::run_kbuild(args);
    };
    const std::map<std::string, std::string> patterns = {
        {"falco", R"(1\.0\.0/x86_64/falco_debian_(6\.1\.0-\d+-amd64)_1\.ko)"},
        {"collector", R"(1\.0\.0/collector-(6\.1\.0-\d+-amd64)\.ko\.gz)"},
        {"service", R"(v1/module/debian/x86_64/1\.0\.0/(6\.1\.0-\d+-amd64)/1/[0-9a-f]{64}/hello\.ko)"},
    };
    for (const auto& [preset, pattern] : patterns) {
        const ProcessResult r = build(preset, {"--naming", preset});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const Json index = Json::parse(test::read_file(dir / preset / "index.json"));
        const Json& target = index["targets"][0];
        EXPECT_EQ(target["naming"], naming_preset(preset));
        const std::string path = target["artifacts"][0]["path"];
        std::smatch m;
        ASSERT_TRUE(std::regex_match(path, m, std::regex(pattern))) << preset << ": " << path;
        EXPECT_EQ(m[1], target["kernelrelease"].get<std::string>());
        fs::path module = dir / preset / path;
        if (preset == "collector") {
            ASSERT_EQ(run_process({"gzip", "-dk", module.string()}).exit_code, 0);
            module = module.replace_extension();  // .ko.gz -> .ko
        }
        const ProcessResult vermagic = run_process({"modinfo", "-F", "vermagic", module.string()});
        EXPECT_EQ(vermagic.out.rfind(target["kernelrelease"].get<std::string>() + " ", 0), 0u) << vermagic.out;
    }
    const ProcessResult bad = build("bad", {"--naming-template", "{module}-{kernel}.ko"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("no field {kernel}"), std::string::npos) << bad.err;
}

}  // namespace
