#include "util/process.h"

#include "util/fd.h"
#include "util/interrupt.h"
#include "util/reaper.h"
#include "util/strings.h"

#include <kbuild/types.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <memory>

extern char** environ;

namespace kbuild {

Pipe::Pipe() {
    int fd[2];
    if (::pipe2(fd, O_CLOEXEC) != 0) throw Error("pipe: " + errno_text(errno));
    read.reset(fd[0]);
    write.reset(fd[1]);
}

namespace {

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (const auto& x : extra) replaced |= x.compare(0, name.size() + 1, name + "=") == 0;
        if (!replaced) env.push_back(entry);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

// What the child does between its creation and exec, destroyed on every path out.
class SpawnActions {
public:
    explicit SpawnActions(const std::string& program) : program_(program) {
        check(posix_spawn_file_actions_init(&actions_), "file actions");
    }
    ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;

    void dup2(int fd, int onto) { check(posix_spawn_file_actions_adddup2(&actions_, fd, onto), "dup2"); }
    void open(int onto, const char* path, int flags) {
        check(posix_spawn_file_actions_addopen(&actions_, onto, path, flags, 0), "open");
    }
    void chdir(const std::filesystem::path& dir) {
        check(posix_spawn_file_actions_addchdir_np(&actions_, dir.c_str()), "chdir");
    }
    const posix_spawn_file_actions_t* get() const { return &actions_; }

private:
    void check(int code, const char* what) const {
        if (code != 0) throw Error(program_ + ": cannot run: " + what + ": " + errno_text(code));
    }
    std::string program_;
    posix_spawn_file_actions_t actions_;
};

// The child's process group, signal mask and signal dispositions.
class SpawnAttributes {
public:
    explicit SpawnAttributes(const std::string& program) {
        if (const int code = posix_spawnattr_init(&attributes_); code != 0)
            throw Error(program + ": cannot run: " + errno_text(code));
        // Its own process group, made before exec and so before the parent registers it for
        // Ctrl-C: a time limit or an interruption kills the group.
        short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
        posix_spawnattr_setpgroup(&attributes_, 0);
        // The parent blocks SIGINT and SIGTERM in every thread (interrupt.h); programs start
        // with nothing blocked and the default action for what kbuild may handle or ignore.
        sigset_t none, defaults;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attributes_, &none);
        sigemptyset(&defaults);
        for (const int signal : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE}) sigaddset(&defaults, signal);
        posix_spawnattr_setsigdefault(&attributes_, &defaults);
        posix_spawnattr_setflags(&attributes_, flags);
    }
    ~SpawnAttributes() { posix_spawnattr_destroy(&attributes_); }
    SpawnAttributes(const SpawnAttributes&) = delete;
    SpawnAttributes& operator=(const SpawnAttributes&) = delete;
    const posix_spawnattr_t* get() const { return &attributes_; }

private:
    posix_spawnattr_t attributes_;
};

// Interrupted: the program's whole process group goes with kbuild. Registered before the
// program starts, so no Ctrl-C between its start and the registration leaves the group behind.
// Killed (SIGKILL runs no cleanup): the reaper kills the group, registered with it from the
// program's start until it was waited for (then the group is no longer kbuild's).
class GroupCleanup {
public:
    // The state is the group once started, 0 before, -1 once the cleanup ran (then the group,
    // started after it, is killed by started()).
    GroupCleanup() : state_(std::make_shared<std::atomic<pid_t>>(0)) {
        handle_ = add_cleanup([state = state_] {
            if (const pid_t group = state->exchange(-1); group > 0) ::kill(-group, SIGKILL);
        });
    }
    ~GroupCleanup() {
        remove_cleanup(handle_);
        if (group_ > 0) reaper::forget_group(group_);
    }
    GroupCleanup(const GroupCleanup&) = delete;
    GroupCleanup& operator=(const GroupCleanup&) = delete;

