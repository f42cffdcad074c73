#include "serve/service_http.h"

#include "util/strings.h"

#include <kbuild/digest.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/file_posix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <atomic>
#include <cmath>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// A file sent as the body of an answer in 256 KiB pieces. Beast's file_body reads 4 KiB at a
// time, and each piece is a write and a turn of the I/O thread: a 110 KB module took 27 of them.
struct LargeFileBody {
    struct value_type {
        beast::file_posix file;
        std::uint64_t size = 0;
    };
    static std::uint64_t size(const value_type& body) { return body.size; }

    class writer {
    public:
        using const_buffers_type = net::const_buffer;
        template <bool isRequest, class Fields>
        writer(const http::header<isRequest, Fields>&, value_type& body) : body_(body) {}
        void init(beast::error_code& ec) { ec = {}; }
        boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
            const std::uint64_t left = body_.size - sent_;
            if (left == 0) {
                ec = {};
                return boost::none;
            }
            if (buffer_.empty()) buffer_.resize(kPiece);
            const std::size_t n = body_.file.read(buffer_.data(), std::min<std::uint64_t>(left, kPiece), ec);
            if (ec) return boost::none;
            if (n == 0) {  // the file is shorter than it was: the answer cannot be finished
                ec = boost::system::errc::make_error_code(boost::system::errc::io_error);
                return boost::none;
            }
            sent_ += n;
            return {{net::const_buffer(buffer_.data(), n), sent_ < body_.size}};
        }

    private:
        static constexpr std::size_t kPiece = 256 * 1024;
        value_type& body_;
        std::vector<char> buffer_;
        std::uint64_t sent_ = 0;
    };
};

}  // namespace
using boost::system::error_code;

namespace kbuild {
namespace {

constexpr const char* kModulePrefix = "/v1/module/";
constexpr std::size_t kHeaderLimit = 16 << 10;  // a request's line and headers
constexpr std::size_t kLingerLimit = 16 << 20;  // bytes read and dropped after an early answer
constexpr auto kLingerTime = std::chrono::seconds(2);

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
    std::atomic<bool> shutting_down{false};
    std::atomic<std::uint64_t> requests{0}, timeouts{0}, refused_busy{0};
    std::atomic<std::size_t> connections{0};  // open now, each with its session
    std::atomic<std::size_t> handling{0};     // requests given to the handler threads, not yet answered
};

bool same_secret(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() != b.size();
    for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(1, b.size())];
    return diff == 0;
}

std::string location_of(const TargetState& state, const std::string& name) {
    return kModulePrefix + state.request.key() + "/" + name;
}

using Request = http::request<http::string_body>;

// What a handler answers: a JSON (or text) body, or an artifact's open file.
struct Reply {
    http::status status = http::status::ok;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string content_type = "application/json";
    std::string body;
    OpenArtifact file;    // fd >= 0: the body is this file
    bool close = false;   // the connection closes after this answer
    bool linger = false;  // ... after reading what the client still sends (it was not read)
};

Reply json_reply(http::status status, const Json& body) {
    Reply r;
    r.status = status;
    r.body = body.dump() + "\n";
    return r;
}

// An answer given before the body was read: the connection closes, so an unread body is
// never taken for the next request, and what the client still sends is read and dropped for a
// moment first (nginx's lingering close), so closing does not reset the answer away.
Reply refusal(http::status status, const Json& body) {
    Reply r = json_reply(status, body);
    r.close = r.linger = true;
    return r;
}

Reply bad_field(const std::string& field, const std::string& why) {
    Reply r = json_reply(http::status::bad_request, {{"error", why}, {"field", field}});
    r.close = true;
    return r;
}

Reply retry_later(http::status status, const std::string& why, int seconds) {
    Reply r = json_reply(status, {{"error", why}});
    r.headers.emplace_back("Retry-After", std::to_string(seconds));
    return r;
}

