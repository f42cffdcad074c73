#include "serve_client.h"

#include "test_util.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;
using namespace Poco::Net;

namespace kbuild::test {

ServeProcess::ServeProcess(fs::path dir, const std::string& config_toml, fs::path cache_dir,
                           std::vector<std::string> args)
    : dir_(std::move(dir)) {
    write_file(dir_ / "config.toml", config_toml);
    std::vector<std::string> argv{kbuild_binary().string(),
                                  "--cache-dir",
                                  cache_dir.string(),
                                  "--config",
                                  (dir_ / "config.toml").string(),
                                  "serve",
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--out",
                                  out().string()};
    if (std::find(args.begin(), args.end(), "--builder") == args.end())
        args.insert(args.begin(), {"--builder", "local"});
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    fs::remove(dir_ / "stdout");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, (dir_ / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, (dir_ / "stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    // Under ASan (scripts/test's build) freed memory waits in a quarantine of up to 256 MiB
    // before reuse, which the tests that bound the service's memory would take for its own: a
    // small one, so what they measure is the service.
    std::vector<std::string> env;
    std::string asan = "ASAN_OPTIONS=quarantine_size_mb=8";
    for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "ASAN_OPTIONS=", 13) == 0)
            asan = std::string(*e) + ":quarantine_size_mb=8";
        else
            env.emplace_back(*e);
    }
    env.push_back(asan);
    std::vector<char*> c_env;
    for (auto& e : env) c_env.push_back(e.data());
    c_env.push_back(nullptr);
    const int rc = posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw Error("posix_spawn kbuild serve failed");
    for (int i = 0; i < 600; ++i) {
        std::ifstream out(dir_ / "stdout");
        std::string line;
        if (std::getline(out, line) && line.find("http://127.0.0.1:") == 0 && out.good()) {
            port_ = std::stoi(line.substr(line.rfind(':') + 1));
            return;
        }
        if (!running()) throw Error("kbuild serve ended (status " + std::to_string(status_) + "): " + log());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw Error("kbuild serve did not print its address in 30 s: " + log());
}

ServeProcess::~ServeProcess() {
    if (pid_ > 0 && running()) stop(SIGKILL, std::chrono::seconds(10));
}

std::string ServeProcess::log() const {
    return read_file(dir_ / "stderr");
}

bool ServeProcess::running() {
    if (status_ >= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
}

int ServeProcess::stop(int signal, std::chrono::seconds wait) {
    if (running()) ::kill(pid_, signal);
    const auto until = std::chrono::steady_clock::now() + wait;
    while (running() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return status_;
}

namespace {

std::size_t status_field(pid_t pid, const std::string& name) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(name + ":", 0) == 0) return std::stoul(line.substr(name.size() + 1));
    return 0;
}

}  // namespace

std::size_t ServeProcess::rss_kib() const {
    return status_field(pid_, "VmRSS");
}
std::size_t ServeProcess::peak_rss_kib() const {
    return status_field(pid_, "VmHWM");
}

Reply http(int port, const std::string& method, const std::string& path, const std::string& body,
           const std::map<std::string, std::string>& headers, std::chrono::seconds timeout) {
    HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(timeout.count(), 0));
    HTTPRequest request(method, path, HTTPRequest::HTTP_1_1);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (method == HTTPRequest::HTTP_POST || !body.empty()) {
        request.setContentLength(static_cast<std::streamsize>(body.size()));
        request.setContentType("application/json");
    }
    session.sendRequest(request) << body;
    HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    Reply reply;
    reply.status = response.getStatus();
    for (const auto& [name, value] : response) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        reply.headers[lower] = value;
    }
    Poco::StreamCopier::copyToString(in, reply.body);
    return reply;
}

Reply wait_built(int port, const std::string& location, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        Reply r = http(port, "GET", location);
        if (r.status != 202 || std::chrono::steady_clock::now() > until) return r;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
}

std::string raw_http(int port, const std::string& request, std::chrono::milliseconds timeout) {
    StreamSocket socket(SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)));
    socket.setReceiveTimeout(Poco::Timespan(0, 100000));
    std::string answer;
    try {
        socket.sendBytes(request.data(), static_cast<int>(request.size()));
    } catch (const Poco::Exception&) {
        // A server that answered early and closed: read what it said.
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < until) {
        try {
            const int n = socket.receiveBytes(buffer, sizeof buffer);
            if (n <= 0) break;
            answer.append(buffer, static_cast<size_t>(n));
        } catch (const Poco::TimeoutException&) {
        } catch (const Poco::Exception&) {
            break;
        }
    }
    return answer;
}

int status_of(const std::string& raw_reply) {
    // Poco answers in the version the request named, even one that is not HTTP's.
    const size_t space = raw_reply.find(' ');
    if (space == std::string::npos || space > raw_reply.find('\n')) return 0;
    return std::atoi(raw_reply.c_str() + space + 1);
}

std::string base64(const std::string& bytes) {
    static const char* const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                           (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
        for (int k = 18; k >= 0; k -= 6) out += alphabet[(v >> k) & 63];
    }
    if (i + 1 == bytes.size()) {
        const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += std::string{alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == bytes.size()) {
        const unsigned v =
            (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += std::string{alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
    }
    return out;
}

std::string ModuleAsk::body() const {
    return Json{{"buildType", build_type},         {"architecture", arch},
                {"kernelrelease", kernelrelease},  {"kernelversion", kernelversion},
                {"moduleVersion", module_version}, {"kernelConfigData", base64(config)}}
        .dump();
}

}  // namespace kbuild::test
