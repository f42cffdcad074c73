// What the build service's tests share: a `kbuild serve` process on 127.0.0.1, and HTTP clients
// for it, a polite one (Poco's HTTPClientSession) and a raw one that sends any bytes at all.
#pragma once

#include <kbuild/types.hpp>

#include <sys/types.h>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kbuild::test {

// `kbuild --cache-dir CACHE --config DIR/config.toml serve --listen 127.0.0.1:0 --out DIR/out
// ARGS...` (with --builder local unless ARGS name a builder), its stdout and stderr in DIR. The constructor waits until it
// listens (it prints its address).
class ServeProcess {
public:
    ServeProcess(std::filesystem::path dir, const std::string& config_toml, std::filesystem::path cache_dir,
                 std::vector<std::string> args = {});
    ~ServeProcess();  // SIGKILL when still running
    ServeProcess(const ServeProcess&) = delete;
    ServeProcess& operator=(const ServeProcess&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::filesystem::path out() const { return dir_ / "out"; }
    std::string log() const;  // its stderr so far

    // Sends the signal and waits up to `wait` for the process to end; its exit status as a
    // shell shows it (128 + N when a signal ended it), -1 when still running.
    int stop(int signal, std::chrono::seconds wait = std::chrono::seconds(60));
    bool running();

    // Resident memory now and at its peak (VmRSS, VmHWM), KiB.
    std::size_t rss_kib() const;
    std::size_t peak_rss_kib() const;

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
    int port_ = 0;
    int status_ = -1;
};

struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
    Json json() const { return Json::parse(body, nullptr, false); }
    std::string header(const std::string& name) const {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// One request on a new connection. Throws on a connection error.
Reply http(int port, const std::string& method, const std::string& path, const std::string& body = "",
           const std::map<std::string, std::string>& headers = {},
           std::chrono::seconds timeout = std::chrono::seconds(30));

// GETs a module's Location until the answer is no longer 202 (still building) or `limit` passed;
// the last answer.
Reply wait_built(int port, const std::string& location, std::chrono::seconds limit = std::chrono::seconds(600));

// Sends `request` as it is over a new connection and returns all the server sent until it
// closed the connection or `timeout` passed.
std::string raw_http(int port, const std::string& request,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
// The status of a raw answer ("HTTP/1.1 408 ..." -> 408); 0 when there is none.
int status_of(const std::string& raw_reply);

// A POST /v1/module body.
struct ModuleAsk {
    std::string build_type = "debian", arch = "x86_64", kernelrelease, kernelversion = "1", module_version = "1.0.0",
                config = "CONFIG_X=y\n";
    std::string body() const;
};

std::string base64(const std::string& bytes);

}  // namespace kbuild::test