// The one mapping from a target's state to an HTTP answer, for POST and GET alike.
Reply answer(BuildQueue::Answer answer, const TargetState& state, const std::string& name) {
    using Answer = BuildQueue::Answer;
    switch (answer) {
        case Answer::built: {
            Json artifacts = Json::array();
            for (const auto& a : state.artifacts)
                artifacts.push_back({{"name", a.name},
                                     {"location", location_of(state, a.name)},
                                     {"sha256", a.sha256},
                                     {"vermagic", a.vermagic}});
            return json_reply(http::status::ok, {{"status", "built"},
                                                 {"location", location_of(state, name)},
                                                 {"artifacts", artifacts},
                                                 {"config_match", state.config_match}});
        }
        case Answer::pending: {
            Reply r = json_reply(http::status::accepted, {{"status", to_string(state.status)},
                                                          {"location", location_of(state, name)},
                                                          {"reason", state.reason}});
            r.headers.emplace_back("Location", location_of(state, name));
            r.headers.emplace_back("Retry-After", "5");
            return r;
        }
        case Answer::failed:
            return json_reply(http::status::unprocessable_entity, {{"status", "failed"},
                                                                   {"reason", state.reason},
                                                                   {"log", state.log},
                                                                   {"finished_at", state.finished_at}});
        case Answer::queue_full:
            return retry_later(http::status::too_many_requests, "the build queue is full; try again later", 30);
        case Answer::shutting_down:
            return retry_later(http::status::service_unavailable, "the service is shutting down", 30);
    }
    return json_reply(http::status::internal_server_error, {{"error", "no answer"}});
}

// The handlers. Those that touch the queue's files (a POST's config, an artifact's checksum)
// run on the handler threads; the rest, and the checks a POST's headers allow before its body
// is read, run where the connection's I/O does and never wait.
class Handlers {
public:
    explicit Handlers(Context& context) : c_(context) {}

    // What can be said from the request line alone, or nullopt to go on (read the body, then
    // `handle`). Never blocks.
    std::optional<Reply> early(const http::request_header<>& request, const std::string& client,
                               std::optional<std::uint64_t> content_length) const {
        const std::string uri = path_of(request);
        if (uri != "/v1/module" || request.method() != http::verb::post) return std::nullopt;
        if (c_.shutting_down) {
            Reply r = refusal(http::status::service_unavailable, {{"error", "the service is shutting down"}});
            r.headers.emplace_back("Retry-After", "30");
            return r;
        }
        if (!c_.options.token.empty()) {
            const std::string given(request[http::field::authorization]);
            if (!same_secret(given, "Bearer " + c_.options.token)) {
                Reply r = refusal(http::status::unauthorized,
                                  {{"error", given.empty() ? "Authorization: a bearer token is needed"
                                                           : "Authorization: not the service's bearer token"}});
                r.headers.emplace_back("WWW-Authenticate", "Bearer");
                return r;
            }
        }
        if (const int wait = c_.limiter.take(client)) {
            Reply r = refusal(http::status::too_many_requests,
                              {{"error", "too many requests from this client (at most " +
                                             std::to_string(c_.options.posts_per_minute) + " a minute)"}});
            r.headers.emplace_back("Retry-After", std::to_string(wait));
            return r;
        }
        if (const int wait = c_.total_limiter.take("")) {
            Reply r = refusal(http::status::service_unavailable,
                              {{"error", "the service is taking no more requests now (at most " +
                                             std::to_string(c_.options.posts_per_minute_total) +
                                             " a minute from all clients); try again later"}});
            r.headers.emplace_back("Retry-After", std::to_string(wait));
            return r;
        }
        if (content_length && *content_length > c_.options.max_body) return too_large();
        return std::nullopt;
    }

    Reply too_large() const {
        return refusal(http::status::payload_too_large,
                       {{"error", "body: larger than " + std::to_string(c_.options.max_body) + " bytes"}});
    }

    // True when `handle` may wait (on files, or on the queue's lock while it saves its state)
    // and belongs on a handler thread. What stays on the I/O threads never waits: health, and
    // the metrics (the queue's figures as of its last change), which a scraper gets even when
    // every handler is busy.
    static bool slow(const Request& request) {
        const std::string uri = path_of(request);
        return (uri == "/v1/module" && request.method() == http::verb::post) ||
               (uri.rfind(kModulePrefix, 0) == 0 && request.method() == http::verb::get);
    }

