// What the tests share: where the build put things, temporary directories, running kbuild.
#pragma once

#include "util/process.h"

#include <kbuild/plugin_api.h>
#include <kbuild/types.hpp>

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace kbuild::test {

// How much more memory a program of this build takes than it would without ASan (redzones
// around each block, a quarantine of freed ones): what the tests that bound a process's memory
// allow for it. kbuild and the tests are one build, so this test's build is kbuild's.
#ifdef __SANITIZE_ADDRESS__
inline constexpr std::size_t kMemoryFactor = 2;
#else
inline constexpr std::size_t kMemoryFactor = 1;
#endif

// The plugin ABI as kbuild prints it ("1.2"), and the next minor version ("1.3").
inline const std::string kAbi = std::to_string(KBUILD_PLUGIN_ABI_MAJOR) + "." + std::to_string(KBUILD_PLUGIN_ABI_MINOR);
inline const std::string kNextMinor =
    std::to_string(KBUILD_PLUGIN_ABI_MAJOR) + "." + std::to_string(KBUILD_PLUGIN_ABI_MINOR + 1);

// Paths the build passes in (see tests/CMakeLists.txt).
std::filesystem::path kbuild_binary();
std::filesystem::path source_dir();
std::filesystem::path binary_dir();
std::filesystem::path cmake_binary();
std::filesystem::path fixture_plugin_dir(const std::string& variant);

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

// Builds one target of this build tree (a probe that must or must not compile). Tests that
// call it hold the build_tree resource lock: two ninjas in one tree spoil its logs.
ProcessResult build_target(const std::string& target);

// Runs the kbuild binary with these arguments.
ProcessResult run_kbuild(const std::vector<std::string>& args, const ProcessOptions& options = {});

// Starts kbuild with these arguments, waits (up to 30 s) until the shell condition holds (it
// may name kbuild's process id as $pid), sends the signal (INT, TERM, KILL) and waits for
// kbuild to end.
struct Stopped {
    bool seen = false;     // the condition held before the signal
    int exit_status = -1;  // kbuild's, as its shell saw it (128 + N for signal N)
};
Stopped stop_kbuild_when(const std::vector<std::string>& args, const std::string& condition, const std::string& signal);

// Starts kbuild with these arguments, stdout and stderr to `log`, and returns its process id:
// the caller waits for it.
pid_t start_kbuild(const std::vector<std::string>& args, const std::filesystem::path& log);

void write_file(const std::filesystem::path& path, const std::string& text);

// The message `check` throws, "" when it passes: what a user would read.
template <class Check>
std::string error_of(Check&& check) {
    try {
        check();
        return "";
    } catch (const std::exception& e) {
        return e.what();
    }
}

// A URL list as kbuild reads one: its lines that are neither blank nor a # comment.
std::vector<std::string> list_lines(const std::filesystem::path& list);

// kernel-packer's URL lists, kept in the repository (tests/data/kernel-packer/SOURCE).
std::filesystem::path kernel_packer_lists();

// A .deb built with dpkg-deb -b: control fields plus files (path in the package -> content;
// a content starting with "->" makes a symlink to the rest). Returns the .deb's path.
struct DebSpec {
    std::string package, version, architecture = "amd64", depends;
    std::vector<std::pair<std::string, std::string>> files;
};
std::filesystem::path make_deb(const std::filesystem::path& dir, const DebSpec& spec,
                               const std::string& file_name = "");
std::string read_file(const std::filesystem::path& path);

// How many lines of `text` hold `part`: what "said in one line" is counted with.
int lines_with(const std::string& text, const std::string& part);

// `text` as a regular expression that matches it alone ("6.1.0-1+b1" -> "6\\.1\\.0-1\\+b1").
std::string regex_literal(const std::string& text);

// A throw-away OpenPGP signing key in `home` (tests/fixtures/deb/make-test-key): its public
// keyring in home/public.gpg and home/public.asc. Throws Error when gpg fails.
void make_test_key(const std::filesystem::path& home, const std::string& name);

// The header packages of one Debian kernel 6.1.0-<abi>-amd64 (-amd64 and -common, whose
// Makefiles build nothing: for tests that crawl, or fail a build), made in `dir`.
std::vector<std::string> make_kernel_debs(const std::filesystem::path& dir, int abi);

// A signed archive of one suite holding `debs` in `out`, as tests/fixtures/deb/make-signed-archive
// makes it (apt-ftparchive, gpg) with the key in `key_home` (make_test_key); `out` is replaced.
// Throws Error when the script fails.
void make_signed_suite(const std::filesystem::path& out, const std::string& suite,
                       const std::filesystem::path& key_home, const std::vector<std::string>& debs);

// The newest bookworm 6.1 kernel's three packages (headers, common, kbuild), found by kbuild's
// own crawl of the real Debian mirror and fetched into `cache_dir`: what the tests re-label as
// other distributions' kernels.
struct DebianKernel {
    std::vector<std::string> debs;
    std::string release;  // 6.1.0-K-amd64
};
DebianKernel newest_bookworm_kernel(const std::filesystem::path& cache_dir);
// The same for other suites and kernels: the newest release matching `pattern` (a regular
// expression over releases) among `suites` (comma-separated).
DebianKernel newest_debian_kernel(const std::filesystem::path& cache_dir, const std::string& suites,
                                  const std::string& pattern);

// The first target record of <out>/index.json, as a run of one kernel writes it.
Json first_target(const std::filesystem::path& out);

// `kbuild batch ARGS... --output json`, which must succeed (a test failure otherwise), parsed.
Json batch_json(const std::vector<std::string>& args);

// A real kernel source: Debian's newest linux-source-6.1, fetched with apt (checked against its
// signed indexes) once and kept in the build tree's test cache as linux-<version>.tar.xz (its
// one top directory is linux-source-6.1/). Throws Error when apt cannot give it.
struct LinuxSource {
    std::string version;  // 6.1.N
    std::filesystem::path tarball;
};
LinuxSource debian_linux_source();

// Writes the .config of Debian's newest bookworm kernel (built by gcc 12) to `file`.
void write_bookworm_config(const std::filesystem::path& file);

// A package of the good fixture plugin (--distro gooddistro) in `dir`, without the network:
// testkernel-headers-<release>.pkg, whose kernel tree is a .config naming gcc-12 for x86 and
// `makefile` as the tree's Makefile, so a build runs what the test wants. Returns its path.
std::filesystem::path make_test_kernel_package(const std::filesystem::path& dir, const std::string& release,
                                               const std::string& makefile);

// Starts `kbuild build --builder <builder>` of examples/hello on such a package whose Makefile
// runs `command` (which should never end: a sleep), with its cache, out and kbuild.log in `dir`.
// Returns kbuild's process id.
pid_t start_endless_build(const std::filesystem::path& dir, const std::string& builder, const std::string& command);

// The processes alive now (zombies left out), from /proc.
struct ProcessEntry {
    pid_t pid = 0;
    pid_t parent = 0;
    std::string name;     // /proc/PID/comm
    std::string command;  // its arguments, joined by spaces
};
std::vector<ProcessEntry> processes();
// `root` and every process under it, found by their parents.
std::vector<ProcessEntry> process_tree(pid_t root);
// Those of `before` that are still alive (the same pid running the same command).
std::vector<ProcessEntry> still_alive(const std::vector<ProcessEntry>& before);

}  // namespace kbuild::test
