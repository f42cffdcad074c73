// The Debian packages as a user gets them (labels docker, network, slow): packaging/deb/build-debs
// packs this build into kbuild and libkbuild-sdk-dev; in a container of kbuild's own bookworm
// builder image, `apt-get install ./*.deb` installs both with their dependencies from the mirror
// of the image's apt sources; the example plugin the SDK ships is built out of tree against the
// installed SDK, and the installed kbuild lists it beside its own plugins. The man page and the
// systemd unit, its user and config are checked where a user looks for them.
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kImage = "kbuild/builder-debian-bookworm:latest";
const std::vector<std::string> kInTreePlugins = {"alinux", "amazonlinux", "arch",        "centos",   "coreos",
                                                 "cos",    "debian",      "gardenlinux", "linuxkit", "minikube",
                                                 "photon", "suse",        "ubuntu",      "vanilla"};

// A container of the builder image, running as root with the .debs at /debs, removed at scope
// exit whatever happened.
class Container {
public:
    explicit Container(const fs::path& debs) {
        const ProcessResult r =
            run_process({"docker", "run", "--detach", "--user", "0", "--env", "DEBIAN_FRONTEND=noninteractive",
                         "--volume", debs.string() + ":/debs:ro", "--label", "kbuild.test=1", "--label",
                         "kbuild.test.case=deb-install-" + std::to_string(::getpid()), kImage, "sleep", "infinity"});
        if (r.exit_code != 0) throw Error("docker run " + kImage + ": " + r.err);
        id_ = r.out.substr(0, r.out.find_first_of(" \n"));
    }
    ~Container() { run_process({"docker", "rm", "--force", id_}); }
    Container(const Container&) = delete;
    Container& operator=(const Container&) = delete;

    // Runs a shell script in the container, as root, in /debs.
    ProcessResult sh(const std::string& script, std::chrono::seconds timeout = std::chrono::seconds(120)) const {
        ProcessOptions options;
        options.timeout = timeout;
        return run_process({"docker", "exec", "--workdir", "/debs", id_, "sh", "-ec", script}, options);
    }

private:
    std::string id_;
};

std::string describe(const ProcessResult& r) {
    return "exit " + std::to_string(r.exit_code) + (r.timed_out ? " (timed out)" : "") + "\nstdout:\n" + r.out +
           "\nstderr:\n" + r.err;
}