    Reply handle(const Request& request) const {
        try {
            return route(request);
        } catch (const std::exception& e) {
            spdlog::error("{} {}: {}", std::string(request.method_string()).substr(0, 16),
                          std::string(request.target()).substr(0, 200), e.what());
            return json_reply(http::status::internal_server_error, {{"error", e.what()}});
        }
    }

private:
    static std::string path_of(const http::request_header<>& request) {
        const auto target = request.target();
        return std::string(target.substr(0, target.find('?')));
    }

    Reply route(const Request& request) const {
        const std::string uri = path_of(request);
        const http::verb method = request.method();
        auto only = [&](http::verb allowed) -> std::optional<Reply> {
            if (method == allowed) return std::nullopt;
            Reply r =
                json_reply(http::status::method_not_allowed,
                           {{"error", std::string(request.method_string()).substr(0, 16) + " " + uri.substr(0, 64) +
                                          ": only " + std::string(http::to_string(allowed))}});
            r.headers.emplace_back("Allow", std::string(http::to_string(allowed)));
            r.close = true;
            return r;
        };
        if (uri == "/v1/module") {
            if (auto wrong = only(http::verb::post)) return std::move(*wrong);
            return post_module(request);
        }
        if (uri.rfind(kModulePrefix, 0) == 0) {
            if (auto wrong = only(http::verb::get)) return std::move(*wrong);
            return get_module(uri.substr(std::string(kModulePrefix).size()));
        }
        if (uri == "/v1/health") {
            if (auto wrong = only(http::verb::get)) return std::move(*wrong);
            if (c_.shutting_down) return json_reply(http::status::service_unavailable, {{"status", "shutting down"}});
            return json_reply(http::status::ok, {{"status", "ok"}});
        }
        if (uri == "/v1/metrics") {
            if (auto wrong = only(http::verb::get)) return std::move(*wrong);
            return metrics();
        }
        if (uri == "/metrics") {
            if (auto wrong = only(http::verb::get)) return std::move(*wrong);
            return prometheus();
        }
        Reply r = json_reply(http::status::not_found, {{"error", "no such path"}});
        r.close = true;
        return r;
    }

    Reply post_module(const Request& request) const {
        auto read = read_module_post(request.body(), {c_.catalog.check_build_type, c_.catalog.modules});
        if (const auto* refused = std::get_if<Refused>(&read)) return bad_field(refused->field, refused->why);
        auto& [asked, config] = std::get<PostedModule>(read);
        const std::string& module = c_.catalog.modules.at(asked.module_version);
        if (c_.catalog.keep_config) {
            try {
                c_.catalog.keep_config(asked, config);
            } catch (const std::exception& e) {
                spdlog::error("keeping the config of {}: {}", asked.key(), e.what());
                Reply r = json_reply(http::status::internal_server_error,
                                     {{"error", "the service cannot keep the request's config"}});
                r.close = true;
                return r;
            }
        }
        const auto submitted = c_.queue.submit(asked, module);
        return answer(submitted.answer, submitted.state, module + ".ko");
    }

    Reply get_module(const std::string& path) const {
        const auto read = read_module_path(path);
        if (const auto* refused = std::get_if<Refused>(&read)) {
            if (!refused->not_found) return bad_field(refused->field, refused->why);
            Reply r = json_reply(http::status::not_found, {{"error", refused->why}});
            r.close = true;
            return r;
        }
        const ModulePath& asked = std::get<ModulePath>(read);
        const std::string& name = asked.name;
        BuildQueue::Lookup lookup = c_.queue.open_artifact(asked.request.key(), name);
        if (!lookup.answer)
            return json_reply(http::status::not_found, {{"error", "no such module: POST /v1/module to ask for it"}});
        if (*lookup.answer != BuildQueue::Answer::built) return answer(*lookup.answer, lookup.state, name);
        // The file as it was opened and checked.
        const auto artifact = std::find_if(lookup.state.artifacts.begin(), lookup.state.artifacts.end(),
                                           [&](const ServiceArtifact& a) { return a.name == name; });
        Reply r;
        r.content_type = "application/octet-stream";
        r.headers.emplace_back("ETag", "\"" + artifact->sha256 + "\"");
        r.file = std::move(lookup.file);
        return r;
    }

