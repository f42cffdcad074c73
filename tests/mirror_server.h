// A real HTTP server on 127.0.0.1 (Poco HTTPServer) serving a directory, the way a package
// mirror does: what tests use for distros this machine cannot reach, and to slow a download
// down on purpose.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

namespace Poco::Net {
class HTTPServer;
}

namespace kbuild::test {

class MirrorServer {
public:
    // Serves files under `root` at http://127.0.0.1:<port>/<path>, a directory as an nginx-style
    // index page of links (a release server's layout); 404 for anything else.
    explicit MirrorServer(std::filesystem::path root);
    ~MirrorServer();

    std::string url() const;  // http://127.0.0.1:<port>, no trailing slash

    // Limits every response body to this many bytes per second (0: no limit).
    void throttle(std::size_t bytes_per_second) { rate_->store(bytes_per_second); }
    std::size_t requests() const { return requests_->load(); }

private:
    std::shared_ptr<std::atomic<std::size_t>> rate_, requests_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace kbuild::test
