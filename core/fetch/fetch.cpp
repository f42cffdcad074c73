#include "fetch/fetch.h"

#include "util/parallel.h"

#include <kbuild/digest.hpp>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/URI.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace kbuild {
namespace fs = std::filesystem;
using Poco::Net::HTTPClientSession;
using Poco::Net::HTTPRequest;
using Poco::Net::HTTPResponse;

namespace {

using Clock = std::chrono::steady_clock;

// Large enough that hashing and write() cost little per byte, small enough to never matter
// for memory with many downloads at once.
constexpr std::size_t kChunkBytes = 256 * 1024;
constexpr int kMaxRedirects = 5;

// One attempt's failure: the cause (the URL is added by the caller) and whether another
// attempt may succeed.
class AttemptFailed : public std::runtime_error {
public:
    AttemptFailed(const std::string& cause, bool retryable)
        : std::runtime_error(cause), retryable_(retryable) {}
    bool retryable() const { return retryable_; }

private:
    bool retryable_;
};

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return text;
}

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](unsigned char c) {
               return std::isxdigit(c) != 0;
           });
}

// "30 s", "0.3 s": how the timeout reads in an error.
std::string seconds_text(std::chrono::milliseconds duration) {
    std::ostringstream out;
    out << static_cast<double>(duration.count()) / 1000.0 << " s";
    return out.str();
}

// SHA-256 fed as bytes arrive, so a download is hashed without reading it back.
class Sha256 {
public:
    Sha256() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
            throw Error("sha256: OpenSSL cannot start a digest");
    }
    void update(const char* bytes, std::size_t count) {
        EVP_DigestUpdate(context_.get(), bytes, count);
    }
    std::string hex() {
        unsigned char raw[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        EVP_DigestFinal_ex(context_.get(), raw, &length);
        static const char digits[] = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < length; ++i) {
            out += digits[raw[i] >> 4];
            out += digits[raw[i] & 15];
        }
        return out;
    }

private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

std::string sha256_of(const std::string& text) {
    Sha256 hash;
    hash.update(text.data(), text.size());
    return hash.hex();
}

// The name a URL's file keeps in the cache: the last path segment, made safe for any file
// system, so a cached package still reads as what it is.
std::string file_name_for(const std::string& url) {
    std::string path;
    try {
        path = Poco::URI(url).getPath();
    } catch (const Poco::Exception&) {
    }
    const auto slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    for (char& c : name) {
        const bool safe = std::isalnum(static_cast<unsigned char>(c)) ||
                          (c != '\0' && std::strchr("._+-~", c) != nullptr);
        if (!safe) c = '_';
    }
    if (name.size() > 200) name.resize(200);
    if (name.find_first_not_of('.') == std::string::npos) return "index";
    return name;
}

// ---- proxies ----

std::string environment(const char* lower, const char* upper) {
    for (const char* name : {lower, upper}) {
        const char* value = std::getenv(name);
        if (value != nullptr && *value != '\0') return value;
    }
    return "";
}

struct ProxyServer {
    std::string host;
    Poco::UInt16 port = 0;
    std::string user;
    std::string password;
};

// One NO_PROXY entry: "host", ".host", "*.host", "1.2.3.4", "[::1]", each with an optional
// ":port".
struct NoProxyEntry {
    std::string host;
    std::optional<unsigned> port;
};

NoProxyEntry parse_no_proxy_entry(std::string entry) {
    std::string port_text;
    if (!entry.empty() && entry[0] == '[') {
        const auto close = entry.find(']');
        if (close != std::string::npos) {
            if (entry.compare(close + 1, 1, ":") == 0) port_text = entry.substr(close + 2);
            entry = entry.substr(1, close - 1);
        }
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
        port_text = entry.substr(entry.find(':') + 1);
        entry.resize(entry.find(':'));
    }
    NoProxyEntry parsed;
    if (entry.rfind("*.", 0) == 0) entry.erase(0, 1);
    if (!entry.empty() && entry[0] == '.') entry.erase(0, 1);
    parsed.host = entry;
    if (!port_text.empty() && port_text.find_first_not_of("0123456789") == std::string::npos &&
        port_text.size() <= 5)
        parsed.port = static_cast<unsigned>(std::stoul(port_text));
    return parsed;
}