    Reply metrics() const {
        const QueueMetrics m = c_.queue.metrics();
        return json_reply(http::status::ok, {{"queue_length", m.queued},
                                             {"building", m.building},
                                             {"targets_built", m.built},
                                             {"targets_failed", m.failed},
                                             {"builds_done", m.builds_done},
                                             {"builds_failed", m.builds_failed},
                                             {"mean_build_seconds", m.mean_build_s},
                                             {"targets_forgotten", m.forgotten},
                                             {"requests", c_.requests.load()},
                                             {"request_timeouts", c_.timeouts.load()},
                                             {"connections", c_.connections.load()},
                                             {"refused_busy", c_.refused_busy.load()}});
    }

    // The same figures in Prometheus' text format (0.0.4), where scrapers look for them.
    Reply prometheus() const {
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
        metric("kbuild_serve_targets_forgotten_total", "counter",
               "Failed targets forgotten since the start (too old, or too many).", m.forgotten);
        metric("kbuild_serve_builds_total", "counter", "Builds finished since the start, by result.", m.builds_done,
               "{result=\"done\"}");
        metric("kbuild_serve_builds_total", "counter", "", m.builds_failed, "{result=\"failed\"}");
        metric("kbuild_serve_build_seconds_mean", "gauge", "Mean time of the builds done since the start.",
               m.mean_build_s);
        metric("kbuild_serve_requests_total", "counter", "HTTP requests read since the start.", c_.requests.load());
        metric("kbuild_serve_request_timeouts_total", "counter",
               "Requests cut off for taking longer than the request timeout.", c_.timeouts.load());
        metric("kbuild_serve_connections", "gauge", "Connections open now.", c_.connections.load());
        metric("kbuild_serve_refused_busy_total", "counter",
               "Connections and requests answered 503 for want of room since the start.", c_.refused_busy.load());
        Reply r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = std::move(text);
        return r;
    }

    Context& c_;
};

// The server's shared parts: the I/O threads' context, the handler threads, the open sessions.
class Session;
struct Server {
    Server(Context& c, int handler_threads)
        : context(c), handlers(c), pool(static_cast<std::size_t>(handler_threads)) {}
    Context& context;
    Handlers handlers;
    std::mutex sessions_mutex;  // before `io`: the sessions it destroys leave the set
    std::unordered_set<Session*> sessions;
    net::io_context io;
    net::thread_pool pool;
};

// One connection, on its own strand: reads each request against a deadline (a slow client
// costs a socket and a buffer, never a thread), hands it to a handler, writes the answer.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, Server& server)
        : socket_(std::move(socket)), timer_(socket_.get_executor()), s_(server), c_(server.context) {
        ++c_.connections;
        error_code ec;
        const auto peer = socket_.remote_endpoint(ec);
        if (!ec) client_ = peer.address().to_string();
        std::lock_guard lock(s_.sessions_mutex);
        s_.sessions.insert(this);
    }
    ~Session() {
        --c_.connections;
        std::lock_guard lock(s_.sessions_mutex);
        s_.sessions.erase(this);
    }

    void start() {
        // The first request's deadline counts from the connection.
        deadline_ = Clock::now() + c_.options.request_timeout;
        await_request(true);
    }

    // Over capacity: one 503 and a lingering close, nothing read as a request.
    void refuse_busy() {
        ++c_.refused_busy;
        Reply r =
            retry_later(http::status::service_unavailable, "the service has too many connections; try again later", 2);
        r.close = r.linger = true;
        write(std::move(r), 11);
    }

    tcp::socket::executor_type executor() { return socket_.get_executor(); }

    // Only once the I/O threads have stopped.
    void close_now() { close(); }

