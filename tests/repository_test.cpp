// The repository stands alone: a fresh clone anywhere passes its tests, so nothing in its
// tests, scripts or build files names a path outside it, and an install into a prefix writes
// only below that prefix.
#include "test_util.h"
#include "util/process.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

// Files that tests, scripts and the build read or run: every file under tests/, scripts/,
// bench/ and .ci/, and every CMake file.
std::vector<fs::path> checked_files() {
    const fs::path root = test::source_dir();
    std::vector<fs::path> files;
    for (const char* dir : {"tests", "scripts", "bench", ".ci"})
        for (const auto& entry : fs::recursive_directory_iterator(root / dir))
            if (entry.is_regular_file()) files.push_back(entry.path());
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        const std::string name = it->path().filename().string();
        if (it->is_directory() && (name == ".git" || name.rfind("build", 0) == 0)) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->is_regular_file() && (name == "CMakeLists.txt" || it->path().extension() == ".cmake"))
            files.push_back(it->path());
    }
    return files;
}

}  // namespace

TEST(Repository, NoTestScriptOrBuildFileNamesAPathOutsideIt) {
    const fs::path root = test::source_dir();
    // Ways out: a climb to a sibling of the checkout, code that climbs above the source
    // directory, or the absolute path of the directory that holds the checkout.
    std::vector<std::pair<std::regex, std::string>> ways_out = {
        // Spelled in parts, so that this file does not name what it looks for.
        {std::regex(R"(\.\./)"
                    "shared"
                    R"(\b)"),
         ".."
         "/shared"},
        {std::regex(R"(source_dir\(\)\s*\.\s*parent_path\(\))"), "source_dir().parent_path()"},
        {std::regex(R"(PROJECT_SOURCE_DIR\}/\.\.)"), "${PROJECT_SOURCE_DIR}/.."},
    };
    // Not when the checkout sits right in a directory the code names for its own reasons (a
    // clone in /tmp: tests write scratch files under /tmp/).
    const std::string above = root.parent_path().string();
    const bool shared_place =
        above == "/" || above == "/tmp" || above == "/var/tmp" || above == "/home" || above == "/root";
    if (!shared_place)
        ways_out.push_back(
            {std::regex(std::regex_replace(above, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") + "/"), above + "/"});
    const fs::path self = fs::path(__FILE__).filename();
    std::vector<std::string> found;
    size_t checked = 0;
    for (const auto& file : checked_files()) {
        if (file.filename() == self) continue;
        ++checked;
        std::ifstream in(file, std::ios::binary);
        int number = 0;
        for (std::string line; std::getline(in, line);) {
            ++number;
            for (const auto& [pattern, shown] : ways_out)
                if (std::regex_search(line, pattern))
                    found.push_back(fs::relative(file, root).string() + ":" + std::to_string(number) + ": names " +
                                    shown);
        }
    }
    EXPECT_GT(checked, 50u);
    std::ostringstream all;
    for (const auto& f : found) all << f << '\n';
    EXPECT_TRUE(found.empty()) << all.str();
}

TEST(Repository, KernelPackerListsAreInTheRepositoryWithTheirSource) {
    const fs::path lists = test::kernel_packer_lists();
    ASSERT_TRUE(fs::is_directory(lists)) << lists;
    const std::string source = test::read_file(lists / "SOURCE");
    EXPECT_NE(source.find("stackrox/kernel-packer"), std::string::npos);
    EXPECT_NE(source.find("Apache-2.0"), std::string::npos);
    EXPECT_TRUE(std::regex_search(source, std::regex("commit [0-9a-f]{40}"))) << source;
    EXPECT_GT(test::list_lines(lists / "debian.txt").size(), 10u);
}

// `cmake --install build --prefix DIR` (and DESTDIR) writes below DIR only: the config goes to
// DIR/etc/kbuild, not to the host's /etc.
TEST(Repository, InstallIntoAPrefixWritesOnlyBelowIt) {
    test::TempDir work;
    const fs::path dest = work / "dest";
    const std::string prefix = "/opt/kbuild-prefix-test";
    ProcessOptions options;
    options.env = {"DESTDIR=" + dest.string()};
    const ProcessResult r = run_process(
        {test::cmake_binary().string(), "--install", test::binary_dir().string(), "--prefix", prefix}, options);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const fs::path installed = dest / prefix.substr(1);
    EXPECT_TRUE(fs::is_regular_file(installed / "bin/kbuild"));
    EXPECT_TRUE(fs::is_regular_file(installed / "etc/kbuild/config.toml"));
    std::vector<std::string> outside;
    for (const auto& entry : fs::recursive_directory_iterator(dest))
        if (!entry.is_directory() && fs::relative(entry.path(), installed).string().rfind("..", 0) == 0)
            outside.push_back(entry.path().string());
    std::ostringstream all;
    for (const auto& f : outside) all << f << '\n';
    EXPECT_TRUE(outside.empty()) << all.str();

    // And the installed kbuild reads that config, found beside its prefix.
    test::write_file(installed / "etc/kbuild/config.toml",
                     "[serve.modules.probe]\npath = \"/nonexistent-module-source\"\nversion = \"1.0\"\n");
    ProcessOptions isolated;
    isolated.env = {"HOME=" + (work / "home").string(), "XDG_CONFIG_HOME=", "KBUILD_CONFIG="};
    const ProcessResult serve = run_process({(installed / "bin/kbuild").string(), "--cache-dir",
                                             (work / "cache").string(), "serve", "--out", (work / "out").string()},
                                            isolated);
    EXPECT_EQ(serve.exit_code, 2);
    EXPECT_NE(serve.err.find("[serve.modules.probe]: path /nonexistent-module-source is not a directory"),
              std::string::npos)
        << serve.err;
}
