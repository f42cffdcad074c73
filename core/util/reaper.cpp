#include "util/reaper.h"

#include "util/strings.h"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace kbuild::reaper {
namespace {

// One registration, one datagram of a SOCK_SEQPACKET pair: read whole, never mixed with another
// thread's, and a send to a reaper that is gone fails (MSG_NOSIGNAL) instead of raising SIGPIPE.
struct Message {
    enum Kind : char { kWatchGroup, kForgetGroup, kWatchContainer, kForgetContainer };
    Kind kind = kWatchGroup;
    pid_t group = 0;
    char id[80] = {};  // a container id: 64 hex digits
    char socket[sizeof(sockaddr_un::sun_path)] = {};
};

// ---- the reaper: a child of a threaded process, so it allocates nothing and locks nothing ----

// Far more than kbuild ever runs at once; a registration beyond them is dropped.
constexpr int kGroups = 4096;
constexpr int kContainers = 256;
// A forced removal takes the daemon a second or two; a daemon that does not answer is left.
constexpr time_t kRemovalSeconds = 60;

struct Container {
    char id[sizeof(Message::id)];
    char socket[sizeof(Message::socket)];
};

pid_t g_groups[kGroups];
Container g_containers[kContainers];

bool same(const Container& c, const Message& m) {
    return std::strcmp(c.id, m.id) == 0 && std::strcmp(c.socket, m.socket) == 0;
}

void apply(const Message& m) {
    switch (m.kind) {
        case Message::kWatchGroup:
            if (m.group <= 1) return;  // kill(-1) would be every process
            for (pid_t& g : g_groups)
                if (g == 0) {
                    g = m.group;
                    return;
                }
            return;
        case Message::kForgetGroup:
            for (pid_t& g : g_groups)
                if (g == m.group) {
                    g = 0;
                    return;
                }
            return;
        case Message::kWatchContainer:
            for (Container& c : g_containers)
                if (c.id[0] == '\0') {
                    std::memcpy(c.id, m.id, sizeof c.id);
                    std::memcpy(c.socket, m.socket, sizeof c.socket);
                    return;
                }
            return;
        case Message::kForgetContainer:
            for (Container& c : g_containers)
                if (c.id[0] != '\0' && same(c, m)) {
                    c.id[0] = '\0';
                    return;
                }
            return;
    }
}

void append(char* buffer, size_t size, size_t& used, const char* text) {
    for (; *text != '\0' && used + 1 < size; ++text) buffer[used++] = *text;
}

// DELETE /containers/<id>?force=1&v=1, as Docker::remove_container asks it, written by hand:
// libcurl is not for a forked child. The answer is read to its end, as the daemon may give up
// a request whose client has gone.
void remove_container(const Container& c) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return;
    const timeval limit{kRemovalSeconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, c.socket, sizeof address.sun_path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
        char request[512];
        size_t used = 0;
        for (const char* part : {"DELETE /containers/", c.id, "?force=1&v=1 HTTP/1.1\r\nHost: docker\r\n",
                                 "Connection: close\r\nContent-Length: 0\r\n\r\n"})
            append(request, sizeof request, used, part);
        size_t sent = 0;
        while (sent < used) {
            const ssize_t n = ::send(fd, request + sent, used - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
        char answer[512];
        if (sent == used)
            while (::recv(fd, answer, sizeof answer, 0) > 0) {}
    }
    ::close(fd);
}

void close_all_but(int keep) {
    const auto fd = static_cast<unsigned>(keep);
    if ((fd == 0 || ::close_range(0, fd - 1, 0) == 0) && ::close_range(fd + 1, ~0U, 0) == 0) return;
    // A kernel before 5.9.
    rlimit limit{};
    const rlim_t most =
        ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? limit.rlim_cur : 65536;
    for (rlim_t fd = 0; fd < most; ++fd)
        if (static_cast<int>(fd) != keep) ::close(static_cast<int>(fd));
}

[[noreturn]] void reap(int fd) {
    // Nothing of kbuild's stays open here: a pipe kbuild reads to its end (a program's output),
    // the terminal a test waits on, kbuild's own end of this pair.
    close_all_but(fd);
    // Its own session, signals that end kbuild ignored: a Ctrl-C to kbuild's terminal, its
    // hang-up or a kill of kbuild's process group leaves the reaper to do its job.
    ::setsid();
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    for (const int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::sigaction(signal, &ignore, nullptr);
    ::prctl(PR_SET_NAME, "kbuild-reaper", 0, 0, 0);
    (void)!::chdir("/");  // holds no directory (or mount) busy

    Message m;
    for (;;) {
        const ssize_t n = ::recv(fd, &m, sizeof m, 0);
        if (n == 0) break;  // kbuild is gone
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == sizeof m) apply(m);
    }
    for (const pid_t group : g_groups)
        if (group > 1) ::kill(-group, SIGKILL);
    for (const Container& c : g_containers)
        if (c.id[0] != '\0') remove_container(c);
    ::_exit(0);
}

// ---- kbuild's side ----

std::mutex g_mutex;  // guards g_fd and the start
int g_fd = -1;       // kbuild's end (close-on-exec: no program holds it); -1: no reaper yet
bool g_warned = false;

void warn_once(const std::string& why) {
    if (g_warned) return;
    g_warned = true;
    spdlog::warn("{}: programs and build containers may outlive a killed kbuild", why);
}

// A forked copy of kbuild (never exec'd) does not keep kbuild's reaper waiting: it closes
// kbuild's end and starts a reaper of its own when it starts programs. The lock is taken around
// fork so that the copy does not inherit it held.
void before_fork() {
    g_mutex.lock();
}
void after_fork_parent() {
    g_mutex.unlock();
}
void after_fork_child() {
    if (g_fd >= 0) ::close(g_fd);
    g_fd = -1;
    g_mutex.unlock();
}

// With g_mutex held.
void start() {
    static std::once_flag handlers;
    std::call_once(handlers, [] { ::pthread_atfork(before_fork, after_fork_parent, after_fork_child); });
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
        return warn_once("cannot start kbuild's reaper: socketpair: " + errno_text(errno));
    // _Fork, not fork: no fork handlers (this lock's among them, held here), and the child only
    // makes system calls.
    const pid_t pid = ::_Fork();
    if (pid == 0) reap(ends[1]);
    const int error = errno;
    ::close(ends[1]);
    if (pid < 0) {
        ::close(ends[0]);
        return warn_once("cannot start kbuild's reaper: fork: " + errno_text(error));
    }
    // Nothing waits for it: it exits when kbuild has, and init reaps it.
    g_fd = ends[0];
}

// `start_if_needed`: a registration starts the reaper; forgetting needs none.
void send(const Message& m, bool start_if_needed) {
    std::lock_guard lock(g_mutex);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (g_fd < 0 && start_if_needed) start();
        if (g_fd < 0) return;
        if (::send(g_fd, &m, sizeof m, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof m)) return;
        // The reaper was killed: what it held is lost, a new one holds what comes.
        warn_once("kbuild's reaper is gone (" + errno_text(errno) + ")");
        ::close(g_fd);
        g_fd = -1;
    }
}

bool copy(char* to, size_t size, const std::string& text) {
    if (text.empty() || text.size() >= size) return false;
    std::memcpy(to, text.c_str(), text.size() + 1);
    return true;
}

Message container_message(Message::Kind kind, const std::string& socket, const std::string& id, bool& fits) {
    Message m;
    m.kind = kind;
    // The reaper works from /.
    std::error_code ec;
    const std::string path = std::filesystem::absolute(socket, ec).string();
    fits = !ec && copy(m.id, sizeof m.id, id) && copy(m.socket, sizeof m.socket, path);
    return m;
}

}  // namespace

void watch_group(pid_t group) {
    Message m;
    m.kind = Message::kWatchGroup;
    m.group = group;
    send(m, true);
}

void forget_group(pid_t group) {
    Message m;
    m.kind = Message::kForgetGroup;
    m.group = group;
    send(m, false);
}

void watch_container(const std::string& socket, const std::string& id) {
    bool fits = false;
    const Message m = container_message(Message::kWatchContainer, socket, id, fits);
    if (!fits) {
        std::lock_guard lock(g_mutex);
        return warn_once("container " + id + " on " + socket + ": too long a name for kbuild's reaper");
    }
    send(m, true);
}

void forget_container(const std::string& socket, const std::string& id) {
    bool fits = false;
    const Message m = container_message(Message::kForgetContainer, socket, id, fits);
    if (fits) send(m, false);
}

}  // namespace kbuild::reaper
