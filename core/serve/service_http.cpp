#include "serve/service_http.h"

#include "util/strings.h"

#include <kbuild/digest.hpp>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>

#include <spdlog/spdlog.h>

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

using namespace Poco::Net;
using Clock = std::chrono::steady_clock;

namespace kbuild {
namespace {

constexpr const char* kModulePrefix = "/v1/module/";

// Closes connections whose request is not in by its deadline (a slowloris client sending its
// headers or body a byte at a time), after a 408. Poco's socket timeout alone would let a
// client that sends a byte every few seconds hold a thread for ever.
class ConnectionWatch {
public:
    struct Slot {
        StreamSocket socket;
        std::optional<Clock::time_point> deadline;
        std::atomic<bool> timed_out{false};
    };

    ConnectionWatch() : thread_([this] { run(); }) {}
    ~ConnectionWatch() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    ConnectionWatch(const ConnectionWatch&) = delete;
    ConnectionWatch& operator=(const ConnectionWatch&) = delete;

    void add(Slot* slot, Clock::duration limit) {
        std::lock_guard lock(mutex_);
        slot->deadline = Clock::now() + limit;
        slots_.insert(slot);
    }
    void remove(Slot* slot) {
        std::lock_guard lock(mutex_);
        slots_.erase(slot);
    }
    void arm(Slot* slot, Clock::duration limit) {
        std::lock_guard lock(mutex_);
        slot->deadline = Clock::now() + limit;
    }
    void disarm(Slot* slot) {
        std::lock_guard lock(mutex_);
        slot->deadline.reset();
    }
    std::uint64_t timeouts() const { return timeouts_; }

private:
    void run() {
        static const std::string answer =
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 53\r\n"
            "Connection: close\r\n\r\n{\"error\":\"the request was not sent in time; closing\"}\n";
        std::unique_lock lock(mutex_);
        while (!stop_) {
            wake_.wait_for(lock, std::chrono::milliseconds(200));
            const auto now = Clock::now();
            for (Slot* slot : slots_) {
                if (!slot->deadline || *slot->deadline > now) continue;
                slot->deadline.reset();
                slot->timed_out = true;
                ++timeouts_;
                try {
                    // Never blocks: a client that reads nothing must not stall this thread.
                    slot->socket.sendBytes(answer.data(), static_cast<int>(answer.size()), MSG_DONTWAIT | MSG_NOSIGNAL);
                } catch (const Poco::Exception&) {}
                try {
                    slot->socket.shutdown();
                } catch (const Poco::Exception&) {}
            }
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::set<Slot*> slots_;
    bool stop_ = false;
    std::atomic<std::uint64_t> timeouts_{0};
    std::thread thread_;
};

// The slot of the connection this thread serves, for handlers to arm and disarm.
thread_local ConnectionWatch::Slot* t_slot = nullptr;

// Token buckets per client address: `per_minute` POSTs a minute, as a burst or spread out.
class RateLimiter {
public:
    explicit RateLimiter(int per_minute) : capacity_(per_minute) {}

    // 0 when the client may go on, else the seconds until it may.
    int take(const std::string& client) {
        if (capacity_ <= 0) return 0;
        std::lock_guard lock(mutex_);
        const auto now = Clock::now();
        if (buckets_.size() > 4096) prune(now);
        auto [it, added] = buckets_.try_emplace(client, Bucket{double(capacity_), now});
        Bucket& b = it->second;
        b.tokens = refilled(b, now);
        b.at = now;
        if (b.tokens >= 1) {
            b.tokens -= 1;
            return 0;
        }
        return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) * 60.0 / capacity_)));
    }

private:
    struct Bucket {
        double tokens;
        Clock::time_point at;
    };
    double refilled(const Bucket& b, Clock::time_point now) const {
        const double seconds = std::chrono::duration<double>(now - b.at).count();
        return std::min<double>(capacity_, b.tokens + seconds * capacity_ / 60.0);
    }
    // Clients whose bucket is full again are as good as new: forget them.
    void prune(Clock::time_point now) {
        for (auto it = buckets_.begin(); it != buckets_.end();)
            it = refilled(it->second, now) >= capacity_ ? buckets_.erase(it) : std::next(it);
    }