private:
    // Fires at `deadline`: what the socket is doing is cancelled and `timed_out_` says why.
    void arm(Clock::time_point deadline) {
        timed_out_ = false;
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (ec) return;  // re-armed or disarmed
            self->timed_out_ = true;
            error_code ignored;
            self->socket_.cancel(ignored);
        });
    }
    void disarm() { timer_.cancel(); }

    // Waits for a request's first bytes (a kept-alive connection may idle for keep_alive),
    // then reads its head.
    void await_request(bool first) {
        if (buffer_.size() > 0) {  // pipelined: its first bytes are in
            if (!first) deadline_ = Clock::now() + c_.options.request_timeout;
            return read_head();
        }
        const auto idle = first ? deadline_ : Clock::now() + c_.options.keep_alive;
        arm(idle);
        socket_.async_read_some(buffer_.prepare(4096),
                                [self = shared_from_this(), first](error_code ec, std::size_t n) {
                                    self->buffer_.commit(n);
                                    if (ec) {
                                        // A new connection that sent nothing in time is told; an idle one just closes.
                                        if (self->timed_out_ && first) return self->time_out();
                                        return self->close();
                                    }
                                    if (!first) self->deadline_ = Clock::now() + self->c_.options.request_timeout;
                                    self->read_head();
                                });
    }

    void read_head() {
        parser_.emplace();
        parser_->header_limit(kHeaderLimit);
        parser_->body_limit(c_.options.max_body);
        arm(deadline_);
        http::async_read_header(socket_, buffer_, *parser_,
                                [self = shared_from_this()](error_code ec, std::size_t) { self->on_head(ec); });
    }

    void on_head(error_code ec) {
        if (ec) return read_failed(ec);
        ++c_.requests;
        const auto& head = parser_->get();
        version_ = head.version();
        keep_alive_ = head.keep_alive();
        const auto length = parser_->content_length();
        if (auto early =
                s_.handlers.early(head, client_, length ? std::optional<std::uint64_t>(*length) : std::nullopt))
            return write(std::move(*early));
        if (parser_->is_done()) return dispatch();
        const bool expects = beast::iequals(head[http::field::expect], "100-continue");
        if (!expects) return read_body();
        static const std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
        net::async_write(socket_, net::buffer(go_on), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->read_failed(ec);
            self->read_body();
        });
    }

    void read_body() {
        http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->read_failed(ec);
            self->dispatch();
        });
    }

    void read_failed(error_code ec) {
        if (timed_out_) return time_out();
        if (ec == http::error::body_limit) return write(s_.handlers.too_large());
        if (ec == http::error::header_limit)
            return write(refusal(http::status::request_header_fields_too_large,
                                 {{"error", "headers: larger than " + std::to_string(kHeaderLimit) + " bytes"}}));
        if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message)
            return write(refusal(http::status::bad_request, {{"error", "not an HTTP request: " + ec.message()}}));
        close();  // the client went
    }

    // A request not in by its deadline: 408, sent without waiting, and a lingering close (a
    // plain one would reset the connection when the client's next bytes are in, and the 408
    // would be lost with them).
    void time_out() {
        ++c_.timeouts;
        static const std::string answer =
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 53\r\n"
            "Connection: close\r\n\r\n{\"error\":\"the request was not sent in time; closing\"}\n";
        error_code ec;
        socket_.non_blocking(true, ec);
        socket_.write_some(net::buffer(answer), ec);
        if (ec) return close();
        linger();
    }

    void dispatch() {
        disarm();
        auto request = std::make_shared<Request>(parser_->release());
        if (!Handlers::slow(*request)) return write(s_.handlers.handle(*request));
        const auto limit =
            static_cast<std::size_t>(c_.options.max_threads) + static_cast<std::size_t>(c_.options.max_queued);
        if (++c_.handling > limit) {
            --c_.handling;
            ++c_.refused_busy;
            return write(retry_later(http::status::service_unavailable, "the service is busy; try again later", 2));
        }
        net::post(s_.pool, [self = shared_from_this(), request] {
            auto reply = std::make_shared<Reply>(self->s_.handlers.handle(*request));
            --self->c_.handling;
            net::post(self->socket_.get_executor(), [self, reply] { self->write(std::move(*reply)); });
        });
    }

    // Writes the answer; then the next request, or a (lingering) close. Each write's progress
    // has request_timeout, so a client that stops reading is dropped.
    void write(Reply reply, unsigned version = 0) {
        const bool keep = keep_alive_ && !reply.close && !c_.shutting_down && ++served_ < 1000;
        const unsigned v = version ? version : version_;
        auto finish = [self = shared_from_this(), keep, linger = reply.linger](error_code ec) {
            self->response_.reset();
            if (ec || !keep) return linger && !ec ? self->linger() : self->close();
            self->await_request(false);
        };
        if (reply.file.fd >= 0) {
            beast::file_posix file;
            file.native_handle(reply.file.fd);
            reply.file.fd = -1;
            auto message = std::make_shared<http::response<LargeFileBody>>(reply.status, v);
            error_code ec;
            message->body().size = file.size(ec);
            if (ec) return close();
            message->body().file = std::move(file);
            fill(*message, reply, keep);
            auto serializer = std::make_shared<http::response_serializer<LargeFileBody>>(*message);
            response_ = std::make_shared<std::pair<decltype(message), decltype(serializer)>>(message, serializer);
            write_some(*serializer, std::move(finish));
        } else {
            auto message = std::make_shared<http::response<http::string_body>>(reply.status, v);
            message->body() = std::move(reply.body);
            fill(*message, reply, keep);
            auto serializer = std::make_shared<http::response_serializer<http::string_body>>(*message);
            response_ = std::make_shared<std::pair<decltype(message), decltype(serializer)>>(message, serializer);
            write_some(*serializer, std::move(finish));
        }
    }

    template <class Message>
    void fill(Message& message, const Reply& reply, bool keep) {
        message.set(http::field::server, "kbuild");
        message.set(http::field::content_type, reply.content_type);
        for (const auto& [name, value] : reply.headers) message.set(name, value);
        message.keep_alive(keep);
        message.prepare_payload();
    }

    template <class Serializer, class Done>
    void write_some(Serializer& serializer, Done done) {
        arm(Clock::now() + c_.options.request_timeout);
        http::async_write_some(socket_, serializer,
                               [self = shared_from_this(), &serializer, done](error_code ec, std::size_t) mutable {
                                   if (!ec && !serializer.is_done()) return self->write_some(serializer, done);
                                   self->disarm();
                                   done(ec);
                               });
    }

    // Stops sending, reads and drops what the client still sends for a moment, then closes.
    void linger() {
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        arm(Clock::now() + kLingerTime);
        drain();
    }
    void drain() {
        socket_.async_read_some(net::buffer(sink_), [self = shared_from_this()](error_code ec, std::size_t n) {
            self->dropped_ += n;
            if (ec || self->dropped_ > kLingerLimit) return self->close();
            self->drain();
        });
    }

    void close() {
        disarm();
        error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    net::steady_timer timer_;
    Server& s_;
    Context& c_;
    std::string client_;
    beast::flat_buffer buffer_{kHeaderLimit + 4096};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<void> response_;  // the message being written and its serializer
    Clock::time_point deadline_;
    bool timed_out_ = false, keep_alive_ = false;
    unsigned version_ = 11;
    unsigned served_ = 0;
    std::size_t dropped_ = 0;
    std::array<char, 16384> sink_{};
};