    // Cleanups that run later (a service's grace while its builds finish) leave the program be;
    // only one that already ran, before the group was known, makes it go at once.
    void started(pid_t group) {
        group_ = group;
        reaper::watch_group(group);
        pid_t before = 0;
        if (!state_->compare_exchange_strong(before, group)) ::kill(-group, SIGKILL);
    }

private:
    std::shared_ptr<std::atomic<pid_t>> state_;
    int handle_ = -1;
    pid_t group_ = 0;
};

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    if (argv.empty()) throw Error("run_process: no program");
    const std::string& program = argv[0];
    const bool logging = !options.log.empty();

    // Every descriptor below is owned: any failure closes what was opened so far.
    UniqueFd log;
    if (logging) {
        log.reset(::open(options.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
        if (!log) throw Error(options.log.string() + ": " + errno_text(errno));
    }
    std::unique_ptr<Pipe> in, out, err;
    if (!options.input.empty()) in = std::make_unique<Pipe>();
    if (!logging) out = std::make_unique<Pipe>(), err = std::make_unique<Pipe>();

    SpawnActions actions(program);
    if (in)
        actions.dup2(in->read.get(), 0);
    else
        actions.open(0, "/dev/null", O_RDONLY);
    actions.dup2(logging ? log.get() : out->write.get(), 1);
    actions.dup2(logging ? log.get() : err->write.get(), 2);
    if (!options.cwd.empty()) actions.chdir(options.cwd);
    const SpawnAttributes attributes(program);

    std::vector<std::string> env = merged_environment(options.env);
    std::vector<char*> c_argv, c_env;
    for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
    c_argv.push_back(nullptr);
    for (const auto& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
    c_env.push_back(nullptr);

    GroupCleanup group_cleanup;
    pid_t pid = -1;
    // posix_spawnp searches PATH as execvp does; a program that cannot run (not found, not
    // executable, a working directory it cannot enter) is its return value.
    if (const int code =
            ::posix_spawnp(&pid, program.c_str(), actions.get(), attributes.get(), c_argv.data(), c_env.data());
        code != 0)
        throw Error(program + ": cannot run: " + errno_text(code));
    group_cleanup.started(pid);

    // The child's ends are the child's alone.
    log.reset();
    if (in) in->read.reset();
    if (out) out->write.reset(), err->write.reset();

    // Feed stdin (small inputs only: configuration text, never bulk data).
    if (in) {
        (void)!::write(in->write.get(), options.input.data(), options.input.size());
        in->write.reset();
    }

    ProcessResult result;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::vector<pollfd> fds;
    if (out) fds.push_back({out->read.get(), POLLIN, 0}), fds.push_back({err->read.get(), POLLIN, 0});
    char buffer[65536];
    bool running = true;
    int status = 0;
    while (running) {
        int wait_ms = 200;
        if (options.timeout.count() > 0) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                result.timed_out = true;
                ::kill(-pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                break;
            }
            wait_ms = static_cast<int>(std::min<long long>(wait_ms, left.count()));
        }
        std::vector<pollfd> open_fds;
        for (const auto& p : fds)
            if (p.fd >= 0) open_fds.push_back(p);
        if (!open_fds.empty()) {
            if (::poll(open_fds.data(), open_fds.size(), wait_ms) > 0) {
                for (auto& p : open_fds) {
                    if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
                    const ssize_t n = ::read(p.fd, buffer, sizeof buffer);
                    std::string& sink = p.fd == out->read.get() ? result.out : result.err;
                    if (n > 0) {
                        sink.append(buffer, static_cast<size_t>(n));
                    } else {
                        for (auto& f : fds)
                            if (f.fd == p.fd) f.fd = -1;
                    }
                }
            }
        } else if (options.timeout.count() > 0) {
            ::usleep(static_cast<useconds_t>(std::min(wait_ms, 20)) * 1000);
        }
        const bool outputs_open = std::any_of(fds.begin(), fds.end(), [](auto& p) { return p.fd >= 0; });
        if (!outputs_open) {
            if (options.timeout.count() == 0) {
                ::waitpid(pid, &status, 0);
                running = false;
            } else if (::waitpid(pid, &status, WNOHANG) == pid) {
                running = false;
            }
        }
    }
    // Children of the program that still hold nothing of ours are left alone; a timed-out
    // group was killed above.
    if (WIFEXITED(status))
        result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.exit_code = 128 + WTERMSIG(status);
    return result;
}

}  // namespace kbuild
