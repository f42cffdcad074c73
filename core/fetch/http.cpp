#include "fetch/http.h"

#include <kbuild/types.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <sstream>

namespace kbuild::http {
namespace {

using Clock = std::chrono::steady_clock;

// Each exchange's buffer: a large one costs little per byte to hash and write.
constexpr long kBufferBytes = 256 * 1024;

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error("libcurl cannot start");
    });
}

bool is_redirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

struct EasyFree {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiFree {
    void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct ListFree {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// The state of one exchange, shared with libcurl's callbacks.
class Exchange {
public:
    Exchange(const Request& request, const HeadHandler& on_head, const BodyHandler& on_body)
        : request_(request), on_head_(on_head), on_body_(on_body) {}

    Outcome run();

private:
    static size_t on_header(char* data, size_t size, size_t count, void* self) {
        static_cast<Exchange*>(self)->header_line(std::string(data, size * count));
        return size * count;
    }
    static size_t on_write(char* data, size_t size, size_t count, void* self) {
        return static_cast<Exchange*>(self)->body(data, size * count) ? size * count : 0;
    }
    static size_t on_read(char* buffer, size_t size, size_t count, void* self) {
        return static_cast<Exchange*>(self)->read_body(buffer, size * count);
    }
    static int on_progress(void* self, curl_off_t, curl_off_t received, curl_off_t, curl_off_t sent) {
        auto* exchange = static_cast<Exchange*>(self);
        if (received != exchange->received_ || sent != exchange->sent_) {
            exchange->received_ = received;
            exchange->sent_ = sent;
            exchange->last_activity_ = Clock::now();
        }
        return 0;
    }

    // Status lines start a head (a redirect's, a proxy's CONNECT answer, an interim 100 come
    // before the final one); field lines add to it.
    void header_line(const std::string& line) {
        last_activity_ = Clock::now();
        if (line.rfind("HTTP/", 0) == 0) {
            pending_ = Head{};
            std::istringstream words(line);
            std::string version;
            words >> version >> pending_.status;
            std::getline(words, pending_.reason);
            pending_.reason = trim(pending_.reason);
            return;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) return;
        pending_.fields.emplace_back(lowercase(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
    }

    // The final head, once: before its first body byte, or at the end when there is none.
    bool deliver_head() {
        if (outcome_.head_seen) return true;
        outcome_.head_seen = true;
        outcome_.head = pending_;
        try {
            if (on_head_) on_head_(outcome_.head);
        } catch (...) {
            error_ = std::current_exception();
            return false;
        }
        return true;
    }

    bool body(const char* data, size_t count) {
        last_activity_ = Clock::now();
        // The body of a redirect being followed is not the answer.
        if (request_.max_redirects > 0 && is_redirect(pending_.status) && !pending_.field("location").empty())
            return true;
        if (!deliver_head()) return false;
        try {
            if (on_body_) on_body_(data, count);
        } catch (...) {
            error_ = std::current_exception();
            return false;
        }
        outcome_.body_bytes += static_cast<std::int64_t>(count);
        return true;
    }

    size_t read_body(char* buffer, size_t size) {
        last_activity_ = Clock::now();
        try {
            return request_.body_source(buffer, size);
        } catch (...) {
            // Aborting drops the connection before the last chunk: the body never ends
            // well-formed, so the other side cannot take a part for the whole.
            error_ = std::current_exception();
            return CURL_READFUNC_ABORT;
        }
    }

    void configure(CURL* easy, curl_slist* headers);
    Failure failure_of(CURLcode code, CURL* easy);

    const Request& request_;
    const HeadHandler& on_head_;
    const BodyHandler& on_body_;
    Outcome outcome_;
    Head pending_;
    std::exception_ptr error_;
    Clock::time_point last_activity_ = Clock::now();
    curl_off_t received_ = 0;
    curl_off_t sent_ = 0;
    char message_[CURL_ERROR_SIZE] = "";
};

void Exchange::configure(CURL* easy, curl_slist* headers) {
    curl_easy_setopt(easy, CURLOPT_URL, request_.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, message_);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kBufferBytes);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Exchange::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Exchange::on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &Exchange::on_progress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request_.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    // Set even when empty: libcurl would otherwise read the environment itself.
    curl_easy_setopt(easy, CURLOPT_PROXY, request_.proxy.c_str());
    curl_easy_setopt(easy, CURLOPT_NOPROXY, request_.no_proxy.c_str());
    if (!request_.unix_socket.empty()) curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, request_.unix_socket.c_str());
    if (request_.max_redirects > 0) {
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(request_.max_redirects));
        curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (request_.body_source) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_READFUNCTION, &Exchange::on_read);
        curl_easy_setopt(easy, CURLOPT_READDATA, this);
    } else if (!request_.body.empty() || request_.method == "POST") {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request_.body.c_str());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request_.body.size()));
    }
    if (request_.method != "GET" && request_.method != "POST")
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request_.method.c_str());
}