    int capacity_;
    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

struct Context {
    Context(BuildQueue& q, ServiceCatalog c, HttpOptions o)
        : queue(q),
          catalog(std::move(c)),
          options(std::move(o)),
          limiter(options.posts_per_minute),
          total_limiter(options.posts_per_minute_total) {}
    BuildQueue& queue;
    ServiceCatalog catalog;
    HttpOptions options;
    RateLimiter limiter;
    RateLimiter total_limiter;  // one bucket, every client's
    ConnectionWatch watch;
    std::atomic<bool> shutting_down{false};
    std::atomic<std::uint64_t> requests{0};
};

bool same_secret(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() != b.size();
    for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(1, b.size())];
    return diff == 0;
}

std::string location_of(const TargetState& state, const std::string& name) {
    return kModulePrefix + state.request.key() + "/" + name;
}

class ServiceHandler : public HTTPRequestHandler {
public:
    explicit ServiceHandler(Context& context) : c_(context) {}

    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
        ++c_.requests;
        const std::string method = request.getMethod();
        if (method != HTTPRequest::HTTP_POST && t_slot) c_.watch.disarm(t_slot);
        try {
            route(request, response);
        } catch (const std::exception& e) {
            if (t_slot && t_slot->timed_out) return;  // the client was too slow, and is gone
            spdlog::error("{} {}: {}", method, request.getURI().substr(0, 200), e.what());
            try {
                if (!response.sent()) reply(response, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, {{"error", e.what()}});
            } catch (const std::exception&) {}
        }
        // The connection's next request has its own deadline.
        if (t_slot) c_.watch.arm(t_slot, c_.options.request_timeout);
    }

