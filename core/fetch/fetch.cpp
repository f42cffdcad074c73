#include "fetch/fetch.h"

#include "fetch/cache.h"
#include "fetch/http.h"
#include "util/file_lock.h"
#include "util/parallel.h"

#include <kbuild/digest.hpp>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

namespace kbuild {
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxRedirects = 5;

// One attempt's failure: the cause (the URL is added by the caller) and whether another
// attempt may succeed.
class AttemptFailed : public std::runtime_error {
public:
    AttemptFailed(const std::string& cause, bool retryable) : std::runtime_error(cause), retryable_(retryable) {}
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

bool is_sha256_hex(const std::string& text) {
    return text.size() == 64 &&
           std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

// "30 s", "0.3 s": how the timeout reads in an error.
std::string seconds_text(std::chrono::milliseconds duration) {
    std::ostringstream out;
    out << static_cast<double>(duration.count()) / 1000.0 << " s";
    return out.str();
}

std::string sha256_of(const std::string& text) {
    return sha256_text(text);
}

// A URL's parts as libcurl reads them.
class Url {
public:
    explicit Url(const std::string& url) : handle_(curl_url(), curl_url_cleanup) {
        if (!handle_) throw Error("libcurl: out of memory");
        valid_ = curl_url_set(handle_.get(), CURLUPART_URL, url.c_str(), 0) == CURLUE_OK;
    }
    bool valid() const { return valid_; }
    // A part ("" when absent); `flags` as curl_url_get takes them.
    std::string part(CURLUPart which, unsigned flags = 0) const {
        char* text = nullptr;
        if (!valid_ || curl_url_get(handle_.get(), which, &text, flags) != CURLUE_OK) return "";
        std::string value = text;
        curl_free(text);
        return value;
    }
    std::string scheme() const { return lowercase(part(CURLUPART_SCHEME)); }
    std::string host() const { return part(CURLUPART_HOST); }
    unsigned port() const {
        const std::string text = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
        return text.empty() ? 0 : static_cast<unsigned>(std::stoul(text));
    }

private:
    std::unique_ptr<CURLU, void (*)(CURLU*)> handle_;
    bool valid_ = false;
};

// The name a URL's file keeps in the cache: the last path segment, made safe for any file
// system, so a cached package still reads as what it is.
std::string file_name_for(const std::string& url) {
    const std::string path = Url(url).part(CURLUPART_PATH, CURLU_URLDECODE);
    const auto slash = path.rfind('/');
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    for (char& c : name) {
        const bool safe =
            std::isalnum(static_cast<unsigned char>(c)) || (c != '\0' && std::strchr("._+-~", c) != nullptr);
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

// The proxy for a URL from HTTP(S)_PROXY, and NO_PROXY's hosts for its port, for libcurl,
// which reads them: a setting without a scheme is http://, user and password are sent.
void set_proxy(http::Request& request, const Url& url) {
    request.proxy =
        url.scheme() == "https" ? environment("https_proxy", "HTTPS_PROXY") : environment("http_proxy", "HTTP_PROXY");
    if (!request.proxy.empty())
        request.no_proxy = http::no_proxy_for_port(environment("no_proxy", "NO_PROXY"), url.port());
}

// "host:port" of a proxy setting, for an error message: without its user and password.
std::string proxy_endpoint(const std::string& setting) {
    const Url proxy(setting.find("://") == std::string::npos ? "http://" + setting : setting);
    return proxy.host() + ":" + std::to_string(proxy.port());
}

std::string parse_url(const std::string& text) {
    const Url url(text);
    if (!url.valid()) throw Error(text + ": not a URL");
    if (url.scheme() != "http" && url.scheme() != "https")
        throw Error(text + ": only http:// and https:// URLs can be fetched");
    if (url.host().empty()) throw Error(text + ": no host in the URL");
    return text;
}

bool is_redirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
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
    if (!validators.last_modified.empty()) out << "last-modified " << one_line(validators.last_modified) << "\n";
}

std::optional<std::int64_t> regular_file_size(const fs::path& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return std::nullopt;
    return static_cast<std::int64_t>(info.st_size);
}

// "<final>.part-<owner>-<n>" (a killed run's is a leftover, cache.h): written from the start on every attempt, renamed to the final name only by
// commit(); removed when an attempt gives up.
class PartFile {
public:
    explicit PartFile(fs::path path) : path_(std::move(path)) {
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) throw AttemptFailed("cannot write " + path_.string() + ": " + std::strerror(errno), false);
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
        throw AttemptFailed(std::string(what) + " " + path_.string() + ": " + std::strerror(errno), false);
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
            if (request.size >= 0)
                bytes_expected_ += request.size;
            else
                sizes_known_ = false;
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
        if (now - last < std::chrono::nanoseconds(std::chrono::milliseconds(100)).count()) return false;
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
        std::string line = "fetch: " + std::to_string(files_done_) + "/" + std::to_string(files_total_) + " files, " +
                           human_bytes(bytes) + ", " + human_bytes(rate) + "/s";
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
    : options_(std::move(options)), progress_(std::make_unique<Progress>(options_.progress)) {
    if (!options_.cache_dir.empty()) cache_.emplace(options_.cache_dir);
}

void Fetcher::pin(const fs::path& entry) {
    if (!cache_) return;
    std::lock_guard lock(pins_mutex_);
    if (!pins_.count(entry)) pins_.emplace(entry, cache_->lease(entry));
}

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
                outcomes[i].file_ = fetch_one(requests[i]);
            } catch (const std::exception&) {
                outcomes[i].failure_ = std::current_exception();
            }
        };
    });
    return outcomes;
}