// NO_PROXY: a comma-separated list; an entry matches its host and every subdomain of it,
// optionally only on one port; "*" matches everything.
bool no_proxy_matches(const std::string& list, const std::string& host, unsigned port) {
    const std::string wanted = lowercase(host);
    std::istringstream entries(list);
    std::string entry;
    while (std::getline(entries, entry, ',')) {
        entry = lowercase(trim(entry));
        if (entry == "*") return true;
        const NoProxyEntry parsed = parse_no_proxy_entry(entry);
        if (parsed.host.empty()) continue;
        if (parsed.port && *parsed.port != port) continue;
        if (wanted == parsed.host || ends_with(wanted, "." + parsed.host)) return true;
    }
    return false;
}

// A proxy setting fit for an error message: without its user and password.
std::string without_credentials(const std::string& setting) {
    const auto at = setting.rfind('@');
    if (at == std::string::npos) return setting;
    const auto scheme_end = setting.find("://");
    const std::string scheme = scheme_end < at ? setting.substr(0, scheme_end + 3) : "";
    return scheme + setting.substr(at + 1);
}

std::optional<ProxyServer> proxy_for(const Poco::URI& uri) {
    const std::string setting = uri.getScheme() == "https"
                                    ? environment("https_proxy", "HTTPS_PROXY")
                                    : environment("http_proxy", "HTTP_PROXY");
    if (setting.empty()) return std::nullopt;
    if (no_proxy_matches(environment("no_proxy", "NO_PROXY"), uri.getHost(), uri.getPort()))
        return std::nullopt;
    Poco::URI proxy;
    try {
        proxy = Poco::URI(setting.find("://") == std::string::npos ? "http://" + setting : setting);
    } catch (const Poco::Exception& e) {
        throw AttemptFailed("proxy " + without_credentials(setting) + ": " +
                                one_line(e.displayText()),
                            false);
    }
    if (proxy.getScheme() != "http" || proxy.getHost().empty())
        throw AttemptFailed("proxy " + without_credentials(setting) +
                                ": only http://host:port proxies are supported",
                            false);
    ProxyServer server{proxy.getHost(), proxy.getPort()};
    const std::string user_info = proxy.getUserInfo();
    const auto colon = user_info.find(':');
    server.user = user_info.substr(0, colon);
    if (colon != std::string::npos) server.password = user_info.substr(colon + 1);
    return server;
}

// ---- sessions ----

Poco::Net::Context::Ptr tls_context() {
    static std::once_flag once;
    static Poco::Net::Context::Ptr context;
    std::call_once(once, [] {
        Poco::Net::initializeSSL();
        Poco::Net::Context::Params params;
        params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
        params.loadDefaultCAs = true;  // the system CA store
        context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
        // Without this, SSLManager looks for its settings in a Poco::Util::Application.
        Poco::Net::SSLManager::instance().initializeClient(
            nullptr, new Poco::Net::RejectCertificateHandler(false), context);
    });
    return context;
}

// The session's own byte reads, which HTTPSession keeps protected. The body is read through
// them rather than Poco's response stream: Poco 1.11's chunked stream takes a connection closed
// mid-body for the end of the body, and its 4 KiB stream buffer makes one recv() per 4 KiB.
class SessionBytes {
public:
    virtual ~SessionBytes() = default;
    virtual int read_some(char* buffer, std::streamsize length) = 0;  // 0 at end of stream
    virtual int next_byte() = 0;                                      // EOF at end of stream
};

template <class Session>
class DirectSession : public Session, public SessionBytes {
public:
    using Session::Session;
    int read_some(char* buffer, std::streamsize length) override {
        return this->read(buffer, length);
    }
    int next_byte() override { return this->get(); }
};

std::unique_ptr<HTTPClientSession> open_session(const Poco::URI& uri,
                                                std::chrono::milliseconds timeout) {
    std::unique_ptr<HTTPClientSession> session;
    if (uri.getScheme() == "https")
        session = std::make_unique<DirectSession<Poco::Net::HTTPSClientSession>>(
            uri.getHost(), uri.getPort(), tls_context());
    else
        session = std::make_unique<DirectSession<HTTPClientSession>>(uri.getHost(),
                                                                      uri.getPort());
    session->setTimeout(Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) *
                                       1000));
    if (const auto proxy = proxy_for(uri)) {
        session->setProxy(proxy->host, proxy->port);
        if (!proxy->user.empty()) session->setProxyCredentials(proxy->user, proxy->password);
    }
    return session;
}