private:
    void route(HTTPServerRequest& request, HTTPServerResponse& response) {
        const std::string uri = request.getURI().substr(0, request.getURI().find('?'));
        const std::string& method = request.getMethod();
        auto only = [&](const std::string& allowed) {
            if (method == allowed) return true;
            response.set("Allow", allowed);
            response.setKeepAlive(false);
            reply(response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED,
                  {{"error", method.substr(0, 16) + " " + uri.substr(0, 64) + ": only " + allowed}});
            return false;
        };
        if (uri == "/v1/module") {
            if (only(HTTPRequest::HTTP_POST)) post_module(request, response);
        } else if (uri.rfind(kModulePrefix, 0) == 0) {
            if (only(HTTPRequest::HTTP_GET))
                get_module(request, uri.substr(std::string(kModulePrefix).size()), response);
        } else if (uri == "/v1/health") {
            if (!only(HTTPRequest::HTTP_GET)) return;
            if (c_.shutting_down)
                reply(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, {{"status", "shutting down"}});
            else
                reply(response, HTTPResponse::HTTP_OK, {{"status", "ok"}});
        } else if (uri == "/v1/metrics") {
            if (only(HTTPRequest::HTTP_GET)) metrics(response);
        } else if (uri == "/metrics") {
            if (only(HTTPRequest::HTTP_GET)) prometheus(response);
        } else {
            response.setKeepAlive(false);
            reply(response, HTTPResponse::HTTP_NOT_FOUND, {{"error", "no such path"}});
        }
    }

    static void reply(HTTPServerResponse& response, HTTPResponse::HTTPStatus status, const Json& body) {
        response.setStatusAndReason(status);
        response.setContentType("application/json");
        const std::string text = body.dump() + "\n";
        response.setContentLength64(static_cast<Poco::Int64>(text.size()));
        // Flushed here: Poco would otherwise write a small answer only when the response object
        // goes, after a lingering close has shut the sending side.
        std::ostream& out = response.send();
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        out.flush();
    }

    // An answer before the body was read: the connection closes, so an unread body is never
    // taken for the next request.
    static void refuse(HTTPServerResponse& response, HTTPResponse::HTTPStatus status, const Json& body) {
        response.setKeepAlive(false);
        reply(response, status, body);
    }

    static void bad_field(HTTPServerResponse& response, const std::string& field, const std::string& why) {
        refuse(response, HTTPResponse::HTTP_BAD_REQUEST, {{"error", why}, {"field", field}});
    }

    // Reads at most max_body + 1 bytes; nullopt (and the answer sent) when the body is too large
    // or shorter than it said.
    std::optional<std::string> read_body(HTTPServerRequest& request, HTTPServerResponse& response) {
        const std::size_t limit = c_.options.max_body;
        const auto too_large = [&] {
            refuse(response, HTTPResponse::HTTP_REQUESTENTITYTOOLARGE,
                   {{"error", "body: larger than " + std::to_string(limit) + " bytes"}});
            linger(request);
        };
        if (request.hasContentLength() && request.getContentLength64() > static_cast<Poco::Int64>(limit)) {
            too_large();
            return std::nullopt;
        }
        std::string body;
        std::istream& in = request.stream();
        char chunk[16384];
        while (in && body.size() <= limit) {
            in.read(chunk, static_cast<std::streamsize>(std::min(sizeof chunk, limit + 1 - body.size())));
            body.append(chunk, static_cast<size_t>(in.gcount()));
            if (in.gcount() == 0) break;
        }
        if (body.size() > limit) {
            too_large();
            return std::nullopt;
        }
        if (t_slot && t_slot->timed_out) return std::nullopt;  // answered 408 and closed
        if (request.hasContentLength() && static_cast<Poco::Int64>(body.size()) < request.getContentLength64()) {
            refuse(response, HTTPResponse::HTTP_BAD_REQUEST, {{"error", "body: shorter than its Content-Length"}});
            return std::nullopt;
        }
        return body;
    }

    // After an early answer the client may still be sending its body; closing with unread bytes
    // would reset the connection and lose the answer, so the rest is read and dropped for a
    // moment (nginx's lingering close), within bounds.
    void linger(HTTPServerRequest& request) {
        StreamSocket& socket = static_cast<HTTPServerRequestImpl&>(request).socket();
        try {
            socket.shutdownSend();
            socket.setReceiveTimeout(Poco::Timespan(0, 200000));
            const auto until = Clock::now() + std::chrono::seconds(2);
            char sink[65536];
            std::size_t dropped = 0;
            while (Clock::now() < until && dropped < (std::size_t{16} << 20)) {
                try {
                    const int n = socket.receiveBytes(sink, sizeof sink);
                    if (n <= 0) break;
                    dropped += static_cast<std::size_t>(n);
                } catch (const Poco::TimeoutException&) {}
            }
        } catch (const Poco::Exception&) {}
    }

    void post_module(HTTPServerRequest& request, HTTPServerResponse& response) {
        if (c_.shutting_down) {
            response.set("Retry-After", "30");
            refuse(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, {{"error", "the service is shutting down"}});
            return;
        }
        if (!c_.options.token.empty()) {
            const std::string given = request.get("Authorization", "");
            if (!same_secret(given, "Bearer " + c_.options.token)) {
                response.set("WWW-Authenticate", "Bearer");
                refuse(response, HTTPResponse::HTTP_UNAUTHORIZED,
                       {{"error", given.empty() ? "Authorization: a bearer token is needed"
                                                : "Authorization: not the service's bearer token"}});
                return;
            }
        }
        if (const int wait = c_.limiter.take(request.clientAddress().host().toString())) {
            response.set("Retry-After", std::to_string(wait));
            refuse(response, HTTPResponse::HTTP_TOO_MANY_REQUESTS,
                   {{"error", "too many requests from this client (at most " +
                                  std::to_string(c_.options.posts_per_minute) + " a minute)"}});
            return;
        }
        if (const int wait = c_.total_limiter.take("")) {
            response.set("Retry-After", std::to_string(wait));
            refuse(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE,
                   {{"error", "the service is taking no more requests now (at most " +
                                  std::to_string(c_.options.posts_per_minute_total) +
                                  " a minute from all clients); try again later"}});
            return;
        }
        const auto body = read_body(request, response);
        if (!body) return;
        if (t_slot) c_.watch.disarm(t_slot);

        auto read = read_module_post(*body, {c_.catalog.check_build_type, c_.catalog.modules});
        if (const auto* refused = std::get_if<Refused>(&read)) {
            bad_field(response, refused->field, refused->why);
            return;
        }
        auto& [asked, config] = std::get<PostedModule>(read);
        const std::string& module = c_.catalog.modules.at(asked.module_version);
        if (c_.catalog.keep_config) {
            try {
                c_.catalog.keep_config(asked, config);
            } catch (const std::exception& e) {
                spdlog::error("keeping the config of {}: {}", asked.key(), e.what());
                refuse(response, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR,
                       {{"error", "the service cannot keep the request's config"}});
                return;
            }
        }
        const auto submitted = c_.queue.submit(asked, module);
        answer(submitted.answer, submitted.state, module + ".ko", response);
    }

    // The one mapping from a target's state to an HTTP answer, for POST and GET alike.
    void answer(BuildQueue::Answer answer, const TargetState& state, const std::string& name,
                HTTPServerResponse& response) {
        using Answer = BuildQueue::Answer;
        switch (answer) {
            case Answer::built: {
                Json artifacts = Json::array();
                for (const auto& a : state.artifacts)
                    artifacts.push_back({{"name", a.name},
                                         {"location", location_of(state, a.name)},
                                         {"sha256", a.sha256},
                                         {"vermagic", a.vermagic}});
                reply(response, HTTPResponse::HTTP_OK,
                      {{"status", "built"},
                       {"location", location_of(state, name)},
                       {"artifacts", artifacts},
                       {"config_match", state.config_match}});
                return;
            }
            case Answer::pending:
                response.set("Location", location_of(state, name));
                response.set("Retry-After", "5");
                reply(response, HTTPResponse::HTTP_ACCEPTED,
                      {{"status", to_string(state.status)},
                       {"location", location_of(state, name)},
                       {"reason", state.reason}});
                return;
            case Answer::failed:
                reply(response, HTTPResponse::HTTP_UNPROCESSABLE_ENTITY,
                      {{"status", "failed"},
                       {"reason", state.reason},
                       {"log", state.log},
                       {"finished_at", state.finished_at}});
                return;
            case Answer::queue_full:
                response.set("Retry-After", "30");
                reply(response, HTTPResponse::HTTP_TOO_MANY_REQUESTS,
                      {{"error", "the build queue is full; try again later"}});
                return;
            case Answer::shutting_down:
                response.set("Retry-After", "30");
                reply(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, {{"error", "the service is shutting down"}});
                return;
        }
    }

    void get_module(HTTPServerRequest& request, const std::string& path, HTTPServerResponse& response) {
        const auto read = read_module_path(path);
        if (const auto* refused = std::get_if<Refused>(&read)) {
            if (refused->not_found)
                refuse(response, HTTPResponse::HTTP_NOT_FOUND, {{"error", refused->why}});
            else
                bad_field(response, refused->field, refused->why);
            return;
        }
        const auto& [asked, name] = std::get<ModulePath>(read);
        BuildQueue::Lookup lookup = c_.queue.open_artifact(asked.key(), name);
        if (!lookup.answer) {
            reply(response, HTTPResponse::HTTP_NOT_FOUND, {{"error", "no such module: POST /v1/module to ask for it"}});
            return;
        }
        if (*lookup.answer != BuildQueue::Answer::built) {
            answer(*lookup.answer, lookup.state, name, response);
            return;
        }
        stream(request, lookup, name, response);
    }

    // The file as it was opened and checked, with sendfile(2): no copy through this process.
    void stream(HTTPServerRequest& request, const BuildQueue::Lookup& lookup, const std::string& name,
                HTTPServerResponse& response) {
        const auto artifact = std::find_if(lookup.state.artifacts.begin(), lookup.state.artifacts.end(),
                                           [&](const ServiceArtifact& a) { return a.name == name; });
        response.setContentType("application/octet-stream");
        response.setContentLength64(static_cast<Poco::Int64>(lookup.file.size));
        response.set("ETag", "\"" + artifact->sha256 + "\"");
        std::ostream& out = response.send();
        out.flush();  // the headers are on the socket; the body follows them
        StreamSocket& socket = static_cast<HTTPServerRequestImpl&>(request).socket();
        socket.setSendTimeout(Poco::Timespan(c_.options.request_timeout.count(), 0));
        const int fd = socket.impl()->sockfd();
        off_t offset = 0;
        const auto size = static_cast<off_t>(lookup.file.size);
        while (offset < size) {
            const ssize_t n = ::sendfile(fd, lookup.file.fd, &offset, static_cast<size_t>(size - offset));
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            // A client that stopped reading, or went: the body is cut short, so is the connection.
            socket.shutdown();
            return;
        }
    }

    void metrics(HTTPServerResponse& response) {
        const QueueMetrics m = c_.queue.metrics();
        reply(response, HTTPResponse::HTTP_OK,
              {{"queue_length", m.queued},
               {"building", m.building},
               {"targets_built", m.built},
               {"targets_failed", m.failed},
               {"builds_done", m.builds_done},
               {"builds_failed", m.builds_failed},
               {"mean_build_seconds", m.mean_build_s},
               {"requests", c_.requests.load()},
               {"request_timeouts", c_.watch.timeouts()}});
    }

    // The same figures in Prometheus' text format (0.0.4), where scrapers look for them.
    void prometheus(HTTPServerResponse& response) {
        const QueueMetrics m = c_.queue.metrics();
        std::string text;
        const auto metric = [&](const char* name, const char* type, const char* help, const auto& value,
                                const std::string& labels = "") {
            if (labels.empty() || text.find(std::string("# TYPE ") + name + " ") == std::string::npos)
                text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
            std::ostringstream line;
            line << name << labels << ' ' << value << '\n';
            text += line.str();
        };
        metric("kbuild_serve_targets", "gauge", "Targets the service knows, by state.", m.queued, "{state=\"queued\"}");
        metric("kbuild_serve_targets", "gauge", "", m.building, "{state=\"building\"}");
        metric("kbuild_serve_targets", "gauge", "", m.built, "{state=\"built\"}");
        metric("kbuild_serve_targets", "gauge", "", m.failed, "{state=\"failed\"}");
        metric("kbuild_serve_builds_total", "counter", "Builds finished since the start, by result.", m.builds_done,
               "{result=\"done\"}");
        metric("kbuild_serve_builds_total", "counter", "", m.builds_failed, "{result=\"failed\"}");
        metric("kbuild_serve_build_seconds_mean", "gauge", "Mean time of the builds done since the start.",
               m.mean_build_s);
        metric("kbuild_serve_requests_total", "counter", "HTTP requests read since the start.", c_.requests.load());
        metric("kbuild_serve_request_timeouts_total", "counter",
               "Requests cut off for taking longer than the request timeout.", c_.watch.timeouts());
        response.setStatusAndReason(HTTPResponse::HTTP_OK);
        response.setContentType("text/plain; version=0.0.4; charset=utf-8");
        response.setContentLength64(static_cast<Poco::Int64>(text.size()));
        response.send() << text << std::flush;
    }

    Context& c_;
};

