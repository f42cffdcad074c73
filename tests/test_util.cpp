#include "test_util.h"

#include "fetch/fetch.h"
#include "test_paths.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

extern char** environ;

namespace fs = std::filesystem;

namespace kbuild::test {

fs::path kbuild_binary() {
    return KBUILD_TEST_BINARY;
}
fs::path source_dir() {
    return KBUILD_TEST_SOURCE_DIR;
}
fs::path binary_dir() {
    return KBUILD_TEST_BINARY_DIR;
}
fs::path cmake_binary() {
    return KBUILD_TEST_CMAKE;
}

ProcessResult build_target(const std::string& target) {
    ProcessOptions options;
    options.timeout = std::chrono::seconds(300);
    return run_process({cmake_binary().string(), "--build", binary_dir().string(), "--target", target}, options);
}
fs::path fixture_plugin_dir(const std::string& variant) {
    return fs::path(KBUILD_TEST_FIXTURE_PLUGINS) / variant;
}

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kbuild-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw Error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

ProcessResult run_kbuild(const std::vector<std::string>& args, const ProcessOptions& options) {
    std::vector<std::string> argv{kbuild_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, options);
}

Stopped stop_kbuild_when(const std::vector<std::string>& args, const std::string& condition,
                         const std::string& signal) {
    // Arguments reach the script as its own positional parameters: no quoting to get wrong.
    std::vector<std::string> argv{"bash", "-c",
                                  "\"$@\" 2>/dev/null & pid=$!; seen=0; "
                                  "for i in $(seq 600); do if " +
                                      condition +
                                      "; then seen=1; break; fi; sleep 0.05; done; "
                                      "kill -" +
                                      signal + " $pid; wait $pid; echo \"$seen $?\"",
                                  "bash", kbuild_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const ProcessResult r = run_process(argv);
    Stopped stopped;
    std::istringstream(r.out) >> stopped.seen >> stopped.exit_status;
    return stopped;
}

pid_t start_kbuild(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv{kbuild_binary().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int code = ::posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (code != 0) throw Error("kbuild: cannot run: " + std::string(std::strerror(code)));
    return pid;
}

void write_file(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) throw Error(path.string() + ": cannot write");
}

std::vector<std::string> list_lines(const fs::path& list) {
    std::ifstream in(list);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line.front() != '#') lines.push_back(line);
    return lines;
}

fs::path kernel_packer_lists() {
    return source_dir() / "tests" / "data" / "kernel-packer";
}

fs::path make_deb(const fs::path& dir, const DebSpec& spec, const std::string& file_name) {
    const fs::path tree = dir / (spec.package + "-tree");
    fs::remove_all(tree);
    std::string control = "Package: " + spec.package + "\nVersion: " + spec.version +
                          "\nArchitecture: " + spec.architecture +
                          "\nMaintainer: kbuild tests <tests@kbuild.invalid>\n";
    if (!spec.depends.empty()) control += "Depends: " + spec.depends + "\n";
    control += "Description: test package\n";
    write_file(tree / "DEBIAN/control", control);
    for (const auto& [path, content] : spec.files) {
        const fs::path target = tree / path;
        fs::create_directories(target.parent_path());
        if (content.rfind("->", 0) == 0)
            fs::create_symlink(content.substr(2), target);
        else
            write_file(target, content);
    }
    const fs::path deb =
        dir / (file_name.empty() ? spec.package + "_" + spec.version + "_" + spec.architecture + ".deb" : file_name);
    const ProcessResult r = run_process({"dpkg-deb", "--root-owner-group", "-Zxz", "-b", tree.string(), deb.string()});
    if (r.exit_code != 0) throw Error("dpkg-deb -b failed: " + r.err);
    fs::remove_all(tree);
    return deb;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path.string() + ": cannot read");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

DebianKernel newest_bookworm_kernel(const fs::path& cache_dir) {
    return newest_debian_kernel(cache_dir, "bookworm,bookworm-updates,bookworm-security", "^6\\.1\\.0-[0-9]+-amd64$");
}

DebianKernel newest_debian_kernel(const fs::path& cache_dir, const std::string& suites, const std::string& pattern) {
    const ProcessResult crawl =
        run_kbuild({"--cache-dir", cache_dir.string(), "crawl", "--distro", "debian", "--option", "suites=" + suites,
                    "--kernel", pattern, "--latest", "1", "--output", "json"});
    if (crawl.exit_code != 0) throw Error("crawl: " + crawl.err);
    const Json release = Json::parse(crawl.out)["releases"].at(0);
    FetchOptions options;
    options.cache_dir = cache_dir;
    Fetcher fetcher(options);
    DebianKernel kernel{{}, release["kernelrelease"]};
    for (const auto& p : release["packages"])
        kernel.debs.push_back(fetcher.fetch({p["url"], p["sha256"], p["size"]}).path);
    return kernel;
}

Json first_target(const fs::path& out) {
    std::ifstream in(out / "index.json");
    return Json::parse(in).at("targets").at(0);
}

Json batch_json(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"batch"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--output", "json"});
    const ProcessResult r = run_kbuild(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out, nullptr, false);
}

LinuxSource debian_linux_source() {
    const fs::path sources = binary_dir() / "test-cache" / "linux-source";
    fs::create_directories(sources);
    const ProcessResult policy = run_process({"apt-cache", "policy", "linux-source-6.1"});
    std::smatch m;
    if (!std::regex_search(policy.out, m, std::regex(R"(Candidate: (6\.1\.(\d+)-\S+))")))
        throw Error("apt knows no linux-source-6.1 (apt-get update): " + policy.out + policy.err);
    LinuxSource source{"6.1." + m[2].str(), sources / ("linux-6.1." + m[2].str() + ".tar.xz")};
    if (fs::exists(source.tarball)) return source;
    ProcessOptions in_sources;
    in_sources.cwd = sources;
    const ProcessResult download = run_process({"apt-get", "download", "linux-source-6.1=" + m[1].str()}, in_sources);
    if (download.exit_code != 0) throw Error("apt-get download linux-source-6.1: " + download.err);
    const fs::path deb = sources / ("linux-source-6.1_" + m[1].str() + "_all.deb");
    const ProcessResult extract =
        run_process({"sh", "-c",
                     "dpkg-deb --fsys-tarfile \"$0\" | tar -xO ./usr/src/linux-source-6.1.tar.xz > \"$1.tmp\" && "
                     "mv \"$1.tmp\" \"$1\" && rm \"$0\"",
                     deb.string(), source.tarball.string()});
    if (extract.exit_code != 0) throw Error("linux-source-6.1's tarball: " + extract.err);
    return source;
}

void write_bookworm_config(const fs::path& file) {
    const DebianKernel kernel = newest_bookworm_kernel(binary_dir() / "test-cache");
    for (const auto& deb : kernel.debs) {
        if (deb.find("linux-headers-" + kernel.release + "_") == std::string::npos) continue;
        const ProcessResult config = run_process(
            {"sh", "-c", "dpkg-deb --fsys-tarfile \"$0\" | tar -xO ./usr/src/linux-headers-$1/.config > \"$2\"", deb,
             kernel.release, file.string()});
        if (config.exit_code != 0) throw Error("the config of " + kernel.release + ": " + config.err);
        return;
    }
    throw Error("no linux-headers-" + kernel.release + " package among the kernel's");
}

int lines_with(const std::string& text, const std::string& part) {
    std::istringstream in(text);
    int count = 0;
    for (std::string line; std::getline(in, line);) count += line.find(part) != std::string::npos;
    return count;
}

std::string regex_literal(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out += '\\';
        out += c;
    }
    return out;
}