// What each libcurl error means to a caller; any other is Failure::other.
constexpr std::pair<CURLcode, Failure> kFailures[] = {
    {CURLE_OK, Failure::none},
    {CURLE_COULDNT_RESOLVE_HOST, Failure::resolve},
    {CURLE_COULDNT_RESOLVE_PROXY, Failure::resolve},
    {CURLE_OPERATION_TIMEDOUT, Failure::timed_out},
    {CURLE_PEER_FAILED_VERIFICATION, Failure::tls_certificate},
    {CURLE_SSL_CONNECT_ERROR, Failure::tls},
    {CURLE_SSL_CERTPROBLEM, Failure::tls},
    {CURLE_SSL_CIPHER, Failure::tls},
    {CURLE_SSL_CACERT_BADFILE, Failure::tls},
    {CURLE_SSL_SHUTDOWN_FAILED, Failure::tls},
    {CURLE_TOO_MANY_REDIRECTS, Failure::too_many_redirects},
    {CURLE_PARTIAL_FILE, Failure::closed_early},
    {CURLE_RECV_ERROR, Failure::closed_early},
    {CURLE_GOT_NOTHING, Failure::closed_early},
    {CURLE_UNSUPPORTED_PROTOCOL, Failure::protocol},
    {CURLE_WEIRD_SERVER_REPLY, Failure::protocol},
    {CURLE_URL_MALFORMAT, Failure::protocol},
};

Failure Exchange::failure_of(CURLcode code, CURL* easy) {
    if (code == CURLE_COULDNT_CONNECT) {
        long os_error = 0;
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_error);
        outcome_.os_error = static_cast<int>(os_error);
        return os_error == ECONNREFUSED ? Failure::refused : Failure::connect;
    }
    for (const auto& [known, failure] : kFailures)
        if (known == code) return failure;
    return Failure::other;
}

Outcome Exchange::run() {
    global_init();
    std::unique_ptr<CURL, EasyFree> easy(curl_easy_init());
    std::unique_ptr<CURLM, MultiFree> multi(curl_multi_init());
    if (!easy || !multi) throw Error("libcurl: out of memory");
    curl_slist* list = nullptr;
    for (const auto& header : request_.headers) list = curl_slist_append(list, header.c_str());
    // No "Expect: 100-continue" wait before a body.
    list = curl_slist_append(list, "Expect:");
    const std::unique_ptr<curl_slist, ListFree> headers(list);
    configure(easy.get(), headers.get());

    // The multi interface, polled here, so silence is measured to the millisecond.
    curl_multi_add_handle(multi.get(), easy.get());
    const auto poll_ms =
        static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(request_.timeout.count() / 10, 5, 200));
    CURLcode code = CURLE_OK;
    bool timed_out = false;
    for (int running = 1;;) {
        const CURLMcode status = curl_multi_perform(multi.get(), &running);
        if (status != CURLM_OK) {
            code = CURLE_OUT_OF_MEMORY;
            std::snprintf(message_, sizeof message_, "%s", curl_multi_strerror(status));
            break;
        }
        if (running == 0) {
            int left = 0;
            for (CURLMsg* message; (message = curl_multi_info_read(multi.get(), &left));)
                if (message->msg == CURLMSG_DONE) code = message->data.result;
            break;
        }
        if (Clock::now() - last_activity_ > request_.timeout) {
            timed_out = true;
            break;
        }
        curl_multi_poll(multi.get(), nullptr, 0, poll_ms, nullptr);
    }
    curl_multi_remove_handle(multi.get(), easy.get());

    if (error_) std::rethrow_exception(error_);
    outcome_.failure = timed_out ? Failure::timed_out : failure_of(code, easy.get());
    outcome_.message = message_[0] != '\0' ? trim(message_) : curl_easy_strerror(code);
    std::replace(outcome_.message.begin(), outcome_.message.end(), '\n', ' ');
    if (outcome_.failure == Failure::none && !deliver_head()) std::rethrow_exception(error_);
    if (!outcome_.head_seen) outcome_.head = pending_;  // what came of it, for the error
    if (outcome_.failure == Failure::none) outcome_.message.clear();
    return outcome_;
}

}  // namespace

std::string Head::field(const std::string& lower_name) const {
    for (auto it = fields.rbegin(); it != fields.rend(); ++it)
        if (it->first == lower_name) return it->second;
    return "";
}

bool Head::chunked() const {
    return lowercase(field("transfer-encoding")).find("chunked") != std::string::npos;
}

std::int64_t Head::content_length() const {
    const std::string text = field("content-length");
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 18) return -1;
    return std::stoll(text);
}

Outcome exchange(const Request& request, const HeadHandler& on_head, const BodyHandler& on_body) {
    return Exchange(request, on_head, on_body).run();
}

std::string url_escape(const std::string& text) {
    char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
    if (escaped == nullptr) throw Error("libcurl: out of memory");
    std::string out = escaped;
    curl_free(escaped);
    return out;
}

std::string no_proxy_for_port(const std::string& list, unsigned port) {
    std::string kept;
    std::istringstream entries(list);
    for (std::string entry; std::getline(entries, entry, ',');) {
        entry = trim(entry);
        if (entry.rfind("*.", 0) == 0) entry.erase(0, 1);  // "*.example.org": ".example.org"
        std::string entry_port;
        if (!entry.empty() && entry[0] == '[') {
            const auto close = entry.find(']');
            if (close == std::string::npos) continue;
            if (entry.compare(close + 1, 1, ":") == 0) entry_port = entry.substr(close + 2);
            entry = entry.substr(1, close - 1);
        } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
            entry_port = entry.substr(entry.find(':') + 1);
            entry.resize(entry.find(':'));
        }
        if (entry.empty() || (!entry_port.empty() && entry_port != std::to_string(port))) continue;
        kept += (kept.empty() ? "" : ",") + entry;
    }
    return kept;
}

}  // namespace kbuild::http
