#include "util/process.h"

#include "util/interrupt.h"

#include <kbuild/types.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kbuild {
namespace {

struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() {
        if (::pipe2(fd, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
    }
    ~Pipe() { close_both(); }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
    void close_both() { close_end(0), close_end(1); }
};

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

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    if (argv.empty()) throw Error("run_process: no program");
    Pipe in, out, err, exec_error;
    int log_fd = -1;
    if (!options.log.empty()) {
        log_fd = ::open(options.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) throw Error(options.log.string() + ": " + std::strerror(errno));
    }

    std::vector<std::string> env = merged_environment(options.env);
    std::vector<char*> c_argv, c_env;
    for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
    c_argv.push_back(nullptr);
    for (const auto& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
    c_env.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) throw Error(argv[0] + ": fork: " + std::strerror(errno));
    if (pid == 0) {
        // A parent thread may block signals (to take them in one thread); programs start clean.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::setpgid(0, 0);
        ::dup2(in.fd[0], 0);
        ::dup2(log_fd >= 0 ? log_fd : out.fd[1], 1);
        ::dup2(log_fd >= 0 ? log_fd : err.fd[1], 2);
        if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) {
            const int e = errno;
            (void)!::write(exec_error.fd[1], &e, sizeof e);
            ::_exit(127);
        }
        ::execvpe(c_argv[0], c_argv.data(), c_env.data());
        const int e = errno;
        (void)!::write(exec_error.fd[1], &e, sizeof e);
        ::_exit(127);
    }
    // Interrupted: the program's whole process group goes with kbuild.
    struct GroupCleanup {
        int handle;
        explicit GroupCleanup(pid_t group) : handle(add_cleanup([group] { ::kill(-group, SIGKILL); })) {}
        ~GroupCleanup() { remove_cleanup(handle); }
    } group_cleanup(pid);
    if (log_fd >= 0) ::close(log_fd);
    in.close_end(0), out.close_end(1), err.close_end(1), exec_error.close_end(1);

    int child_errno = 0;
    if (::read(exec_error.fd[0], &child_errno, sizeof child_errno) == sizeof child_errno) {
        ::waitpid(pid, nullptr, 0);
        throw Error(argv[0] + ": cannot run: " + std::strerror(child_errno));
    }

    // Feed stdin (small inputs only: configuration text, never bulk data).
    if (!options.input.empty()) (void)!::write(in.fd[1], options.input.data(), options.input.size());
    in.close_end(1);

    ProcessResult result;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::vector<pollfd> fds;
    if (out.fd[0] >= 0 && log_fd < 0) fds.push_back({out.fd[0], POLLIN, 0});
    if (err.fd[0] >= 0 && log_fd < 0) fds.push_back({err.fd[0], POLLIN, 0});
    char buffer[65536];
    bool running = true;
    int status = 0;
    while (running) {
        int wait_ms = 200;
        if (options.timeout.count() > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
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
                    std::string& sink = p.fd == out.fd[0] ? result.out : result.err;
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
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
    return result;
}

}  // namespace kbuild