Poco::URI parse_url(const std::string& url) {
    Poco::URI uri;
    try {
        uri = Poco::URI(url);
    } catch (const Poco::Exception& e) {
        throw Error(url + ": not a URL (" + one_line(e.displayText()) + ")");
    }
    if (uri.getScheme() != "http" && uri.getScheme() != "https")
        throw Error(url + ": only http:// and https:// URLs can be fetched");
    if (uri.getHost().empty()) throw Error(url + ": no host in the URL");
    return uri;
}

bool is_redirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

AttemptFailed failure_from(const Poco::Exception& e, std::chrono::milliseconds timeout) {
    if (dynamic_cast<const Poco::TimeoutException*>(&e))
        return {"timed out after " + seconds_text(timeout), true};
    if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&e))
        return {"connection refused", true};
    if (dynamic_cast<const Poco::Net::ConnectionResetException*>(&e))
        return {"connection reset", true};
    // A name that does not exist will not exist in a second; a temporary DNS failure is a
    // DNSException, retried below.
    if (dynamic_cast<const Poco::Net::HostNotFoundException*>(&e))
        return {"host not found: " + one_line(e.message()), false};
    if (dynamic_cast<const Poco::Net::NoMessageException*>(&e))
        return {"connection closed before a response", true};
    // A certificate that does not verify will not verify on the next attempt either.
    if (dynamic_cast<const Poco::Net::CertificateValidationException*>(&e))
        return {"TLS certificate: " + one_line(e.displayText()), false};
    if (dynamic_cast<const Poco::Net::SSLException*>(&e))
        return {"TLS: " + one_line(e.displayText()), true};
    return {one_line(e.displayText()), true};
}

// ---- cache files ----

// Validators of a cached metadata file, kept beside it for a conditional GET (304).
struct Validators {
    std::string etag;
    std::string last_modified;
    bool empty() const { return etag.empty() && last_modified.empty(); }
};

fs::path validators_path(const fs::path& final_path) {
    return final_path.string() + ".validators";
}

Validators read_validators(const fs::path& final_path) {
    std::ifstream in(validators_path(final_path));
    Validators validators;
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("etag ", 0) == 0) validators.etag = line.substr(5);
        if (line.rfind("last-modified ", 0) == 0) validators.last_modified = line.substr(14);
    }
    return validators;
}

// Best effort: losing the validators only costs a full download next time.
void write_validators(const fs::path& final_path, const Validators& validators) {
    std::error_code ignored;
    fs::remove(validators_path(final_path), ignored);
    if (validators.empty()) return;
    std::ofstream out(validators_path(final_path));
    if (!validators.etag.empty()) out << "etag " << one_line(validators.etag) << "\n";
    if (!validators.last_modified.empty())
        out << "last-modified " << one_line(validators.last_modified) << "\n";
}

std::optional<std::int64_t> regular_file_size(const fs::path& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return std::nullopt;
    return static_cast<std::int64_t>(info.st_size);
}

// Holds flock() on "<final>.lock" so one download of a file runs at a time, across threads
// (each holder opens its own descriptor) and across kbuild processes. The kernel drops the
// lock when a holder dies, so a killed run never blocks the next.
class CacheLock {
public:
    CacheLock(const fs::path& final_path, const std::string& url) {
        const std::string lock_path = final_path.string() + ".lock";
        fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw Error(url + ": cannot open " + lock_path + ": " + std::strerror(errno));
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno == EINTR) continue;
            const int error = errno;
            ::close(fd_);
            throw Error(url + ": cannot lock " + lock_path + ": " + std::strerror(error));
        }
    }
    ~CacheLock() { ::close(fd_); }
    CacheLock(const CacheLock&) = delete;
    CacheLock& operator=(const CacheLock&) = delete;

private:
    int fd_ = -1;
};

