#include "mirror_server.h"

#include "test_util.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using namespace Poco::Net;

namespace kbuild::test {
namespace {

class FileHandler : public HTTPRequestHandler {
public:
    FileHandler(fs::path root, std::shared_ptr<std::atomic<std::size_t>> rate)
        : root_(std::move(root)), rate_(std::move(rate)) {}

    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
        const std::string uri = request.getURI().substr(0, request.getURI().find('?'));
        const fs::path file = (root_ / uri.substr(1)).lexically_normal();
        const bool inside = file.string().rfind(root_.string(), 0) == 0;
        std::error_code ec;
        if (inside && uri.find("..") == std::string::npos && fs::is_directory(file, ec)) {
            list_directory(uri, file, response);
            return;
        }
        if (!inside || uri.find("..") != std::string::npos || !fs::is_regular_file(file, ec)) {
            response.setStatusAndReason(HTTPResponse::HTTP_NOT_FOUND);
            response.setContentLength(0);
            response.send();
            return;
        }
        const auto size = fs::file_size(file);
        response.setContentLength64(static_cast<Poco::Int64>(size));
        response.setContentType("application/octet-stream");
        std::ostream& out = response.send();
        std::ifstream in(file, std::ios::binary);
        std::vector<char> chunk(64 * 1024);
        while (in && out) {
            const std::size_t rate = rate_->load();
            const std::size_t step =
                rate ? std::min(chunk.size(), std::max<std::size_t>(rate / 20, 1024)) : chunk.size();
            in.read(chunk.data(), static_cast<std::streamsize>(step));
            out.write(chunk.data(), in.gcount());
            if (rate) std::this_thread::sleep_for(std::chrono::microseconds(step * 1000000 / rate));
        }
    }

private:
    // As nginx's autoindex does: a redirect to the name with '/', then a page of links.
    static void list_directory(const std::string& uri, const fs::path& dir, HTTPServerResponse& response) {
        if (uri.empty() || uri.back() != '/') {
            response.redirect(uri + "/", HTTPResponse::HTTP_MOVED_PERMANENTLY);
            return;
        }
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(dir))
            names.push_back(entry.path().filename().string() + (entry.is_directory() ? "/" : ""));
        std::sort(names.begin(), names.end());
        std::string page = "<html>\r\n<head><title>Index of " + uri + "</title></head>\r\n<body>\r\n<h1>Index of " +
                           uri + "</h1><hr><pre><a href=\"../\">../</a>\r\n";
        for (const auto& name : names)
            page += "<a href=\"" + name + "\">" + name + "</a>    01-Nov-2026 10:00    -\r\n";
        page += "</pre><hr></body>\r\n</html>\r\n";
        response.setContentType("text/html");
        response.sendBuffer(page.data(), page.size());
    }

    fs::path root_;
    std::shared_ptr<std::atomic<std::size_t>> rate_;
};

class Factory : public HTTPRequestHandlerFactory {
public:
    Factory(fs::path root, std::shared_ptr<std::atomic<std::size_t>> rate,
            std::shared_ptr<std::atomic<std::size_t>> requests)
        : root_(std::move(root)), rate_(std::move(rate)), requests_(std::move(requests)) {}
    HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
        ++*requests_;
        return new FileHandler(root_, rate_);
    }

private:
    fs::path root_;
    std::shared_ptr<std::atomic<std::size_t>> rate_, requests_;
};

}  // namespace

MirrorServer::MirrorServer(fs::path root)
    : rate_(std::make_shared<std::atomic<std::size_t>>(0)), requests_(std::make_shared<std::atomic<std::size_t>>(0)) {
    auto params = new HTTPServerParams;
    params->setMaxThreads(16);
    ServerSocket socket(SocketAddress("127.0.0.1", 0));
    server_ = std::make_unique<HTTPServer>(new Factory(fs::weakly_canonical(root), rate_, requests_), socket, params);
    server_->start();
}

MirrorServer::~MirrorServer() {
    server_->stopAll(true);
}

std::string MirrorServer::url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port());
}

TwoSuiteMirror::TwoSuiteMirror(const fs::path& dir) : dir_(dir) {
    make_test_key(dir_ / "key", "two suite mirror test key");
    const fs::path debs = dir_ / "debs";
    fs::create_directories(debs);
    kbuild_ = make_deb(debs, {"linux-kbuild-6.1", "6.1.200-1", "amd64", "", {{"usr/lib/linux-kbuild-6.1/x", "x\n"}}})
                  .string();
    stable = make_kernel_debs(debs, 10);
    for (int abi = 20; abi < 24; ++abi)
        for (const auto& deb : make_kernel_debs(debs, abi)) security.push_back(deb);
    make_suite("stable", stable);
    make_suite("security", security);
}

void TwoSuiteMirror::make_suite(const std::string& suite, std::vector<std::string> debs) {
    debs.insert(debs.begin(), kbuild_);
    make_signed_suite(dir_ / suite, suite, dir_ / "key", debs);
}

}  // namespace kbuild::test