// `kbuild plugins`' table as name -> path (its first and last columns), the header left out;
// it ends at the blank line before the table of options.
std::map<std::string, std::string> plugin_table(const std::string& out) {
    std::map<std::string, std::string> rows;
    std::istringstream lines(out);
    std::string line;
    std::getline(lines, line);  // NAME VERSION ABI DISTROS BUILDER PATH
    while (std::getline(lines, line) && !line.empty()) {
        std::istringstream fields(line);
        std::vector<std::string> columns;
        for (std::string field; fields >> field;) columns.push_back(field);
        if (!columns.empty()) rows[columns.front()] = columns.back();
    }
    return rows;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

TEST(DebInstall, PackagesInstallWithAptAndAnOutOfTreePluginBuildsAgainstThem) {
    // The builder_images fixture (images_test) has built the image.
    ASSERT_EQ(run_process({"docker", "image", "inspect", kImage}).exit_code, 0)
        << kImage << " is missing: kbuild images build debian-bookworm";

    // kbuild --version says "kbuild 0.1.0 (plugin ABI 1.3)": the packages carry that version.
    const ProcessResult version = test::run_kbuild({"--version"});
    ASSERT_EQ(version.exit_code, 0) << version.err;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(version.out, match, std::regex("^kbuild (\\S+) "))) << version.out;
    const std::string project_version = match[1];

    test::TempDir work;
    const fs::path debs = work / "debs";
    const ProcessResult built = run_process(
        {(test::source_dir() / "packaging/deb/build-debs").string(), test::binary_dir().string(), debs.string()});
    ASSERT_EQ(built.exit_code, 0) << describe(built);
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(debs)) files.push_back(entry.path().filename().string());
    std::sort(files.begin(), files.end());
    ASSERT_EQ(files.size(), 2u) << built.out;
    const std::regex name_version_arch("([a-z0-9-]+)_([^_]+)_([a-z0-9]+)\\.deb");
    std::vector<std::string> packages;
    for (const auto& file : files) {
        ASSERT_TRUE(std::regex_match(file, match, name_version_arch)) << file;
        packages.push_back(match[1]);
        EXPECT_EQ(match[2], project_version) << file;
    }
    EXPECT_EQ(packages, (std::vector<std::string>{"kbuild", "libkbuild-sdk-dev"}));
    // apt reads local .debs as its unprivileged _apt user.
    fs::permissions(debs, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);

    Container container(debs);

    // Both install, their dependencies from the mirror of the image's apt sources; man-db to
    // read the man page as a user does.
    const ProcessResult installed = container.sh(
        "apt-get update -q\n"
        "apt-get install -y -q ./kbuild_*.deb ./libkbuild-sdk-dev_*.deb man-db",
        std::chrono::seconds(300));
    ASSERT_EQ(installed.exit_code, 0) << describe(installed);
    const ProcessResult status =
        container.sh("dpkg-query -W -f '${Package} ${Version} ${Status}\\n' kbuild libkbuild-sdk-dev");
    ASSERT_EQ(status.exit_code, 0) << describe(status);
    EXPECT_EQ(status.out, "kbuild " + project_version + " install ok installed\nlibkbuild-sdk-dev " + project_version +
                              " install ok installed\n");

    // The installed kbuild is this build's, and finds its plugins in /usr/lib/kbuild.
    const ProcessResult which = container.sh("command -v kbuild; kbuild --version");
    ASSERT_EQ(which.exit_code, 0) << describe(which);
    EXPECT_EQ(which.out, "/usr/bin/kbuild\n" + version.out);
    const ProcessResult listed = container.sh("kbuild plugins");
    ASSERT_EQ(listed.exit_code, 0) << describe(listed);
    std::map<std::string, std::string> expected;
    for (const auto& name : kInTreePlugins) expected[name] = "/usr/lib/kbuild/libkbuild-" + name + ".so";
    EXPECT_EQ(plugin_table(listed.out), expected) << listed.out;
    EXPECT_EQ(listed.err, "");

    // dpkg knows the plugins there, the binary, the builder definitions, the man page, the unit.
    const std::vector<std::string> kbuild_files = lines_of(container.sh("dpkg -L kbuild").out);
    for (const auto& name : kInTreePlugins)
        EXPECT_TRUE(has(kbuild_files, "/usr/lib/kbuild/libkbuild-" + name + ".so")) << name;
    for (const std::string file :
         {"/usr/bin/kbuild", "/usr/share/kbuild/builders/debian-bookworm/builder.json",
          "/usr/share/kbuild/builders/debian-bookworm/Dockerfile", "/usr/share/man/man1/kbuild.1.gz",
          "/usr/lib/systemd/system/kbuild-serve.service", "/usr/share/doc/kbuild/examples/config.toml"})
        EXPECT_TRUE(has(kbuild_files, file)) << file;
    const std::vector<std::string> sdk_files = lines_of(container.sh("dpkg -L libkbuild-sdk-dev").out);
    for (const std::string file : {"/usr/include/kbuild/plugin_api.h", "/usr/include/kbuild/plugin.hpp",
                                   "/usr/lib/libkbuild-sdk.a", "/usr/lib/cmake/kbuild_sdk/kbuild_sdkConfig.cmake",
                                   "/usr/share/doc/libkbuild-sdk-dev/examples/plugin/CMakeLists.txt",
                                   "/usr/share/doc/libkbuild-sdk-dev/examples/plugin/example.cpp"})
        EXPECT_TRUE(has(sdk_files, file)) << file;

    // The example plugin, copied from where the SDK package puts it and built against the
    // installed SDK with no prefix given: find_package finds it under /usr.
    const ProcessResult plugin = container.sh(
        "cp -r /usr/share/doc/libkbuild-sdk-dev/examples/plugin /root/plugin\n"
        "cmake -S /root/plugin -B /root/plugin/build\n"
        "cmake --build /root/plugin/build",
        std::chrono::seconds(240));
    ASSERT_EQ(plugin.exit_code, 0) << describe(plugin);

    // kbuild lists it beside the installed ones.
    const ProcessResult both =
        container.sh("kbuild plugins --plugin-dir /usr/lib/kbuild --plugin-dir /root/plugin/build");
    ASSERT_EQ(both.exit_code, 0) << describe(both);
    expected["example"] = "/root/plugin/build/libkbuild-example.so";
    EXPECT_EQ(plugin_table(both.out), expected) << both.out;
    EXPECT_NE(both.out.find("exampleos"), std::string::npos) << both.out;
    EXPECT_EQ(both.err, "");

    // man kbuild: the page, with every verb's flags.
    const ProcessResult where = container.sh("man -w kbuild");
    ASSERT_EQ(where.exit_code, 0) << describe(where);
    EXPECT_EQ(where.out, "/usr/share/man/man1/kbuild.1.gz\n");
    const ProcessResult page = container.sh("MANWIDTH=100 man kbuild 2>&1 | sed 's/.\\x08//g'");
    ASSERT_EQ(page.exit_code, 0) << describe(page);
    for (const std::string text : {"kbuild - build kernel modules", "COMMANDS", "kbuild build [OPTIONS] [files...]",
                                   "--module-src DIR", "kbuild images build [OPTIONS] [names...]", "FILES"})
        EXPECT_NE(page.out.find(text), std::string::npos) << text << "\n" << page.out;

    // The systemd unit where systemd looks, running the installed binary.
    const ProcessResult unit = container.sh("cat /lib/systemd/system/kbuild-serve.service");
    ASSERT_EQ(unit.exit_code, 0) << describe(unit);
    EXPECT_TRUE(has(lines_of(unit.out),
                    "ExecStart=/usr/bin/kbuild --config /etc/kbuild/config.toml "
                    "--cache-dir /var/cache/kbuild serve"))
        << unit.out;
    // What it names is there: the user it runs as (made by postinst, no login), and the config,
    // a conffile dpkg keeps once the admin edits it; with no module source in it yet, the
    // service refuses to start and says why.
    const ProcessResult user = container.sh("getent passwd kbuild");
    ASSERT_EQ(user.exit_code, 0) << describe(user);
    EXPECT_NE(user.out.find(":/var/lib/kbuild:/usr/sbin/nologin"), std::string::npos) << user.out;
    const ProcessResult conffiles = container.sh("dpkg-query -W -f '${Conffiles}' kbuild");
    EXPECT_NE(conffiles.out.find("/etc/kbuild/config.toml "), std::string::npos) << describe(conffiles);
    const ProcessResult serve = container.sh(
        "su -s /bin/sh -c 'kbuild --config /etc/kbuild/config.toml --cache-dir /tmp/c serve --out /tmp/o' kbuild "
        "2>&1 || echo \"exit $?\"");
    EXPECT_NE(serve.out.find("serve: no module sources"), std::string::npos) << describe(serve);
    EXPECT_NE(serve.out.find("exit 2"), std::string::npos) << describe(serve);
    // Installing again (an upgrade to the same version) keeps the user and asks nothing.
    const ProcessResult again = container.sh("apt-get install -y -q --reinstall ./kbuild_*.deb");
    EXPECT_EQ(again.exit_code, 0) << describe(again);
}

}  // namespace