// "<final>.part": written from the start on every attempt, renamed to the final name only by
// commit(); removed when an attempt gives up.
class PartFile {
public:
    explicit PartFile(fs::path path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) throw AttemptFailed("cannot write " + path_.string() + ": " +
                                         std::strerror(errno), false);
    }
    ~PartFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(path_.c_str());
    }
    PartFile(const PartFile&) = delete;
    PartFile& operator=(const PartFile&) = delete;

    const fs::path& path() const { return path_; }

    void write(const char* bytes, std::size_t count) {
        while (count > 0) {
            const ssize_t written = ::write(fd_, bytes, count);
            if (written < 0 && errno == EINTR) continue;
            if (written < 0) fail("cannot write");
            bytes += written;
            count -= static_cast<std::size_t>(written);
        }
    }

    // fsync first: after a crash, a file under its final name must hold every byte, since
    // the cache trusts the name.
    void commit(const fs::path& final_path) {
        if (::fsync(fd_) != 0) fail("cannot sync");
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail("cannot close");
        if (::rename(path_.c_str(), final_path.c_str()) != 0) fail("cannot rename");
        committed_ = true;
    }

private:
    [[noreturn]] void fail(const char* what) {
        throw AttemptFailed(std::string(what) + " " + path_.string() + ": " +
                                std::strerror(errno),
                            false);
    }

    fs::path path_;
    int fd_ = -1;
    bool committed_ = false;
};

std::string human_bytes(double bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
    return text;
}

}  // namespace

// Counts files and bytes of the downloads in flight; on a terminal, redraws one status line.
class Fetcher::Progress {
public:
    explicit Progress(bool draw) : draw_(draw) {}

    void plan(const std::vector<FetchRequest>& requests) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (files_done_ == files_total_) restart();
        files_total_ += static_cast<int>(requests.size());
        for (const auto& request : requests) {
            if (request.size >= 0) bytes_expected_ += request.size;
            else sizes_known_ = false;
        }
    }

    void add_bytes(std::int64_t count) {
        bytes_done_ += count;
        if (!draw_ || !claim_redraw()) return;
        std::lock_guard<std::mutex> lock(mutex_);
        draw(false);
    }

    // A file finished (downloaded, cached or failed); `untransferred` is how much of its
    // expected size will never arrive, so the ETA does not wait for it.
    void file_done(std::int64_t untransferred) {
        std::lock_guard<std::mutex> lock(mutex_);
        ++files_done_;
        if (untransferred > 0) bytes_expected_ -= untransferred;
        const bool last = files_done_ == files_total_;
        if (draw_ && (last || claim_redraw())) draw(last);
    }

private:
    // True for one caller at most every 100 ms, so many threads and many small files still
    // cost only ~10 redraws a second.
    bool claim_redraw() {
        const auto now = Clock::now().time_since_epoch().count();
        auto last = last_draw_.load();
        if (now - last < std::chrono::nanoseconds(std::chrono::milliseconds(100)).count())
            return false;
        return last_draw_.compare_exchange_strong(last, now);
    }

    void restart() {
        files_total_ = files_done_ = 0;
        bytes_expected_ = 0;
        sizes_known_ = true;
        bytes_done_ = 0;
        started_ = Clock::now();
    }

    void draw(bool last) {
        const std::int64_t bytes = bytes_done_.load();
        const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
        const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
        std::string line = "fetch: " + std::to_string(files_done_) + "/" +
                           std::to_string(files_total_) + " files, " + human_bytes(bytes) + ", " +
                           human_bytes(rate) + "/s";
        if (!last && sizes_known_ && rate > 0 && bytes_expected_ > bytes) {
            const auto eta = static_cast<long>(static_cast<double>(bytes_expected_ - bytes) / rate);
            char text[32];
            std::snprintf(text, sizeof text, ", ETA %ld:%02ld", eta / 60, eta % 60);
            line += text;
        }
        // \r and erase-to-end-of-line: the line is redrawn in place on the terminal.
        std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), last ? "\n" : "");
        std::fflush(stderr);
    }

    const bool draw_;
    std::mutex mutex_;
    int files_total_ = 0;
    int files_done_ = 0;
    std::int64_t bytes_expected_ = 0;
    bool sizes_known_ = true;
    std::atomic<std::int64_t> bytes_done_{0};
    std::atomic<Clock::rep> last_draw_{0};
    Clock::time_point started_ = Clock::now();
};