// Raises the soft limit of open files to what `connections` need; returns how many the limit
// allows.
std::size_t room_for_connections(std::size_t connections) {
    constexpr rlim_t kSpare = 128;  // the service's own files: logs, artifacts, builds
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return connections;
    const rlim_t wanted = static_cast<rlim_t>(connections) + kSpare;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return connections;
    const auto allowed = static_cast<std::size_t>(limit.rlim_cur > 2 * kSpare ? limit.rlim_cur - kSpare : kSpare);
    spdlog::warn("open files are limited to {}: serving at most {} connections, not {}", limit.rlim_cur, allowed,
                 connections);
    return allowed;
}

}  // namespace

struct ServiceServer::Impl {
    Impl(BuildQueue& queue, ServiceCatalog catalog, HttpOptions options)
        : context(queue, std::move(catalog), std::move(options)),
          server(context, std::max(1, context.options.max_threads)),
          acceptor(server.io),
          max_connections(
              room_for_connections(static_cast<std::size_t>(std::max(1, context.options.max_connections)))) {
        const HttpOptions& o = context.options;
        const tcp::endpoint endpoint(net::ip::make_address(o.host), o.port);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(4096);
        acceptor.non_blocking(true);  // for the synchronous accepts that drain a burst
        port = acceptor.local_endpoint().port();
    }