FetchedFile Fetcher::fetch_one(const FetchRequest& request) {
    try {
        parse_url(request.url);
        if (!request.sha256.empty() && !is_sha256_hex(request.sha256))
            throw Error(request.url + ": expected sha256 '" + request.sha256 + "' is not 64 hex digits");
        const fs::path final_path = cache_path(request);
        std::error_code ec;
        fs::create_directories(final_path.parent_path(), ec);
        if (ec) throw Error(request.url + ": cannot create " + final_path.parent_path().string() + ": " + ec.message());
        if (!request.leased_by_caller) pin(final_path.parent_path());
        const FileLock lock(final_path.string() + ".lock", request.url);
        const auto cached_size = regular_file_size(final_path);
        // The name was given only after the sha256 matched, so it is trusted as is.
        if (request.digest_known() && cached_size && (request.size < 0 || *cached_size == request.size)) {
            progress_->file_done(request.size);
            if (!options_.progress) spdlog::debug("{}: cached as {}", request.url, final_path.string());
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
                            (attempts > 1 ? "; gave up after " + std::to_string(attempts) + " attempts" : ""));
            if (!options_.progress)
                spdlog::debug("{}: {}; retrying in {} ms", request.url, failure.what(), delay.count());
            std::this_thread::sleep_for(delay);
            delay *= 2;
        }
    }
}

namespace {

void check_status(const http::Head& head) {
    const int status = head.status;
    if (status == 200) return;
    if (is_redirect(status)) throw AttemptFailed("HTTP " + std::to_string(status) + " without a Location", false);
    // A server that is busy or failing may recover; any other answer will not change.
    const bool retryable = status >= 500 || status == 408 || status == 429;
    std::string text = "HTTP " + std::to_string(status);
    if (!head.reason.empty()) text += " " + one_line(head.reason);
    throw AttemptFailed(text, retryable);
}

std::string count_text(std::int64_t count) {
    return std::to_string(count);
}

// Checks what arrived against what the server announced and what the index expects.
void check_length(std::int64_t received, std::int64_t announced, std::int64_t expected) {
    if (announced >= 0 && received < announced)
        throw AttemptFailed("short read (got " + count_text(received) + " of " + count_text(announced) + " bytes)",
                            true);
    if (expected < 0 || received == expected) return;
    // Without a Content-Length, a body cut short looks like a small one.
    if (announced < 0 && received < expected)
        throw AttemptFailed("short read (got " + count_text(received) + " of " + count_text(expected) + " bytes)",
                            true);
    throw AttemptFailed("size mismatch (expected " + count_text(expected) + " bytes, got " + count_text(received) + ")",
                        false);
}

// Why an exchange failed, as one attempt's failure.
AttemptFailed failure_of(const http::Outcome& outcome, const std::string& host, std::chrono::milliseconds timeout) {
    using http::Failure;
    switch (outcome.failure) {
        case Failure::refused: return {"connection refused", true};
        case Failure::connect:
            return {outcome.os_error != 0 ? "cannot connect: " + std::string(std::strerror(outcome.os_error))
                                          : outcome.message,
                    true};
        // A name that does not exist will not exist in a second.
        case Failure::resolve: return {"host not found: " + host, false};
        case Failure::timed_out: return {"timed out after " + seconds_text(timeout), true};
        // A certificate that does not verify will not verify on the next attempt either.
        case Failure::tls_certificate: return {"TLS certificate: " + outcome.message, false};
        case Failure::tls: return {"TLS: " + outcome.message, true};
        case Failure::too_many_redirects: return {"more than " + std::to_string(kMaxRedirects) + " redirects", false};
        case Failure::closed_early:
            // The zero-size last chunk is the only proof a chunked body is whole.
            if (outcome.head.status != 0 && outcome.head.chunked())
                return {"short read (got " + count_text(outcome.body_bytes) +
                            " bytes of a chunked body before the connection closed)",
                        true};
            if (outcome.head.status != 0 && outcome.head.content_length() >= 0)
                return {"short read (got " + count_text(outcome.body_bytes) + " of " +
                            count_text(outcome.head.content_length()) + " bytes)",
                        true};
            if (outcome.head.status == 0) return {"connection closed before a response", true};
            return {outcome.message, true};
        case Failure::protocol: return {outcome.message, false};
        default: return {outcome.message, true};
    }
}

// Whether a failure happened on the way to the proxy: libcurl names the endpoint it could not
// reach or last reached.
bool failed_at(const http::Outcome& outcome, const std::string& endpoint) {
    const auto colon = endpoint.rfind(':');
    return outcome.message.find(" " + endpoint.substr(0, colon) + " port " + endpoint.substr(colon + 1) + " ") !=
           std::string::npos;
}

}  // namespace