Fetcher::Fetcher(FetchOptions options)
    : options_(std::move(options)), progress_(std::make_unique<Progress>(options_.progress)) {}

Fetcher::~Fetcher() = default;

fs::path Fetcher::cache_path(const FetchRequest& request) const {
    // Keyed by URL and expected sha256: a package whose index changes its hash is fetched
    // again rather than served stale.
    const std::string key = sha256_of(request.url + "\n" + lowercase(request.sha256) +
                                      (request.sha512.empty() ? "" : "\n" + lowercase(request.sha512)));
    return options_.cache_dir / "downloads" / key / file_name_for(request.url);
}

FetchedFile Fetcher::fetch(const FetchRequest& request) {
    progress_->plan({request});
    return fetch_one(request);
}

std::vector<FetchOutcome> Fetcher::fetch_all(const std::vector<FetchRequest>& requests) {
    std::vector<FetchOutcome> outcomes(requests.size());
    progress_->plan(requests);
    parallel_for(requests.size(), static_cast<std::size_t>(std::max(1, options_.jobs)), [&] {
        return [&](std::size_t i) {
            outcomes[i].request = requests[i];
            try {
                outcomes[i].file = fetch_one(requests[i]);
            } catch (const std::exception& e) {
                outcomes[i].error = e.what();
            }
        };
    });
    return outcomes;
}

FetchedFile Fetcher::fetch_one(const FetchRequest& request) {
    try {
        parse_url(request.url);
        if (!request.sha256.empty() && !is_sha256_hex(request.sha256))
            throw Error(request.url + ": expected sha256 '" + request.sha256 +
                        "' is not 64 hex digits");
        const fs::path final_path = cache_path(request);
        std::error_code ec;
        fs::create_directories(final_path.parent_path(), ec);
        if (ec)
            throw Error(request.url + ": cannot create " + final_path.parent_path().string() +
                        ": " + ec.message());
        const CacheLock lock(final_path, request.url);
        const auto cached_size = regular_file_size(final_path);
        // The name was given only after the sha256 matched, so it is trusted as is.
        if (request.digest_known() && cached_size && (request.size < 0 || *cached_size == request.size)) {
            progress_->file_done(request.size);
            if (!options_.progress)
                spdlog::debug("{}: cached as {}", request.url, final_path.string());
            return {final_path.string(),
                    request.sha256.empty() ? sha256_file(final_path.string()) : lowercase(request.sha256),
                    *cached_size};
        }
        FetchedFile file = download(request, final_path);
        progress_->file_done(0);
        return file;
    } catch (...) {
        progress_->file_done(request.size);  // its bytes, if any, were taken back already
        throw;
    }
}

FetchedFile Fetcher::download(const FetchRequest& request, const fs::path& final_path) {
    const int attempts = std::max(1, options_.attempts);
    auto delay = options_.backoff;
    for (int attempt = 1;; ++attempt) {
        try {
            return this->attempt(request, final_path);
        } catch (const AttemptFailed& failure) {
            if (!failure.retryable()) throw Error(request.url + ": " + failure.what());
            if (attempt >= attempts)
                throw Error(request.url + ": " + failure.what() +
                            (attempts > 1 ? "; gave up after " + std::to_string(attempts) +
                                                " attempts"
                                          : ""));
            if (!options_.progress)
                spdlog::debug("{}: {}; retrying in {} ms", request.url, failure.what(),
                              delay.count());
            std::this_thread::sleep_for(delay);
            delay *= 2;
        }
    }
}

