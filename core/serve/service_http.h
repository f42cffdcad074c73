// The build service's HTTP face (Boost.Beast over Asio): the Falco build-service API over a
// BuildQueue. Connections are read and written by two I/O threads that never wait on a client,
// so a slow client costs a socket and a buffer, not a thread; only complete requests that touch
// files go to the handler threads. Everything is bounded: bodies by size, each request's headers
// and body by a deadline (then 408 and a close), open connections and requests waiting for a
// handler by counts (beyond them 503 with Retry-After, never a silent close), POSTs by a rate
// per client and one for all; artifacts stream from disk.
//
//   POST /v1/module   {buildType, architecture, kernelrelease, kernelversion, moduleVersion,
//                      kernelConfigData (base64)}; kernelversion defaults to "1", moduleVersion
//                      to the one module source's when there is one
//        200 built (artifact paths) | 202 queued or building (Location) | 400 a bad field
//        | 401 no or wrong bearer token | 413 body too large | 422 build failed (reason, log)
//        | 429 queue full or client over its rate (Retry-After) | 503 shutting down
//   GET  /v1/module/<buildType>/<arch>/<moduleVersion>/<kernelrelease>/<kernelversion>/
//                   <config-sha256>/<name>.ko
//        200 the module | 202 queued or building | 400 a bad segment | 404 unknown | 422 failed
//   GET  /v1/health   200 {"status":"ok"} | 503 while shutting down
//   GET  /v1/metrics  queue length, builds running, done, failed, mean build time (JSON)
//   GET  /metrics     the same for Prometheus (its text format 0.0.4)
#pragma once

#include "serve/service.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace kbuild {

struct HttpOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8093;                 // 0: any free port (see ServiceServer::port)
    std::size_t max_body = 1 << 20;            // bytes of a POST body; more: 413
    int max_threads = 32;                      // handler threads: requests handled at once
    int max_queued = 256;                      // complete requests waiting for a handler; more: 503
    int max_connections = 4096;                // open at once; more: 503 (the open-files limit is raised)
    std::chrono::seconds request_timeout{10};  // to send one request's headers and body
    std::chrono::seconds keep_alive{5};        // idle time before a connection is closed
    int posts_per_minute = 60;                 // per client address; 0: no limit
    int posts_per_minute_total = 0;            // from all clients together; 0: no limit
    std::string token;                         // set: POST needs "Authorization: Bearer <token>"
};

// What the HTTP layer asks of the service beyond the queue.
struct ServiceCatalog {
    // Returns when the build type can be served; else throws Error saying why, e.g.
    // "buildType: unknown 'x' (known: ...)".
    std::function<void(const std::string&)> check_build_type;
    // Module version -> the module source's name (the <name>.ko a Location names).
    std::map<std::string, std::string> modules;
    // Called with each accepted request and its config before it is queued (may be empty): a
    // source kernel's build needs the config itself, not only its hash. Throws when it cannot.
    std::function<void(const ModuleRequest&, const std::string& config)> keep_config;
};

class ServiceServer {
public:
    // Binds the socket (so port() is known); start() begins answering.
    ServiceServer(BuildQueue& queue, ServiceCatalog catalog, HttpOptions options);
    ~ServiceServer();
    ServiceServer(const ServiceServer&) = delete;
    ServiceServer& operator=(const ServiceServer&) = delete;

    void start();
    std::uint16_t port() const;

    // From now on POST answers 503 and health answers 503; artifacts are still served.
    void begin_shutdown();
    // Stops accepting connections and closes the open ones.
    void stop();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace kbuild