class HandlerFactory : public HTTPRequestHandlerFactory {
public:
    explicit HandlerFactory(Context& context) : c_(context) {}
    HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override { return new ServiceHandler(c_); }
    // What HTTPServer::stopAll does: every open connection is told, and closed.
    void close_connections(const void* server) {
        bool abort_current = true;
        serverStopped(server, abort_current);
    }

private:
    Context& c_;
};

// An HTTP connection with a deadline for each request it reads (see ConnectionWatch).
class WatchedConnection : public HTTPServerConnection {
public:
    WatchedConnection(const StreamSocket& socket, HTTPServerParams::Ptr params, HTTPRequestHandlerFactory::Ptr factory,
                      Context& context)
        : HTTPServerConnection(socket, params, factory), c_(context) {}

    void run() override {
        ConnectionWatch::Slot slot{socket(), std::nullopt, {false}};
        c_.watch.add(&slot, c_.options.request_timeout);
        t_slot = &slot;
        struct Leave {
            Context& c;
            ConnectionWatch::Slot* slot;
            ~Leave() {
                t_slot = nullptr;
                c.watch.remove(slot);
            }
        } leave{c_, &slot};
        HTTPServerConnection::run();
    }

private:
    Context& c_;
};

class WatchedConnectionFactory : public TCPServerConnectionFactory {
public:
    WatchedConnectionFactory(HTTPServerParams::Ptr params, HTTPRequestHandlerFactory::Ptr factory, Context& context)
        : params_(std::move(params)), factory_(std::move(factory)), c_(context) {}
    TCPServerConnection* createConnection(const StreamSocket& socket) override {
        return new WatchedConnection(socket, params_, factory_, c_);
    }

private:
    HTTPServerParams::Ptr params_;
    HTTPRequestHandlerFactory::Ptr factory_;
    Context& c_;
};

}  // namespace