namespace {

// Sends GET `uri` and reads the response head, following redirects; the body is left in
// `session` for the body readers below.
void open_response(Poco::URI uri, const Validators& validators, std::chrono::milliseconds timeout,
                   std::unique_ptr<HTTPClientSession>& session, HTTPResponse& response) {
    for (int redirects = 0;; ++redirects) {
        session = open_session(uri, timeout);
        const std::string target = uri.getPathAndQuery().empty() ? "/" : uri.getPathAndQuery();
        HTTPRequest request(HTTPRequest::HTTP_GET, target, HTTPRequest::HTTP_1_1);
        request.set("User-Agent", "kbuild/" KBUILD_VERSION);
        if (!validators.etag.empty()) request.set("If-None-Match", validators.etag);
        if (!validators.last_modified.empty())
            request.set("If-Modified-Since", validators.last_modified);
        session->sendRequest(request);
        session->receiveResponse(response);
        const int status = response.getStatus();
        if (!is_redirect(status)) return;
        if (!response.has("Location"))
            throw AttemptFailed("HTTP " + std::to_string(status) + " without a Location", false);
        if (redirects == kMaxRedirects)
            throw AttemptFailed("more than " + std::to_string(kMaxRedirects) + " redirects",
                                false);
        uri.resolve(response.get("Location"));
        if (uri.getScheme() != "http" && uri.getScheme() != "https")
            throw AttemptFailed("redirected to " + uri.toString() + ", not http(s)", false);
    }
}

void check_status(const HTTPResponse& response) {
    const int status = response.getStatus();
    if (status == HTTPResponse::HTTP_OK) return;
    std::string reason = response.getReason();
    if (reason.empty()) reason = HTTPResponse::getReasonForStatus(response.getStatus());
    // A server that is busy or failing may recover; any other answer will not change.
    const bool retryable = status >= 500 || status == 408 || status == 429;
    throw AttemptFailed("HTTP " + std::to_string(status) + " " + one_line(reason), retryable);
}

std::string count_text(std::int64_t count) { return std::to_string(count); }

std::string header(const HTTPResponse& response, const std::string& name) {
    return response.has(name) ? response.get(name) : std::string();
}

using Sink = std::function<void(const char* bytes, std::size_t count)>;

// Copies up to `limit` body bytes (all of them when negative) to `sink`; fewer only when the
// connection ends first.
std::int64_t copy_body(SessionBytes& session, std::int64_t limit, std::vector<char>& buffer,
                       const Sink& sink) {
    std::int64_t copied = 0;
    while (limit < 0 || copied < limit) {
        auto wanted = static_cast<std::int64_t>(buffer.size());
        if (limit >= 0) wanted = std::min(wanted, limit - copied);
        const int count = session.read_some(buffer.data(), wanted);
        if (count <= 0) break;
        sink(buffer.data(), static_cast<std::size_t>(count));
        copied += count;
    }
    return copied;
}

// One CRLF-terminated line of chunked framing, without the line end; nothing at end of stream.
std::optional<std::string> read_line(SessionBytes& session) {
    std::string line;
    for (int c = session.next_byte(); c != std::char_traits<char>::eof();
         c = session.next_byte()) {
        if (c == '\n') {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return line;
        }
        if (line.size() >= 4096) throw AttemptFailed("malformed chunked body (long line)", true);
        line += static_cast<char>(c);
    }
    return std::nullopt;
}

std::int64_t parse_chunk_size(const std::string& line) {
    const std::string digits = trim(line.substr(0, line.find(';')));
    if (digits.empty() || digits.size() > 15 ||
        digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw AttemptFailed("malformed chunked body (chunk size '" + one_line(line) + "')", true);
    return std::stoll(digits, nullptr, 16);
}

// Decodes a chunked body to `sink`. The zero-size last chunk is the only proof the body is
// whole, so a connection that ends before it is a short read.
std::int64_t copy_chunked_body(SessionBytes& session, std::vector<char>& buffer,
                               const Sink& sink) {
    std::int64_t copied = 0;
    const auto cut_short = [&] {
        return AttemptFailed("short read (got " + std::to_string(copied) +
                                 " bytes of a chunked body before the connection closed)",
                             true);
    };
    for (;;) {
        const auto size_line = read_line(session);
        if (!size_line) throw cut_short();
        const std::int64_t size = parse_chunk_size(*size_line);
        if (size == 0) break;
        const std::int64_t got = copy_body(session, size, buffer, sink);
        copied += got;
        if (got < size || !read_line(session)) throw cut_short();
    }
    // Trailer fields up to an empty line; a server that closes right after the last chunk has
    // still sent everything.
    for (auto line = read_line(session); line && !line->empty(); line = read_line(session)) {
    }
    return copied;
}

// Checks what arrived against what the server announced and what the index expects.
void check_length(std::int64_t received, std::int64_t announced, std::int64_t expected) {
    if (announced >= 0 && received < announced)
        throw AttemptFailed("short read (got " + count_text(received) + " of " +
                                count_text(announced) + " bytes)",
                            true);
    if (expected < 0 || received == expected) return;
    // Without a Content-Length, a body cut short looks like a small one.
    if (announced < 0 && received < expected)
        throw AttemptFailed("short read (got " + count_text(received) + " of " +
                                count_text(expected) + " bytes)",
                            true);
    throw AttemptFailed("size mismatch (expected " + count_text(expected) + " bytes, got " +
                            count_text(received) + ")",
                        false);
}

}  // namespace

FetchedFile Fetcher::attempt(const FetchRequest& request, const fs::path& final_path) {
    // Only metadata is asked conditionally: a package with a sha256 never reaches here cached.
    Validators sent;
    const auto cached_size = regular_file_size(final_path);
    if (!request.digest_known() && cached_size && (request.size < 0 || *cached_size == request.size))
        sent = read_validators(final_path);

    std::unique_ptr<HTTPClientSession> session;
    HTTPResponse response;
    std::int64_t received = 0;
    try {
        open_response(parse_url(request.url), sent, options_.timeout, session, response);
        if (response.getStatus() == HTTPResponse::HTTP_NOT_MODIFIED && !sent.empty()) {
            if (!options_.progress)
                spdlog::debug("{}: not modified, cached as {}", request.url, final_path.string());
            return {final_path.string(), sha256_file(final_path.string()), *cached_size};
        }
        check_status(response);
        const bool chunked = response.getChunkedTransferEncoding();
        const std::int64_t announced = chunked ? -1 : response.getContentLength64();
        if (request.size >= 0 && announced >= 0 && announced != request.size)
            throw AttemptFailed("size mismatch (expected " + count_text(request.size) +
                                    " bytes, Content-Length is " + count_text(announced) + ")",
                                false);

        const auto started = Clock::now();
        PartFile part(final_path.string() + ".part");
        Sha256 hash;
        std::vector<char> buffer(kChunkBytes);
        const Sink sink = [&](const char* bytes, std::size_t count) {
            part.write(bytes, count);
            hash.update(bytes, count);
            received += static_cast<std::int64_t>(count);
            progress_->add_bytes(static_cast<std::int64_t>(count));
        };
        auto& body = dynamic_cast<SessionBytes&>(*session);
        if (chunked)
            copy_chunked_body(body, buffer, sink);
        else
            copy_body(body, announced, buffer, sink);
        check_length(received, announced, request.size);
        const std::string sha256 = hash.hex();
        if (!request.sha256.empty() && sha256 != lowercase(request.sha256))
            throw AttemptFailed("sha256 mismatch (expected " + lowercase(request.sha256) +
                                    ", got " + sha256 + ")",
                                false);
        if (!request.sha512.empty()) {
            const std::string sha512 = file_digest(part.path().string(), "sha512");
            if (sha512 != lowercase(request.sha512))
                throw AttemptFailed("sha512 mismatch (expected " + lowercase(request.sha512) + ", got " + sha512 + ")",
                                    false);
        }
        // The old validators describe the old file: drop them before it is replaced.
        if (!request.digest_known()) write_validators(final_path, {});
        part.commit(final_path);
        if (!request.digest_known())
            write_validators(final_path, {header(response, "ETag"),
                                          header(response, "Last-Modified")});

        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (!options_.progress)
            spdlog::debug("{}: {} bytes in {:.2f} s ({}/s)", request.url, received, seconds,
                          human_bytes(seconds > 0 ? static_cast<double>(received) / seconds : 0));
        return {final_path.string(), sha256, received};
    } catch (const AttemptFailed&) {
        progress_->add_bytes(-received);
        throw;
    } catch (const Poco::Exception& e) {
        progress_->add_bytes(-received);
        const AttemptFailed failure = failure_from(e, options_.timeout);
        if (!session || session->getProxyHost().empty()) throw failure;
        throw AttemptFailed(std::string(failure.what()) + " (through proxy " +
                                session->getProxyHost() + ":" +
                                std::to_string(session->getProxyPort()) + ")",
                            failure.retryable());
    }
}

}  // namespace kbuild
