// The builders' sandboxes on the real mirror (labels docker, network): a planted module whose
// Kbuild writes under the host's /tmp, /etc and $HOME and connects to a listener of this test and
// to the Debian mirror is built by each builder, and nothing of it reaches the host or the
// network; the local builder runs make as nobody when kbuild is root, kills the whole sandbox at
// the time limit, and without a working bwrap fails saying so rather than build unsandboxed.
#include "fetch/apt_sources.h"
#include "test_util.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const char* const kBookworm = "suites=bookworm,bookworm-updates,bookworm-security";

std::string cache_dir() {
    return (test::binary_dir() / "test-cache").string();
}

std::vector<std::string> with_cache(std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache-dir", cache_dir()});
    return args;
}

const std::string& newest_bookworm() {
    static const std::string release = [] {
        const ProcessResult r =
            test::run_kbuild(with_cache({"crawl", "--distro", "debian", "--option", kBookworm, "--kernel",
                                         "^6\\.1\\.0-[0-9]+-amd64$", "--latest", "1", "--output", "json"}));
        if (r.exit_code != 0) throw Error("crawl: " + r.err);
        return Json::parse(r.out)["releases"].at(0)["kernelrelease"].get<std::string>();
    }();
    return release;
}

std::vector<std::string> build_args(const fs::path& module, const fs::path& out, const std::string& builder) {
    return with_cache({"build", "--builder", builder, "--distro", "debian", "--option", kBookworm, "--kernel",
                       "^" + test::regex_literal(newest_bookworm()) + "$", "--module-src", module.string(), "--out",
                       out.string()});
}

Json target_in(const fs::path& out) {
    const Json index = Json::parse(test::read_file(out / "index.json"));
    for (const auto& t : index["targets"])
        if (t["kernelrelease"] == newest_bookworm()) return t;
    throw Error("no target " + newest_bookworm() + " in index.json");
}

// A TCP listener on 127.0.0.1 that never accepts: a connection anyone made waits in its backlog.
class Listener {
public:
    Listener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t size = sizeof address;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0)
            throw Error(std::string("listener: ") + std::strerror(errno));
        port_ = ntohs(address.sin_port);
    }
    ~Listener() { ::close(fd_); }
    int port() const { return port_; }
    bool connected() const {
        const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client >= 0) ::close(client);
        return client >= 0;
    }

private:
    int fd_;
    int port_ = 0;
};

// The mirror apt uses, as an IPv4 address: a build that is not sandboxed reaches its port 80.
std::string mirror_address() {
    const std::vector<std::string> uris = apt_mirror_uris(read_apt_sources());
    if (uris.empty()) throw Error("apt has no sources");
    std::string host = uris.front().substr(uris.front().find("://") + 3);
    host = host.substr(0, host.find_first_of(":/"));
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), "80", &hints, &found) != 0 || found == nullptr)
        throw Error("cannot resolve the mirror apt uses");
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text, sizeof text);
    ::freeaddrinfo(found);
    return text;
}

std::string unique_name() {
    std::random_device random;
    return "kbuild-sandbox-test-" + std::to_string(::getpid()) + "-" + std::to_string(random());
}

// Where the planted Kbuild writes outside its build directory: under the host's /tmp, /etc and
// the HOME of this test.
struct Targets {
    std::string name = unique_name();
    fs::path tmp = fs::path("/tmp") / name;
    fs::path etc = fs::path("/etc") / name;
    fs::path home = fs::path(std::getenv("HOME") ? std::getenv("HOME") : "/root") / name;
    ~Targets() {
        std::error_code ec;
        for (const auto& path : {tmp, etc, home}) fs::remove(path, ec);
    }
};