void make_test_key(const fs::path& home, const std::string& name) {
    const ProcessResult r =
        run_process({(source_dir() / "tests/fixtures/deb/make-test-key").string(), home.string(), name});
    if (r.exit_code != 0) throw Error("make-test-key " + home.string() + ": " + r.err);
}

std::vector<std::string> make_kernel_debs(const fs::path& dir, int abi) {
    const std::string a = std::to_string(abi), version = "6.1." + std::to_string(100 + abi) + "-1";
    return {make_deb(dir, {"linux-headers-6.1.0-" + a + "-amd64",
                           version,
                           "amd64",
                           "linux-headers-6.1.0-" + a + "-common (= " + version + "), linux-kbuild-6.1",
                           {{"usr/src/linux-headers-6.1.0-" + a + "-amd64/Makefile", "all:\n"}}})
                .string(),
            make_deb(dir, {"linux-headers-6.1.0-" + a + "-common",
                           version,
                           "all",
                           "",
                           {{"usr/src/linux-headers-6.1.0-" + a + "-common/Makefile", "all:\n"}}})
                .string()};
}

void make_signed_suite(const fs::path& out, const std::string& suite, const fs::path& key_home,
                       const std::vector<std::string>& debs) {
    fs::remove_all(out);
    std::vector<std::string> argv = {(source_dir() / "tests/fixtures/deb/make-signed-archive").string(),
                                     "--out",
                                     out.string(),
                                     "--suite",
                                     suite,
                                     "--key",
                                     key_home.string()};
    argv.insert(argv.end(), debs.begin(), debs.end());
    const ProcessResult r = run_process(argv);
    if (r.exit_code != 0) throw Error("make-signed-archive " + out.string() + ": " + r.err);
}

