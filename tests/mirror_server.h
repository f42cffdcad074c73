// A real HTTP server on 127.0.0.1 (Poco HTTPServer) serving a directory, the way a package
// mirror does: what tests use for distros this machine cannot reach, and to slow a download
// down on purpose.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

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

// A Debian mirror of two suites, each a signed archive of its own (the script indexes its whole
// pool) served apart on 127.0.0.1: `stable` holds kernel 6.1.0-10, `security` 6.1.0-20..23
// (test::make_kernel_debs: headers that build nothing), both with linux-kbuild-6.1. Signed by
// a key made here; made in `dir`, which must outlive it.
class TwoSuiteMirror {
public:
    explicit TwoSuiteMirror(const std::filesystem::path& dir);

    // Makes `suite` anew holding `debs` (and linux-kbuild): {} empties it, as a mirror caught
    // mid-sync serves it, signed.
    void make_suite(const std::string& suite, std::vector<std::string> debs);

    std::filesystem::path keyring() const { return dir_ / "key/public.gpg"; }

    std::vector<std::string> stable, security;  // the suites' kernel packages

private:
    std::filesystem::path dir_;
    std::string kbuild_;

public:
    MirrorServer stable_server{dir_ / "stable"}, security_server{dir_ / "security"};
};

}  // namespace kbuild::test
