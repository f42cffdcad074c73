// The command line as a user meets it: the kbuild binary, its output and exit codes.
#include "test_util.h"
#include "util/table.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;
using test::fixture_plugin_dir;
using test::run_kbuild;

namespace {

TEST(Cli, VersionNamesTheAbi) {
    const ProcessResult r = run_kbuild({"--version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "kbuild 0.1.0 (plugin ABI " + test::kAbi + ")\n");
}

TEST(Cli, NoVerbOrAnUnknownOneIsBadUsage) {
    EXPECT_EQ(run_kbuild({}).exit_code, 2);
    const ProcessResult r = run_kbuild({"frobnicate"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("frobnicate"), std::string::npos) << r.err;
}

TEST(Cli, AConfigFileIsCheckedAndNamedInItsErrors) {
    test::TempDir dir;
    test::write_file(dir / "kbuild.toml", "[debian]\nmirrors = [\"http://127.0.0.1:9\"]\n");
    ProcessResult r = run_kbuild({"--config", (dir / "kbuild.toml").string(), "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(
        r.err,
        "error: " + (dir / "kbuild.toml").string() +
            ":2:1: [debian] mirrors: unknown key (mirror, option, keyring, mirror-keyring and verify are known)\n");
    r = run_kbuild({"--config", (dir / "missing.toml").string(), "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: " + (dir / "missing.toml").string() + ": no such config file\n");
}

// A syntax error, and a value of the wrong type, are named by line and column.
TEST(Cli, AConfigFilesErrorsGiveLineAndColumn) {
    test::TempDir dir;
    const std::string file = (dir / "kbuild.toml").string();
    test::write_file(file, "[debian]\nmirror = [\"http://127.0.0.1:9\"]\noption = [\"suites=bookworm\"\n");
    ProcessResult r = run_kbuild({"--config", file, "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(std::regex_match(r.err, std::regex("error: " + test::regex_literal(file) + ":[34]:[0-9]+: [^\n]+\n")))
        << r.err;

    test::write_file(file, "[debian]\nmirror = [\"http://127.0.0.1:9\"]\nverify = 3\n");
    r = run_kbuild({"--config", file, "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: " + file + ":3:10: [debian] verify: '3' is not true or false\n");

    test::write_file(file, "[debian]\n\n  option = [\"suites=bookworm\", 7]\n");
    r = run_kbuild({"--config", file, "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: " + file + ":3:12: [debian] option: expected a string or an array of strings\n");
}

// The config's mirror stands in for --mirror; an unreachable one is named in the error.
TEST(Cli, AConfigFileGivesTheDistrosMirrorAndOptions) {
    test::TempDir dir;
    test::write_file(dir / "kbuild.toml",
                     "[debian]\nmirror = [\"http://127.0.0.1:9\"]\n"
                     "option = [\"suites=bookworm\"]\n[ubuntu]\nmirror = \"http://127.0.0.1:7\"\n");
    const ProcessResult r = run_kbuild({"--config", (dir / "kbuild.toml").string(), "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(
        r.err.find("suites bookworm on any mirror (http://127.0.0.1:9/dists/bookworm/Release: connection refused"),
        std::string::npos)
        << r.err;
}

// The names a help text lists under "Subcommands:", as CLI11 prints them.
std::vector<std::string> subcommands_of(const std::string& help) {
    const std::string heading = "\nSubcommands:\n";
    const size_t at = help.find(heading);
    if (at == std::string::npos) return {};
    std::istringstream lines(help.substr(at + heading.size()));
    std::vector<std::string> names;
    for (std::string line; std::getline(lines, line) && line.rfind("  ", 0) == 0;) {
        std::istringstream words(line);
        std::string name;
        words >> name;
        names.push_back(name);
    }
    return names;
}

// Every verb kbuild --help lists, and their own subcommands (images build, index merge), down
// to the last: each help ends with an example running that verb.
TEST(Cli, EveryVerbHelpHasAnExample) {
    std::vector<std::string> checked;
    std::function<void(const std::vector<std::string>&)> check = [&](const std::vector<std::string>& verb) {
        std::vector<std::string> args = verb;
        args.push_back("--help");
        const ProcessResult r = run_kbuild(args);
        const std::string name = join(verb, " ");
        if (!verb.empty()) {
            checked.push_back(name);
            EXPECT_EQ(r.exit_code, 0) << name;
            const size_t example = r.out.find("Example:\n  kbuild ");
            if (example == std::string::npos) {
                ADD_FAILURE() << name << " has no example:\n" << r.out;
            } else {
                const size_t line = example + std::string("Example:\n").size();
                const std::string command = r.out.substr(line, r.out.find('\n', line) - line) + " ";
                EXPECT_NE(command.find(" " + name + " "), std::string::npos) << name << ": " << command;
            }
        }
        for (const auto& sub : subcommands_of(r.out)) {
            std::vector<std::string> deeper = verb;
            deeper.push_back(sub);
            check(deeper);
        }
    };
    check({});
    // What the walk must have found, so a change in the help's layout cannot make it check nothing.
    for (const char* verb : {"plugins", "crawl", "batch", "build", "bundle", "images", "images build", "images list",
                             "serve", "index", "index merge"})
        EXPECT_NE(std::find(checked.begin(), checked.end(), verb), checked.end()) << verb << " was not checked";
}

TEST(Cli, PluginsAsJsonListsLoadedAndRefused) {
    const ProcessResult r =
        run_kbuild({"plugins", "--output", "json", "--plugin-dir", fixture_plugin_dir("good").string(), "--plugin-dir",
                    fixture_plugin_dir("othermajor").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["plugins"].size(), 1u);
    const Json& good = doc["plugins"][0];
    EXPECT_EQ(good["name"], "good");
    EXPECT_EQ(good["version"], "1.2.3");
    EXPECT_EQ(good["abi"], test::kAbi);
    EXPECT_EQ(good["distros"], Json::array({"gooddistro", "gooddistro-lts"}));
    EXPECT_EQ(good["builder_family"], "debian");
    EXPECT_EQ(good["path"], (fixture_plugin_dir("good") / "libkbuild-good.so").string());
    ASSERT_EQ(doc["refused"].size(), 1u);
    EXPECT_EQ(doc["refused"][0]["reason"],
              "plugin ABI 2.0 is not compatible with kbuild's ABI " + test::kAbi + " (major versions differ)");
    // The refusal is also the one warning line on stderr; stdout stays pure JSON.
    EXPECT_EQ(r.err, "warning: " + (fixture_plugin_dir("othermajor") / "libkbuild-othermajor.so").string() +
                         ": refused: plugin ABI 2.0 is not compatible with kbuild's ABI " + test::kAbi +
                         " (major "
                         "versions differ)\n");
}

TEST(Cli, PluginsTableHasAHeaderAndARowPerPlugin) {
    const ProcessResult r = run_kbuild({"plugins", "--plugin-dir", fixture_plugin_dir("good").string(), "--plugin-dir",
                                        fixture_plugin_dir("oldminor").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string header, first, second;
    std::getline(lines, header), std::getline(lines, first), std::getline(lines, second);
    EXPECT_EQ(header.rfind("NAME", 0), 0u);
    EXPECT_NE(header.find("DISTROS"), std::string::npos);
    EXPECT_EQ(first.rfind("good ", 0), 0u) << first;
    EXPECT_NE(first.find("gooddistro,gooddistro-lts"), std::string::npos);
    EXPECT_EQ(second.rfind("oldminor ", 0), 0u) << second;
    EXPECT_NE(second.find(" 1.0 "), std::string::npos) << second;
}

// A typo in an option would be ignored and widen the work (every suite crawled): each verb that
// takes --option refuses a key the plugin does not declare, naming the ones it does.
TEST(Cli, AnOptionThePluginDoesNotDeclareIsBadUsageNamingTheDeclaredOnes) {
    const std::string said = "error: debian: unknown option 'serie' (options: suites, components)\n";
    ProcessResult r = run_kbuild({"crawl", "--distro", "debian", "--option", "serie=jammy"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, said);
    EXPECT_EQ(r.out, "");

    test::TempDir dir;
    const std::string deb = (dir / "linux-headers-6.1.0-9-amd64_6.1.27-1_amd64.deb").string();
    test::write_file(deb, "");
    const std::string hello = (test::source_dir() / "examples/hello").string();
    for (const auto& args : std::vector<std::vector<std::string>>{
             // Files first: --option takes every word after it as a value.
             {"batch", deb, "--distro", "debian", "--option", "serie=jammy"},
             {"build", deb, "--builder", "local", "--distro", "debian", "--module-src", hello, "--out",
              (dir / "out").string(), "--option", "serie=jammy"},
             {"bundle", deb, "--distro", "debian", "--out", (dir / "bundles").string(), "--option", "serie=jammy"}}) {
        r = run_kbuild(args);
        EXPECT_EQ(r.exit_code, 2) << args[0];
        EXPECT_EQ(r.err, said) << args[0];
    }

    // From the config file: the file is named.
    test::write_file(dir / "kbuild.toml", "[debian]\noption = [\"suites=bookworm\", \"serie=jammy\"]\n");
    r = run_kbuild({"--config", (dir / "kbuild.toml").string(), "crawl", "--distro", "debian"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: debian: unknown option 'serie' in " + (dir / "kbuild.toml").string() +
                         " (options: suites, components)\n");

    const std::string good = fixture_plugin_dir("good").string();
    r = run_kbuild({"crawl", "--plugin-dir", good, "--distro", "gooddistro", "--option", "release=6.1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: gooddistro: unknown option 'release' (options: releases)\n");
    r = run_kbuild({"crawl", "--plugin-dir", good, "--distro", "gooddistro", "--mirror", "http://m", "--option",
                    "releases=6.1", "--output", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out)["releases"][0]["kernelrelease"], "6.1");
}

// A plugin without describe declares nothing: every option reaches it, as before.
TEST(Cli, APluginWithoutDescribeTakesAnyOption) {
    const ProcessResult r = run_kbuild({"crawl", "--plugin-dir", fixture_plugin_dir("oldminor").string(), "--distro",
                                        "olddistro", "--option", "anything=1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "info: 0 releases\n");
}

TEST(Cli, PluginsListTheirOptionsAndDefaults) {
    const std::vector<std::string> dirs = {"--plugin-dir", fixture_plugin_dir("good").string(), "--plugin-dir",
                                           fixture_plugin_dir("oldminor").string()};
    std::vector<std::string> args = {"plugins", "--output", "json"};
    args.insert(args.end(), dirs.begin(), dirs.end());
    ProcessResult r = run_kbuild(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json doc = Json::parse(r.out);
    ASSERT_EQ(doc["plugins"].size(), 2u);
    EXPECT_EQ(
        doc["plugins"][0]["options"],
        Json::parse(R"([{"name": "releases", "default": "", "help": "comma-separated releases crawl reports"}])"));
    EXPECT_TRUE(doc["plugins"][1]["options"].is_null()) << doc["plugins"][1];

    args = {"plugins"};
    args.insert(args.end(), dirs.begin(), dirs.end());
    r = run_kbuild(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string options = r.out.substr(r.out.find("\n\n") + 2);
    EXPECT_EQ(options,
              "PLUGIN    OPTION    HELP                                     DEFAULT\n"
              "good      releases  comma-separated releases crawl reports\n"
              "oldminor  -         not declared: every option is passed on\n");

    // The shipped Debian plugin, from the default search path.
    r = run_kbuild({"plugins", "--output", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Json listed = Json::parse(r.out);
    Json debian;
    for (const auto& plugin : listed["plugins"])
        if (plugin["name"] == "debian") debian = plugin["options"];
    ASSERT_EQ(debian.size(), 2u) << debian;
    EXPECT_EQ(debian[0]["name"], "suites");
    EXPECT_NE(debian[0]["default"].get<std::string>().find("bookworm"), std::string::npos) << debian;
    EXPECT_EQ(debian[1],
              Json::parse(R"({"name": "components", "default": "main", "help": "comma-separated components"})"));
}

// Where a package file is expected, a directory is said to be one, not a missing file.
TEST(Cli, ADirectoryGivenForAPackageFileIsNamedAsOne) {
    test::TempDir dir;
    fs::create_directories(dir / "some_dir");
    ProcessOptions in_dir;
    in_dir.cwd = dir.path();
    const std::string hello = (test::source_dir() / "examples/hello").string();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"batch", "--distro", "debian", "some_dir/"},
             {"build", "--builder", "local", "--distro", "debian", "--module-src", hello, "some_dir/"},
             {"bundle", "--distro", "debian", "some_dir/"},
             {"build", "--builder", "local", "--from-bundle", "some_dir/", "--module-src", hello}}) {
        const ProcessResult r = run_kbuild(args, in_dir);
        EXPECT_EQ(r.exit_code, 2) << args[0];
        EXPECT_EQ(r.err, "error: some_dir/: is a directory, not a package file\n") << args[0];
    }
    ProcessResult r = run_kbuild({"batch", "--distro", "debian", "missing.deb"}, in_dir);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: missing.deb: no such file\n");
    // A list that is a directory would read as an empty one.
    r = run_kbuild({"batch", "--distro", "debian", "--from-list", "some_dir"}, in_dir);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "error: some_dir: is a directory, not a list of packages\n");
}

// The summary is build's data in table output: on stdout, not among the logs.
TEST(Cli, BuildPrintsItsSummaryOnStdout) {
    test::TempDir dir;
    const std::string package = (dir / "testkernel-headers-6.1.0-9-amd64.pkg").string();
    test::write_file(package, "not an archive");
    const ProcessResult r =
        run_kbuild({"--cache-dir", (dir / "cache").string(), "build", "--plugin-dir",
                    fixture_plugin_dir("good").string(), "--distro", "gooddistro", "--builder", "local", "--module-src",
                    (test::source_dir() / "examples/hello").string(), "--out", (dir / "out").string(), package});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out,
              "built 0, skipped 0, failed 1, unavailable 0 (index: " + (dir / "out/index.json").string() + ")\n");
    EXPECT_EQ(r.err.find("built 0"), std::string::npos) << r.err;
}

TEST(Cli, DistroConflictIsAWarningNamingBothFiles) {
    const ProcessResult r = run_kbuild({"plugins", "--plugin-dir", fixture_plugin_dir("good").string(), "--plugin-dir",
                                        fixture_plugin_dir("rival").string()});
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "warning: " + (fixture_plugin_dir("rival") / "libkbuild-rival.so").string() +
                         ": distro 'gooddistro' is already served by " +
                         (fixture_plugin_dir("good") / "libkbuild-good.so").string() + "; using that one\n");
}

TEST(Cli, VerboseAndQuietSetTheLogLevel) {
    const std::string dir = fixture_plugin_dir("good").string();
    const ProcessResult verbose = run_kbuild({"--verbose", "plugins", "--plugin-dir", dir});
    EXPECT_NE(verbose.err.find("debug: "), std::string::npos) << verbose.err;
    const ProcessResult quiet =
        run_kbuild({"plugins", "--quiet", "--plugin-dir", fixture_plugin_dir("othermajor").string()});
    EXPECT_NE(quiet.err.find("warning: "), std::string::npos);
    EXPECT_EQ(run_kbuild({"plugins", "--quiet", "--verbose"}).exit_code, 2);
}

}  // namespace