struct ServiceServer::Impl {
    Impl(BuildQueue& queue, ServiceCatalog catalog, HttpOptions options)
        : context(queue, std::move(catalog), std::move(options)),
          pool(2, std::max(2, context.options.max_threads)),
          factory(new HandlerFactory(context)),
          handlers(factory) {
        const HttpOptions& o = context.options;
        HTTPServerParams::Ptr params = new HTTPServerParams;
        params->setMaxThreads(std::max(2, o.max_threads));
        params->setMaxQueued(std::max(1, o.max_queued));
        // Longer than a request's deadline: the watch answers a slow request 408 before a
        // read times out; this bounds a send to a client that stopped reading.
        params->setTimeout(Poco::Timespan(2 * o.request_timeout.count() + 1, 0));
        params->setKeepAlive(true);
        params->setKeepAliveTimeout(Poco::Timespan(o.keep_alive.count(), 0));
        params->setMaxKeepAliveRequests(1000);
        params->setServerName("kbuild");
        ServerSocket socket(SocketAddress(o.host, o.port), 1024);
        server =
            std::make_unique<TCPServer>(new WatchedConnectionFactory(params, handlers, context), pool, socket, params);
    }

    Context context;
    Poco::ThreadPool pool;    // outlives the server, which runs its connections on it
    HandlerFactory* factory;  // owned by handlers
    HTTPRequestHandlerFactory::Ptr handlers;
    std::unique_ptr<TCPServer> server;
    bool stopped = false;
};

ServiceServer::ServiceServer(BuildQueue& queue, ServiceCatalog catalog, HttpOptions options)
    : impl_(std::make_unique<Impl>(queue, std::move(catalog), std::move(options))) {}

ServiceServer::~ServiceServer() {
    stop();
}

void ServiceServer::start() {
    impl_->server->start();
}

std::uint16_t ServiceServer::port() const {
    return impl_->server->port();
}

void ServiceServer::begin_shutdown() {
    impl_->context.shutting_down = true;
}

void ServiceServer::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->context.shutting_down = true;
    impl_->server->stop();
    impl_->factory->close_connections(impl_->server.get());
}

}  // namespace kbuild