fs::path make_test_kernel_package(const fs::path& dir, const std::string& release, const std::string& makefile) {
    const fs::path root = dir / ("testkernel-" + release + "-root");
    const fs::path tree = root / "usr/src" / ("testkernel-" + release);
    write_file(tree / ".config",
               "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_CC_IS_GCC=y\n"
               "CONFIG_GCC_VERSION=120200\nCONFIG_X86_64=y\nCONFIG_X86=y\n");
    write_file(tree / "Makefile", makefile);
    const fs::path package = dir / ("testkernel-headers-" + release + ".pkg");
    const ProcessResult r = run_process({"tar", "-cf", package.string(), "-C", root.string(), "usr"});
    if (r.exit_code != 0) throw Error("tar -cf " + package.string() + ": " + r.err);
    fs::remove_all(root);
    return package;
}

pid_t start_endless_build(const fs::path& dir, const std::string& builder, const std::string& command) {
    const fs::path package = make_test_kernel_package(dir, "6.1.0-1-orphan", "modules:\n\t" + command + "\n");
    return start_kbuild(
        {"--cache-dir", (dir / "cache").string(), "build", "--plugin-dir", fixture_plugin_dir("good").string(),
         "--distro", "gooddistro", "--builder", builder, "--module-src", (source_dir() / "examples/hello").string(),
         "--out", (dir / "out").string(), package.string()},
        dir / "kbuild.log");
}

std::vector<ProcessEntry> processes() {
    std::vector<ProcessEntry> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const std::string pid = entry.path().filename().string();
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        // "PID (COMM) STATE PPID ...": the name may hold spaces and parentheses, the last ')' ends it.
        std::ifstream stat_file(entry.path() / "stat");
        std::string stat;
        if (!std::getline(stat_file, stat)) continue;  // gone meanwhile
        const auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close < open) continue;
        ProcessEntry process;
        process.pid = std::stoi(pid);
        process.name = stat.substr(open + 1, close - open - 1);
        char state = 0;
        std::istringstream(stat.substr(close + 1)) >> state >> process.parent;
        if (state == 'Z' || state == 'X') continue;
        std::ifstream cmdline(entry.path() / "cmdline", std::ios::binary);
        std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
        while (!args.empty() && args.back() == '\0') args.pop_back();
        std::replace(args.begin(), args.end(), '\0', ' ');
        process.command = args;
        found.push_back(process);
    }
    return found;
}

std::vector<ProcessEntry> process_tree(pid_t root) {
    const std::vector<ProcessEntry> all = processes();
    std::vector<ProcessEntry> tree;
    for (const auto& p : all)
        if (p.pid == root) tree.push_back(p);
    // Each process found brings its children.
    for (size_t i = 0; i < tree.size(); ++i) {
        const pid_t parent = tree[i].pid;
        for (const auto& p : all)
            if (p.parent == parent) tree.push_back(p);
    }
    return tree;
}

std::vector<ProcessEntry> still_alive(const std::vector<ProcessEntry>& before) {
    std::vector<ProcessEntry> alive;
    for (const auto& now : processes())
        for (const auto& then : before)
            if (now.pid == then.pid && now.command == then.command) alive.push_back(now);
    return alive;
}

}  // namespace kbuild::test