    void accept() {
        acceptor.async_accept(net::make_strand(server.io), [this](error_code ec, tcp::socket socket) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
            if (ec) {
                // Out of descriptors, most likely: say so now and then, and give closes a moment.
                const auto now = Clock::now();
                if (now - last_accept_error > std::chrono::seconds(10)) {
                    spdlog::warn("accepting a connection: {}", ec.message());
                    last_accept_error = now;
                }
                pause.expires_after(std::chrono::milliseconds(50));
                pause.async_wait([this](error_code) { accept(); });
                return;
            }
            admit(std::move(socket));
            // A burst (300 clients coming back at once) is taken whole, not one connection per
            // turn of the I/O threads behind every busy connection's work.
            for (int more = 0; more < 1024; ++more) {
                error_code again;
                tcp::socket next = acceptor.accept(net::make_strand(server.io), again);
                if (again) break;  // would block, or the next async accept will say
                admit(std::move(next));
            }
            accept();
        });
    }

    void admit(tcp::socket socket) {
        // An answer goes out as its head and then its body (a file's, in pieces): with Nagle's
        // algorithm the body's first piece waits for the client's delayed ACK of the head, 40 ms
        // on Linux, so a kept-alive client got 25 answers a second.
        error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<Session>(std::move(socket), server);
        // Those over the bound get a 503 (and count until their lingering close ends); beyond
        // twice the bound a connection is closed unanswered.
        const std::size_t open = context.connections.load();
        if (open > 2 * max_connections) {
            ++context.refused_busy;
            return;
        }
        net::post(session->executor(),
                  [session, busy = open > max_connections] { busy ? session->refuse_busy() : session->start(); });
    }

    Context context;  // before `server`: sessions destroyed with the I/O context count down in it
    Server server;
    tcp::acceptor acceptor;
    net::steady_timer pause{server.io};
    Clock::time_point last_accept_error{};
    std::size_t max_connections;
    std::uint16_t port = 0;
    std::vector<std::thread> threads;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    bool stopped = false;
};

ServiceServer::ServiceServer(BuildQueue& queue, ServiceCatalog catalog, HttpOptions options)
    : impl_(std::make_unique<Impl>(queue, std::move(catalog), std::move(options))) {}

ServiceServer::~ServiceServer() {
    stop();
}

void ServiceServer::start() {
    Impl& i = *impl_;
    if (!i.threads.empty()) return;
    i.work.emplace(i.server.io.get_executor());
    net::post(i.server.io, [&i] { i.accept(); });
    // The connections' I/O: two threads, so that one busy handler of the quick kind (a health
    // check waiting for the queue's lock) never stalls every connection.
    for (int t = 0; t < 2; ++t) i.threads.emplace_back([&i] { i.server.io.run(); });
}

std::uint16_t ServiceServer::port() const {
    return impl_->port;
}

void ServiceServer::begin_shutdown() {
    impl_->context.shutting_down = true;
}

void ServiceServer::stop() {
    Impl& i = *impl_;
    if (i.stopped) return;
    i.stopped = true;
    i.context.shutting_down = true;
    // Let running handlers end, stop the I/O threads, then stop accepting and close every open
    // connection (what is left of their work goes with the I/O context).
    i.server.pool.join();
    i.work.reset();
    i.server.io.stop();
    for (auto& thread : i.threads) thread.join();
    i.threads.clear();
    error_code ignored;
    i.acceptor.close(ignored);
    std::lock_guard lock(i.server.sessions_mutex);
    for (Session* session : i.server.sessions) session->close_now();
}

}  // namespace kbuild