FetchedFile Fetcher::attempt(const FetchRequest& request, const fs::path& final_path) {
    // Only metadata is asked conditionally: a package with a sha256 never reaches here cached.
    Validators sent;
    const auto cached_size = regular_file_size(final_path);
    if (!request.digest_known() && cached_size && (request.size < 0 || *cached_size == request.size))
        sent = read_validators(final_path);

    const Url url(parse_url(request.url));
    http::Request exchange;
    exchange.url = request.url;
    exchange.timeout = options_.timeout;
    exchange.max_redirects = kMaxRedirects;
    exchange.headers.push_back("User-Agent: kbuild/" KBUILD_VERSION);
    if (!sent.etag.empty()) exchange.headers.push_back("If-None-Match: " + sent.etag);
    if (!sent.last_modified.empty()) exchange.headers.push_back("If-Modified-Since: " + sent.last_modified);
    set_proxy(exchange, url);

    std::int64_t received = 0;
    std::int64_t announced = -1;
    bool not_modified = false;
    std::optional<PartFile> part;
    DigestStream hash("sha256");
    const auto started = Clock::now();
    http::Head head;
    const auto on_head = [&](const http::Head& answer) {
        head = answer;
        if (answer.status == 304 && !sent.empty()) {
            not_modified = true;
            return;
        }
        check_status(answer);
        announced = answer.chunked() ? -1 : answer.content_length();
        if (request.size >= 0 && announced >= 0 && announced != request.size)
            throw AttemptFailed("size mismatch (expected " + count_text(request.size) + " bytes, Content-Length is " +
                                    count_text(announced) + ")",
                                false);
        part.emplace(final_path.string() + ".part-" + owned_suffix());
    };
    const auto on_body = [&](const char* bytes, std::size_t count) {
        if (!part) return;  // a 304's body, if a server sent one
        part->write(bytes, count);
        hash.update(bytes, count);
        received += static_cast<std::int64_t>(count);
        progress_->add_bytes(static_cast<std::int64_t>(count));
    };
    try {
        const http::Outcome outcome = http::exchange(exchange, on_head, on_body);
        if (outcome.failure != http::Failure::none) {
            AttemptFailed failure = failure_of(outcome, url.host(), options_.timeout);
            if (!exchange.proxy.empty() && failed_at(outcome, proxy_endpoint(exchange.proxy)))
                failure = AttemptFailed(
                    std::string(failure.what()) + " (through proxy " + proxy_endpoint(exchange.proxy) + ")",
                    failure.retryable());
            throw failure;
        }
        if (not_modified) {
            if (!options_.progress) spdlog::debug("{}: not modified, cached as {}", request.url, final_path.string());
            return {final_path.string(), sha256_file(final_path.string()), *cached_size};
        }
        check_length(received, announced, request.size);
        const std::string sha256 = hash.hex();
        if (!request.sha256.empty() && sha256 != lowercase(request.sha256))
            throw AttemptFailed("sha256 mismatch (expected " + lowercase(request.sha256) + ", got " + sha256 + ")",
                                false);
        if (!request.sha512.empty()) {
            const std::string sha512 = file_digest(part->path().string(), "sha512");
            if (sha512 != lowercase(request.sha512))
                throw AttemptFailed("sha512 mismatch (expected " + lowercase(request.sha512) + ", got " + sha512 + ")",
                                    false);
        }
        // The old validators describe the old file: drop them before it is replaced.
        if (!request.digest_known()) write_validators(final_path, {});
        part->commit(final_path);
        if (!request.digest_known()) write_validators(final_path, {head.field("etag"), head.field("last-modified")});

        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        if (!options_.progress)
            spdlog::debug("{}: {} bytes in {:.2f} s ({}/s)", request.url, received, seconds,
                          human_bytes(seconds > 0 ? static_cast<double>(received) / seconds : 0));
        return {final_path.string(), sha256, received};
    } catch (const AttemptFailed&) {
        progress_->add_bytes(-received);
        throw;
    }
}

}  // namespace kbuild