// A module that builds, and whose Kbuild tries each escape as it is read and says in the log
// how each went: "sandbox-probe: tmp=written etc=refused ...".
void plant_module(const fs::path& dir, const Targets& targets, int port, const std::string& mirror) {
    const auto write = [](const fs::path& path) {
        return "$(shell sh -c 'echo planted > " + path.string() + "' 2>/dev/null && echo written || echo refused)";
    };
    const auto connect = [](const std::string& address, int to) {
        return "$(shell timeout 10 bash -c 'exec 3<>/dev/tcp/" + address + "/" + std::to_string(to) +
               "' 2>/dev/null && echo reached || echo refused)";
    };
    test::write_file(dir / "Kbuild",
                     "$(info sandbox-probe: tmp=" + write(targets.tmp) + " etc=" + write(targets.etc) +
                         " home=" + write(targets.home) + " listener=" + connect("127.0.0.1", port) +
                         " mirror=" + connect(mirror, 80) + " build=" + write("$(M)/" + targets.name) +
                         " uid=$(shell id -u) caps=$(shell awk '/^CapEff/ {print $$2}' /proc/self/status))\n"
                         "obj-m := planted.o\n");
    test::write_file(dir / "planted.c", "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\n");
}

// The first "sandbox-probe:" line of a log, as name -> outcome.
std::map<std::string, std::string> probe_of(const std::string& log) {
    std::map<std::string, std::string> probe;
    const auto at = log.find("sandbox-probe: ");
    if (at == std::string::npos) return probe;
    std::istringstream words(log.substr(at + 15, log.find('\n', at) - at - 15));
    for (std::string word; words >> word;)
        if (const auto eq = word.find('='); eq != std::string::npos) probe[word.substr(0, eq)] = word.substr(eq + 1);
    return probe;
}

void nothing_escapes(const std::string& builder, const std::string& expected_uid) {
    const Targets targets;
    Listener listener;
    const std::string mirror = mirror_address();
    test::TempDir module, out;
    plant_module(module.path(), targets, listener.port(), mirror);

    const ProcessResult r = test::run_kbuild(build_args(module.path(), out.path(), builder));
    const Json target = target_in(out.path());
    EXPECT_EQ(target["status"], "built") << target.dump(2) << r.err;
    const std::string log = test::read_file(out / target["log"].get<std::string>());
    const auto probe = probe_of(log);
    // The Kbuild ran its attempts, and what it may write, it wrote: the build directory.
    ASSERT_EQ(probe.size(), 8u) << log;
    EXPECT_EQ(probe.at("build"), "written") << log;
    // Unprivileged: not root, no capability.
    EXPECT_EQ(probe.at("uid"), expected_uid) << log;
    EXPECT_EQ(probe.at("caps"), "0000000000000000") << log;
    // Nothing reached the host or the network.
    EXPECT_FALSE(fs::exists(targets.tmp)) << targets.tmp;
    EXPECT_FALSE(fs::exists(targets.etc)) << targets.etc;
    EXPECT_FALSE(fs::exists(targets.home)) << targets.home;
    EXPECT_FALSE(listener.connected()) << "the build connected to 127.0.0.1:" << listener.port();
    EXPECT_EQ(probe.at("listener"), "refused") << log;
    EXPECT_EQ(probe.at("mirror"), "refused") << "the build reached the mirror at " << mirror << ":80";
    EXPECT_NE(probe.at("etc"), "written") << log;
    EXPECT_NE(probe.at("home"), "written") << log;
}

TEST(Sandbox, NothingALocalBuildWritesOrConnectsReachesTheHost) {
    // Root builds as nobody; anyone else as themselves, never as root.
    nothing_escapes("local", ::geteuid() == 0 ? "65534" : std::to_string(::geteuid()));
}

TEST(Sandbox, NothingAContainerBuildWritesOrConnectsReachesTheHost) {
    nothing_escapes("docker", "1000");
}

