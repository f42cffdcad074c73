// The Docker client's reading of the daemon's replies, against a fake daemon on a unix socket
// in this process: whatever HTTP framing a reply comes in (chunked, split anywhere, braces in
// its strings), it is read as a whole and its JSON parsed as a whole; and what a killed
// process's reaper asks of it.
#include "build/docker.h"
#include "test_util.h"
#include "util/fd.h"
#include "util/reaper.h"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

using Replies = std::map<std::string, std::string>;

// A daemon that answers each request with the raw bytes its route names (the request line's
// path, without the query), then closes the connection.
class FakeDaemon {
public:
    explicit FakeDaemon(Replies replies) : socket_path_(dir_ / "docker.sock"), replies_(std::move(replies)) {
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof address.sun_path, "%s", socket_path_.c_str());
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(listener_, 8) != 0)
            throw std::runtime_error("fake daemon: cannot listen on " + socket_path_.string());
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeDaemon() {
        ::shutdown(listener_, SHUT_RDWR);
        thread_.join();
        ::close(listener_);
    }

    const fs::path& socket() const { return socket_path_; }
    std::vector<std::string> requests() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return requests_;
    }

private:
    void serve() {
        for (;;) {
            const int client = ::accept(listener_, nullptr, nullptr);
            if (client < 0) return;
            std::string head;
            char buffer[4096];
            while (head.find("\r\n\r\n") == std::string::npos) {
                const ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
                if (got <= 0) break;
                head.append(buffer, static_cast<std::size_t>(got));
            }
            const std::string line = head.substr(0, head.find("\r\n"));
            const auto path_start = line.find(' ') + 1;
            std::string path = line.substr(path_start, line.find(' ', path_start) - path_start);
            path = path.substr(0, path.find('?'));
            {
                std::lock_guard<std::mutex> lock(mutex_);
                requests_.push_back(line);
            }
            const auto found = replies_.find(path);
            const std::string reply =
                found != replies_.end() ? found->second : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            // In small pieces: a reply is never read in one go.
            for (std::size_t at = 0; at < reply.size(); at += 7) {
                ::send(client, reply.data() + at, std::min<std::size_t>(7, reply.size() - at), MSG_NOSIGNAL);
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
            ::shutdown(client, SHUT_WR);
            ::close(client);
        }
    }

    test::TempDir dir_;
    fs::path socket_path_;
    std::map<std::string, std::string> replies_;
    int listener_ = -1;
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
    std::thread thread_;
};

// A body as chunks of the given sizes.
std::string chunked(const std::string& body, std::size_t piece) {
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += piece) {
        const std::string chunk = body.substr(at, piece);
        char size[16];
        std::snprintf(size, sizeof size, "%zx", chunk.size());
        out += std::string(size) + "\r\n" + chunk + "\r\n";
    }
    return out + "0\r\n\r\n";
}

TEST(DockerClient, AChunkedListWithBracesInItsStringsIsReadWhole) {
    const std::string list =
        R"([{"Id":"sha256:1","RepoTags":["a/b:1"],"Labels":{"note":"} not the end {","x":"{}"},)"
        R"("Size":5,"Created":0},{"Id":"sha256:2","RepoTags":null,"Labels":null,"Size":7,"Created":0}])";
    FakeDaemon daemon(Replies{{"/v1.41/images/json",
                               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n" +
                                   chunked(list, 10)}});

    const auto images = Docker(daemon.socket()).images({{"kbuild.test", "{1}"}});
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(images[0].id, "sha256:1");
    EXPECT_EQ(images[0].labels.at("note"), "} not the end {");
    EXPECT_EQ(images[0].labels.at("x"), "{}");
    EXPECT_EQ(images[1].id, "sha256:2");
    EXPECT_EQ(images[1].size, 7);
    ASSERT_EQ(daemon.requests().size(), 1u);
    // The filter travels encoded in the query.
    EXPECT_NE(daemon.requests()[0].find("filters=%7B%22label%22%3A%5B%22kbuild.test%3D%7B1%7D%22%5D%7D"),
              std::string::npos)
        << daemon.requests()[0];
}

TEST(DockerClient, ARefusalWithBracesInItsMessageIsNamedWhole) {
    const std::string body = R"x({"message":"invalid reference format: {bad} (see \"}\")"})x";
    FakeDaemon daemon(
        Replies{{"/v1.41/images/x/json",
                 "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 4)}});
    try {
        Docker(daemon.socket()).image("x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), R"(docker: image x: invalid reference format: {bad} (see "}"))");
    }
}

TEST(DockerClient, TextAfterTheJsonIsNotJson) {
    // What a search for the first '{' and the last '}' took for an answer.
    FakeDaemon daemon(Replies{{"/v1.41/images/x/json",
                               "HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\n"
                               "{\"Id\":\"sha256:1\"} trailing {}"}});
    try {
        Docker(daemon.socket()).image("x");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "docker: image x: the daemon's answer is not JSON");
    }
}

TEST(DockerClient, AReplyCutShortIsAnErrorNotAnAnswer) {
    FakeDaemon daemon(Replies{{"/v1.41/images/json",
                               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "2\r\n[]\r\n"}});
    try {
        Docker(daemon.socket()).images();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("docker: list images: ", 0), 0u) << e.what();
    }
}

TEST(DockerClient, PingIsTheStatus) {
    FakeDaemon daemon(Replies{{"/v1.41/_ping", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"}});
    EXPECT_TRUE(Docker(daemon.socket()).ping());
    FakeDaemon failing(Replies{{"/v1.41/_ping", "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"}});
    EXPECT_FALSE(Docker(failing.socket()).ping());
}

// A process killed with SIGKILL leaves its containers to its reaper (util/reaper.h), which
// asks the daemon itself: a forked copy of this test registers two, forgets one and is killed;
// the other is removed, and only it.
TEST(DockerClient, AKilledProcessesReaperRemovesTheContainersItHeld) {
    FakeDaemon daemon(Replies{{"/containers/held", "HTTP/1.1 204 No Content\r\n\r\n"}});
    const Pipe registered;
    const pid_t copy = ::fork();
    ASSERT_GE(copy, 0);
    if (copy == 0) {
        reaper::watch_container(daemon.socket().string(), "held");
        reaper::watch_container(daemon.socket().string(), "removed");
        reaper::forget_container(daemon.socket().string(), "removed");
        (void)!::write(registered.write.get(), "!", 1);
        for (;;) ::pause();
    }
    char done = 0;
    const bool ready = ::read(registered.read.get(), &done, 1) == 1;
    // The reaper names itself once it runs, which a loaded machine may not have let it do yet.
    pid_t reaper = 0;
    for (int i = 0; i < 200 && reaper == 0; ++i) {
        for (const auto& p : test::processes())
            if (p.name == "kbuild-reaper" && p.parent == copy) reaper = p.pid;
        if (reaper == 0) ::usleep(50000);
    }
    ::kill(copy, SIGKILL);
    ASSERT_EQ(::waitpid(copy, nullptr, 0), copy);
    ASSERT_TRUE(ready);
    ASSERT_GT(reaper, 0) << "the copy started no reaper";

    const auto reaper_alive = [&] {
        for (const auto& p : test::processes())
            if (p.pid == reaper && p.name == "kbuild-reaper") return true;
        return false;
    };
    for (int i = 0; i < 200 && reaper_alive(); ++i) ::usleep(50000);
    EXPECT_FALSE(reaper_alive());
    EXPECT_EQ(daemon.requests(), std::vector<std::string>{"DELETE /containers/held?force=1&v=1 HTTP/1.1"});
}

}  // namespace