TEST(Sandbox, ALocalBuildThatNeverEndsIsKilledWholeAtTheTimeLimit) {
    test::TempDir module, out;
    const std::string marker = "sleep 3600." + std::to_string(::getpid());
    const std::string pattern = "[s]" + marker.substr(1);
    test::write_file(module / "Kbuild", "$(shell " + marker + ")\nobj-m := sleeper.o\n");
    fs::copy_file(test::source_dir() / "tests/fixtures/modules/sleeper/sleeper.c", module / "sleeper.c");
    auto args = build_args(module.path(), out.path(), "local");
    args.insert(args.end(), {"--build-timeout", "5"});
    EXPECT_EQ(test::run_kbuild(args).exit_code, 1);
    const Json target = target_in(out.path());
    EXPECT_EQ(target["status"], "failed");
    EXPECT_EQ(target["reason"].get<std::string>().rfind("timed out after 5 s", 0), 0u) << target["reason"];
    EXPECT_EQ(run_process({"pgrep", "-f", pattern}).out, "") << "the sandbox outlived its time limit";
}

// A directory put on PATH, that others may read.
struct BinDir {
    test::TempDir dir;
    BinDir() { fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec); }
};

std::string without_newline(std::string text) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

TEST(Sandbox, WithoutBwrapALocalBuildFailsSayingSo) {
    newest_bookworm();
    BinDir bin;
    // The kernel's compiler is there (and gpgv, which checks the mirror), bwrap is not.
    for (const std::string program : {"gcc-12", "gpgv"})
        fs::create_symlink(without_newline(run_process({"sh", "-c", "command -v " + program}).out), bin.dir / program);
    test::TempDir out;
    ProcessOptions options;
    options.env = {"PATH=" + bin.dir.path().string()};
    const ProcessResult r =
        test::run_kbuild(build_args(test::source_dir() / "examples/hello", out.path(), "local"), options);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const Json target = target_in(out.path());
    EXPECT_EQ(target["status"], "failed");
    EXPECT_EQ(
        target["reason"].get<std::string>().rfind("local builder: bwrap not found (install bubblewrap) (log: ", 0), 0u)
        << target["reason"];
    EXPECT_TRUE(target["artifacts"].empty());
}

// A bwrap on PATH before the real one that says `said` and fails: in the probe kbuild runs
// before each build, or (`probe_passes`) only in the build itself.
ProcessResult build_with_a_failing_bwrap(const fs::path& out, const std::string& said, bool probe_passes) {
    BinDir bin;
    test::write_file(bin.dir / "bwrap",
                     "#!/bin/sh\n" + std::string(probe_passes ? "case \"$*\" in *' -- true') exit 0;; esac\n" : "") +
                         "echo '" + said + "' >&2\nexit 1\n");
    fs::permissions(bin.dir / "bwrap", fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
    ProcessOptions options;
    options.env = {"PATH=" + bin.dir.path().string() + ":" + std::getenv("PATH")};
    return test::run_kbuild(build_args(test::source_dir() / "examples/hello", out, "local"), options);
}

TEST(Sandbox, ABwrapThatCannotMakeItsSandboxFailsTheBuildSayingSo) {
    newest_bookworm();
    const std::string said =
        "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
        "non-privileged user namespaces.";
    {
        test::TempDir out;
        EXPECT_EQ(build_with_a_failing_bwrap(out.path(), said, false).exit_code, 1);
        const Json target = target_in(out.path());
        EXPECT_EQ(target["status"], "failed");
        EXPECT_EQ(target["reason"].get<std::string>().rfind(
                      "local builder: bwrap cannot make the build's sandbox: " + said + " (log: ", 0),
                  0u)
            << target["reason"];
        EXPECT_TRUE(target["artifacts"].empty());
    }
    {
        // Past the probe, bwrap's own first words are still the reason, not make's.
        const std::string later = "bwrap: execvp make: No such file or directory";
        test::TempDir out;
        EXPECT_EQ(build_with_a_failing_bwrap(out.path(), later, true).exit_code, 1);
        const Json target = target_in(out.path());
        EXPECT_EQ(target["status"], "failed");
        EXPECT_EQ(target["reason"].get<std::string>().rfind("local builder: " + later + " (log: ", 0), 0u)
            << target["reason"];
    }
}

}  // namespace
