#include "build/docker.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/SocketStream.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>
#include <archive.h>
#include <archive_entry.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <istream>
#include <memory>
#include <ostream>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>

namespace kbuild {
namespace fs = std::filesystem;
using Poco::Net::HTTPClientSession;
using Poco::Net::HTTPMessage;
using Poco::Net::HTTPRequest;
using Poco::Net::HTTPResponse;

namespace {

using Clock = std::chrono::steady_clock;
using Labels = std::map<std::string, std::string>;
using Query = std::vector<std::pair<std::string, std::string>>;

// The API version of Docker 20.10 (Debian bookworm's docker.io); newer daemons serve it too.
constexpr const char* kApiPrefix = "/v1.41";
// Plain requests (inspect, create, delete) answer within a second; removing a large image
// from a busy daemon can take a while, never minutes.
constexpr std::chrono::milliseconds kRequestTimeout = std::chrono::seconds(120);
// Builds and imports stream progress, but one build step (apt-get install, a compiler) can stay
// silent for many minutes: only an hour of silence means the daemon is stuck.
constexpr std::chrono::milliseconds kStreamSilenceLimit = std::chrono::hours(1);
// Waiting for a container: a module build takes seconds, so poll every 50 ms for the first
// 10 s (a late answer would be most of the container's overhead), then every 250 ms.
constexpr std::chrono::milliseconds kFirstPoll(50);
constexpr std::chrono::milliseconds kLongestPoll(250);
constexpr std::chrono::seconds kFrequentPolling(10);
// A killed container stops within a moment; past this the forced removal takes over.
constexpr std::chrono::seconds kStopAfterKill(10);
// The container log (json-file, rotated) keeps at most this much, so a build that prints
// without end cannot fill the disk or kbuild's memory; the newest output is what is kept.
constexpr const char* kLogFileSize = "16m";
constexpr const char* kLogFiles = "2";

// ---- text ----

std::string errno_text(int code) {
    return std::generic_category().message(code);
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return trim(text);
}

std::string seconds_text(std::chrono::milliseconds duration) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(duration).count()) +
           " s";
}

std::string iso_utc(std::time_t time) {
    std::tm parts{};
    gmtime_r(&time, &parts);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

// RFC 3339 as the daemon writes it ("2026-11-23T10:01:02.123456789Z", or with an offset) to
// seconds in UTC ("2026-11-23T10:01:02Z"), the form the image list's unix times get too.
std::string rfc3339_to_utc_seconds(const std::string& text) {
    std::tm parts{};
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &parts.tm_year, &parts.tm_mon,
                    &parts.tm_mday, &parts.tm_hour, &parts.tm_min, &parts.tm_sec,
                    &consumed) != 6)
        return text;
    parts.tm_year -= 1900;
    parts.tm_mon -= 1;
    std::time_t time = timegm(&parts);
    std::size_t rest = static_cast<std::size_t>(consumed);
    if (rest < text.size() && text[rest] == '.') {
        ++rest;
        while (rest < text.size() && std::isdigit(static_cast<unsigned char>(text[rest]))) ++rest;
    }
    int hours = 0, minutes = 0;
    if (rest < text.size() && (text[rest] == '+' || text[rest] == '-') &&
        std::sscanf(text.c_str() + rest + 1, "%2d:%2d", &hours, &minutes) == 2) {
        const int offset = (hours * 60 + minutes) * 60;
        time -= text[rest] == '+' ? offset : -offset;
    }
    return iso_utc(time);
}

// "repo/name:tag" -> {"repo/name", "tag"}; a ':' before the last '/' is a registry's port.
std::pair<std::string, std::string> split_tag(const std::string& reference) {
    const auto colon = reference.rfind(':');
    const auto slash = reference.rfind('/');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash))
        return {reference, "latest"};
    return {reference.substr(0, colon), reference.substr(colon + 1)};
}

// ---- requests ----

std::string api_target(const std::string& path, const Query& query = {}) {
    Poco::URI uri;
    uri.setPath(kApiPrefix + path);
    for (const auto& [name, value] : query) uri.addQueryParameter(name, value);
    return uri.getPathAndQuery();
}

std::string label_filter(const Labels& labels) {
    Json wanted = Json::array();
    for (const auto& [key, value] : labels) wanted.push_back(key + "=" + value);
    return Json{{"label", wanted}}.dump();
}

HTTPRequest make_request(const std::string& method, const std::string& target) {
    HTTPRequest request(method, target, HTTPMessage::HTTP_1_1);
    request.setHost("docker");  // HTTP/1.1 wants one; the daemon ignores its value
    request.setKeepAlive(false);
    return request;
}

// Why a connection to the daemon's socket failed, with a hint at the usual causes.
std::string connect_failure(const fs::path& socket, const Poco::Exception& e) {
    const int code = e.code();
    std::string cause = code > 0 ? errno_text(code) : e.displayText();
    if (code == ENOENT || code == ECONNREFUSED) cause += " (is dockerd running?)";
    if (code == EACCES) cause += " (is this user in the docker group?)";
    return "docker: cannot connect to " + socket.string() + ": " + cause;
}

// One request and its answer on a connection of its own: a unix socket costs nothing to open,
// and nothing one call leaves unread can confuse the next one, or another thread's.
class DaemonCall {
public:
    DaemonCall(const fs::path& socket, std::chrono::milliseconds timeout) {
        try {
            socket_.connect(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL,
                                                     socket.string()));
        } catch (const Poco::Exception& e) {
            throw Error(connect_failure(socket, e));
        }
        const Poco::Timespan limit(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000);
        socket_.setReceiveTimeout(limit);
        socket_.setSendTimeout(limit);
        session_ = std::make_unique<HTTPClientSession>(socket_);
    }

    DaemonCall(const DaemonCall&) = delete;
    DaemonCall& operator=(const DaemonCall&) = delete;

    // A streamed body left unfinished (an error while making it) must not end well-formed:
    // Poco would end the chunked body as it cleans up, and a tar cut between two entries
    // reads as a complete, smaller one. Closing the socket first makes the daemon see a
    // broken request and drop it.
    ~DaemonCall() {
        if (body_open_) socket_.close();
    }

    std::ostream& send(HTTPRequest& request) {
        body_open_ = request.getChunkedTransferEncoding();
        return session_->sendRequest(request);
    }
    std::istream& receive(HTTPResponse& response) {
        std::istream& in = session_->receiveResponse(response);  // ends the body first
        body_open_ = false;
        return in;
    }

    // The network error behind a stream that went bad, if Poco kept one.
    std::string stream_failure() const {
        const Poco::Exception* failure = session_->networkException();
        return failure ? failure->displayText() : "the connection broke";
    }

    // When the daemon refuses a request early it answers and closes without reading the whole
    // body; the answer still waits in the socket and says why, unlike the broken pipe.
    std::optional<std::string> answer_after_refused_body() {
        try {
            socket_.setReceiveTimeout(Poco::Timespan(2, 0));
            Poco::Net::SocketInputStream in(socket_);
            HTTPResponse response;
            response.read(in);
            std::string body;
            Poco::StreamCopier::copyToString(in, body);
            // The body may be chunked: the JSON object is what lies between the braces.
            const auto open = body.find('{');
            const auto close = body.rfind('}');
            if (open != std::string::npos && close != std::string::npos && open < close) {
                const Json j = Json::parse(body.substr(open, close - open + 1), nullptr, false);
                if (j.is_object() && j.value("message", Json()).is_string())
                    return one_line(j["message"].get<std::string>());
            }
            return "HTTP " + std::to_string(response.getStatus()) + " " + response.getReason();
        } catch (const Poco::Exception&) {
            return std::nullopt;
        }
    }

private:
    Poco::Net::StreamSocket socket_;
    std::unique_ptr<HTTPClientSession> session_;
    bool body_open_ = false;
};

struct Reply {
    int status = 0;
    std::string body;
};

// The daemon's reason for refusing a request: its JSON "message", else the body, else the
// status.
std::string refusal(const Reply& reply) {
    const Json j = Json::parse(reply.body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string())
        return one_line(j["message"].get<std::string>());
    const std::string text = one_line(reply.body);
    if (!text.empty()) return text;
    return "HTTP " + std::to_string(reply.status);
}

// One request with an optional JSON body; the whole answer is read. `what` begins every error.
Reply exchange(const fs::path& socket, const std::string& method, const std::string& target,
               const std::string& what, const Json* body = nullptr,
               std::chrono::milliseconds timeout = kRequestTimeout) {
    try {
        DaemonCall call(socket, timeout);
        HTTPRequest request = make_request(method, target);
        const std::string payload = body ? body->dump() : std::string();
        if (body) request.setContentType("application/json");
        request.setContentLength(static_cast<std::streamsize>(payload.size()));
        call.send(request) << payload;
        HTTPResponse response;
        std::istream& in = call.receive(response);
        Reply reply;
        reply.status = static_cast<int>(response.getStatus());
        Poco::StreamCopier::copyToString(in, reply.body);
        if (in.bad()) throw Error(what + ": reading the daemon's answer: " + call.stream_failure());
        return reply;
    } catch (const Poco::TimeoutException&) {
        throw Error(what + ": no answer from the daemon within " + seconds_text(timeout));
    } catch (const Poco::Exception& e) {
        throw Error(what + ": " + e.displayText());
    }
}

Json parse_json(const Reply& reply, const std::string& what) {
    Json j = Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(what + ": the daemon's answer is not JSON");
    return j;
}

// Throws with the daemon's reason unless the status is one of `expected`.
void expect_status(const Reply& reply, std::initializer_list<int> expected,
                   const std::string& what) {
    if (std::find(expected.begin(), expected.end(), reply.status) == expected.end())
        throw Error(what + ": " + refusal(reply));
}

// ---- JSON fields (the daemon writes null for empty lists and maps) ----

std::string string_field(const Json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Labels labels_field(const Json& j, const char* key) {
    Labels labels;
    const auto it = j.find(key);
    if (it == j.end() || !it->is_object()) return labels;
    for (const auto& [name, value] : it->items())
        if (value.is_string()) labels[name] = value.get<std::string>();
    return labels;
}

std::vector<std::string> tags_field(const Json& j) {
    std::vector<std::string> tags;
    const auto it = j.find("RepoTags");
    if (it == j.end() || !it->is_array()) return tags;
    for (const auto& tag : *it)
        if (tag.is_string() && tag.get<std::string>() != "<none>:<none>")
            tags.push_back(tag.get<std::string>());
    return tags;
}

DockerImage image_from_list(const Json& j) {
    DockerImage image;
    image.id = string_field(j, "Id");
    image.tags = tags_field(j);
    image.labels = labels_field(j, "Labels");
    image.size = j.value("Size", std::int64_t{0});
    image.created = iso_utc(static_cast<std::time_t>(j.value("Created", std::int64_t{0})));
    return image;
}

DockerImage image_from_inspect(const Json& j) {
    DockerImage image;
    image.id = string_field(j, "Id");
    image.tags = tags_field(j);
    const auto config = j.find("Config");
    if (config != j.end() && config->is_object()) image.labels = labels_field(*config, "Labels");
    image.size = j.value("Size", std::int64_t{0});
    image.created = rfc3339_to_utc_seconds(string_field(j, "Created"));
    return image;
}

// ---- tar streams ----

// The daemon stopped reading a request body (it refused the request): its answer says why.
struct BodyRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct FileDescriptor {
    int fd = -1;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

// Writes a directory tree to a stream as a POSIX tar (pax), one entry at a time, so an image's
// root is never whole on disk or in memory. Keeps modes, times and symlinks; a hard link is
// written once and linked after; device nodes and sockets are left out (Docker makes /dev).
// Owners are kept when running as root (the tree was made by root: debootstrap); a tree a user
// made has that user's ids, which mean nothing in an image, so they become 0.
class TarWriter {
public:
    explicit TarWriter(std::ostream& out)
        : out_(out), archive_(archive_write_new(), archive_write_free),
          keep_owners_(::geteuid() == 0) {
        if (!archive_) throw Error("libarchive: cannot create a tar writer");
        archive_write_set_format_pax_restricted(archive_.get());
        archive_write_set_bytes_in_last_block(archive_.get(), 1);
        if (archive_write_open(archive_.get(), this, nullptr, &TarWriter::write_callback,
                               nullptr) != ARCHIVE_OK)
            fail("tar stream");
    }
    TarWriter(const TarWriter&) = delete;
    TarWriter& operator=(const TarWriter&) = delete;

    // Freeing an unfinished archive would write its end blocks: a cut tree would read as a
    // whole one. Nothing more reaches the stream once the writer is abandoned.
    ~TarWriter() {
        if (!finished_) abandoned_ = true;
        archive_.reset();
    }

    void add_tree(const fs::path& root) {
        struct stat root_status {};
        if (::lstat(root.c_str(), &root_status) != 0)
            throw Error(root.string() + ": " + errno_text(errno));
        if (!S_ISDIR(root_status.st_mode)) throw Error(root.string() + ": not a directory");
        add_directory_contents(root, "");
    }

    void finish() {
        if (archive_write_close(archive_.get()) != ARCHIVE_OK) fail("tar stream");
        finished_ = true;
        out_.flush();
        if (!out_) throw BodyRefused("the daemon stopped reading the request");
    }

private:
    static la_ssize_t write_callback(archive* writer, void* client, const void* buffer,
                                     size_t length) {
        auto* self = static_cast<TarWriter*>(client);
        if (self->abandoned_) return -1;
        self->out_.write(static_cast<const char*>(buffer), static_cast<std::streamsize>(length));
        if (self->out_) return static_cast<la_ssize_t>(length);
        self->stream_failed_ = true;
        archive_set_error(writer, EPIPE, "the daemon stopped reading the request");
        return -1;
    }

    [[noreturn]] void fail(const std::string& what) {
        if (stream_failed_) throw BodyRefused("the daemon stopped reading the request");
        const char* why = archive_error_string(archive_.get());
        throw Error(what + ": " + (why ? why : "libarchive failed"));
    }

    void add_directory_contents(const fs::path& dir, const std::string& name) {
        std::error_code error;
        std::vector<fs::path> children;
        for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error))
            children.push_back(it->path());
        if (error) throw Error(dir.string() + ": cannot list: " + error.message());
        // Name order: the same tree always makes the same stream.
        std::sort(children.begin(), children.end());
        for (const auto& child : children) {
            const std::string child_name =
                name.empty() ? child.filename().string() : name + "/" + child.filename().string();
            add_path(child, child_name);
        }
    }

    void add_path(const fs::path& path, const std::string& name) {
        struct stat status {};
        if (::lstat(path.c_str(), &status) != 0)
            throw Error(path.string() + ": " + errno_text(errno));
        const mode_t type = status.st_mode & S_IFMT;
        if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFIFO) return;

        std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                        archive_entry_free);
        archive_entry_copy_pathname(entry.get(), name.c_str());
        archive_entry_set_mode(entry.get(), status.st_mode);
        archive_entry_set_mtime(entry.get(), status.st_mtim.tv_sec, status.st_mtim.tv_nsec);
        archive_entry_set_uid(entry.get(), keep_owners_ ? status.st_uid : 0);
        archive_entry_set_gid(entry.get(), keep_owners_ ? status.st_gid : 0);
        archive_entry_set_size(entry.get(), 0);

        bool with_contents = false;
        if (type == S_IFLNK) {
            archive_entry_copy_symlink(entry.get(), link_target(path).c_str());
        } else if (type == S_IFREG) {
            with_contents = !link_to_earlier(status, name, entry.get());
            if (with_contents) archive_entry_set_size(entry.get(), status.st_size);
        }
        if (archive_write_header(archive_.get(), entry.get()) < ARCHIVE_WARN) fail(path.string());
        if (with_contents) write_contents(path, status.st_size);
        if (type == S_IFDIR) add_directory_contents(path, name);
    }

    // A file with several names is written under the first; later names link to it.
    bool link_to_earlier(const struct stat& status, const std::string& name,
                         archive_entry* entry) {
        if (status.st_nlink < 2) return false;
        const auto [it, first] = first_names_.emplace(std::make_pair(status.st_dev, status.st_ino),
                                                      name);
        if (first) return false;
        archive_entry_copy_hardlink(entry, it->second.c_str());
        return true;
    }

    static std::string link_target(const fs::path& path) {
        std::error_code error;
        const fs::path target = fs::read_symlink(path, error);
        if (error) throw Error(path.string() + ": cannot read the link: " + error.message());
        return target.string();
    }

    // Writes what the header announced: a file that grew meanwhile is cut there; one that
    // shrank fails the stream, rather than become zeros in an image.
    void write_contents(const fs::path& path, std::int64_t size) {
        FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC)};
        if (file.fd < 0) throw Error(path.string() + ": cannot read: " + errno_text(errno));
        std::vector<char> buffer(256 * 1024);
        std::int64_t left = size;
        while (left > 0) {
            const auto want = static_cast<std::size_t>(
                std::min<std::int64_t>(left, static_cast<std::int64_t>(buffer.size())));
            const ssize_t got = ::read(file.fd, buffer.data(), want);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw Error(path.string() + ": cannot read: " + errno_text(errno));
            if (got == 0) throw Error(path.string() + ": shrank while being sent");
            if (archive_write_data(archive_.get(), buffer.data(), static_cast<size_t>(got)) < 0)
                fail(path.string());
            left -= got;
        }
    }

    std::ostream& out_;
    std::unique_ptr<archive, int (*)(archive*)> archive_;
    std::map<std::pair<dev_t, ino_t>, std::string> first_names_;
    bool keep_owners_;
    bool stream_failed_ = false;
    bool finished_ = false;
    bool abandoned_ = false;
};

// ---- progress streams ----

// Turns the daemon's text, which arrives in pieces of any size, into whole trimmed lines.
class ProgressLines {
public:
    explicit ProgressLines(const DockerProgress& progress) : progress_(progress) {}

    void add(const std::string& text) {
        pending_ += text;
        std::size_t end;
        while ((end = pending_.find('\n')) != std::string::npos) {
            emit(pending_.substr(0, end));
            pending_.erase(0, end + 1);
        }
    }

    void flush() {
        emit(pending_);
        pending_.clear();
    }

private:
    void emit(const std::string& line) {
        const std::string text = trim(line);
        if (!text.empty() && progress_) progress_(text);
    }

    const DockerProgress& progress_;
    std::string pending_;
};

std::optional<std::string> message_error(const Json& message) {
    const auto detail = message.find("errorDetail");
    if (detail != message.end() && detail->is_object()) {
        const std::string text = string_field(*detail, "message");
        if (!text.empty()) return one_line(text);
    }
    if (message.contains("error")) {
        const std::string text = string_field(message, "error");
        return text.empty() ? std::string("the daemon reported an error") : one_line(text);
    }
    return std::nullopt;
}

// "id: status progress", the way the docker CLI prints a status message.
std::string status_line(const Json& message) {
    std::string line = string_field(message, "status");
    const std::string id = string_field(message, "id");
    const std::string progress = string_field(message, "progress");
    if (!id.empty()) line = id + ": " + line;
    if (!progress.empty()) line += " " + progress;
    return line;
}

// Follows the daemon's JSON messages (one per line) to the end; returns its error, if any.
std::optional<std::string> follow_messages(std::istream& in, ProgressLines& lines) {
    std::string line;
    while (std::getline(in, line)) {
        if (trim(line).empty()) continue;
        const Json message = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!message.is_object()) {
            lines.add(line + "\n");
            continue;
        }
        if (auto error = message_error(message)) {
            lines.flush();
            return error;
        }
        if (message.contains("stream"))
            lines.add(string_field(message, "stream"));
        else if (message.contains("status"))
            lines.add(status_line(message) + "\n");
    }
    lines.flush();
    return std::nullopt;
}

// POSTs the tree under `root` as a tar body made on the fly, then follows the daemon's
// progress to its end. Throws with the daemon's message when it reports an error.
void post_tree(const fs::path& socket, const std::string& target, const fs::path& root,
               const std::string& what, const DockerProgress& progress) {
    std::error_code error;
    if (!fs::is_directory(root, error))
        throw Error(what + ": " + root.string() + ": not a directory");
    try {
        DaemonCall call(socket, kStreamSilenceLimit);
        HTTPRequest request = make_request(HTTPRequest::HTTP_POST, target);
        request.setContentType("application/x-tar");
        request.setChunkedTransferEncoding(true);
        try {
            TarWriter tar(call.send(request));
            tar.add_tree(root);
            tar.finish();
        } catch (const BodyRefused& e) {
            throw Error(what + ": " + call.answer_after_refused_body().value_or(e.what()));
        } catch (const Error& e) {
            throw Error(what + ": " + e.what());
        }
        HTTPResponse response;
        std::istream& in = call.receive(response);
        if (response.getStatus() != HTTPResponse::HTTP_OK) {
            Reply reply{static_cast<int>(response.getStatus()), {}};
            Poco::StreamCopier::copyToString(in, reply.body);
            throw Error(what + ": " + refusal(reply));
        }
        ProgressLines lines(progress);
        if (auto failure = follow_messages(in, lines)) throw Error(what + ": " + *failure);
        if (in.bad())
            throw Error(what + ": reading the daemon's progress: " + call.stream_failure());
    } catch (const Poco::TimeoutException&) {
        throw Error(what + ": no word from the daemon for " + seconds_text(kStreamSilenceLimit));
    } catch (const Poco::Exception& e) {
        throw Error(what + ": " + e.displayText());
    }
}

// ---- containers ----

// Docker's multiplexed log stream: frames of an 8-byte header (stream, 0, 0, 0, size as a
// big-endian u32) and the bytes. Both streams go to one text, in the order they were written.
std::string demultiplex(const std::string& frames) {
    std::string output;
    std::size_t at = 0;
    while (at + 8 <= frames.size()) {
        const auto byte = [&](std::size_t i) {
            return static_cast<std::uint32_t>(static_cast<unsigned char>(frames[at + i]));
        };
        const std::uint32_t size = byte(4) << 24 | byte(5) << 16 | byte(6) << 8 | byte(7);
        at += 8;
        const std::size_t take = std::min<std::size_t>(size, frames.size() - at);
        output.append(frames, at, take);
        at += take;
    }
    return output;
}

Json container_config(const ContainerSpec& spec) {
    Json mounts = Json::array();
    for (const auto& mount : spec.mounts)
        mounts.push_back({{"Type", "bind"},
                          {"Source", fs::absolute(mount.source).string()},
                          {"Target", mount.target},
                          {"ReadOnly", mount.read_only}});
    Json host{{"Mounts", mounts},
              {"LogConfig",
               {{"Type", "json-file"},
                {"Config", {{"max-size", kLogFileSize}, {"max-file", kLogFiles}}}}}};
    if (!spec.network) host["NetworkMode"] = "none";
    if (spec.cpus > 0) {
        // The daemon refuses more CPUs than the machine has; a limit above that is no limit.
        const unsigned cores = std::thread::hardware_concurrency();
        const double cpus = cores > 0 ? std::min(spec.cpus, static_cast<double>(cores)) : spec.cpus;
        host["NanoCpus"] = static_cast<std::int64_t>(cpus * 1e9);
    }
    if (spec.memory_bytes > 0) {
        host["Memory"] = spec.memory_bytes;
        host["MemorySwap"] = spec.memory_bytes;  // equal: no swap on top
    }
    Json config{{"Image", spec.image},
                {"Env", spec.env},
                {"Labels", spec.labels},
                {"AttachStdin", false},
                {"AttachStdout", false},
                {"AttachStderr", false},
                {"Tty", false},
                {"HostConfig", host}};
    if (!spec.command.empty()) config["Cmd"] = spec.command;
    if (!spec.user.empty()) config["User"] = spec.user;
    if (!spec.working_dir.empty()) config["WorkingDir"] = spec.working_dir;
    return config;
}

std::string create_container(const fs::path& socket, const ContainerSpec& spec,
                             const std::string& what) {
    Query query;
    if (!spec.name.empty()) query.emplace_back("name", spec.name);
    const Json config = container_config(spec);
    const Reply reply = exchange(socket, HTTPRequest::HTTP_POST,
                                 api_target("/containers/create", query), what, &config);
    if (reply.status == HTTPResponse::HTTP_NOT_FOUND)
        throw Error("docker: image " + spec.image + ": not found");
    expect_status(reply, {HTTPResponse::HTTP_CREATED}, what + ": create");
    const Json created = parse_json(reply, what);
    const auto warnings = created.find("Warnings");
    if (warnings != created.end() && warnings->is_array())
        for (const auto& warning : *warnings)
            if (warning.is_string()) spdlog::debug("{}: {}", what, warning.get<std::string>());
    const std::string id = string_field(created, "Id");
    if (id.empty()) throw Error(what + ": the daemon created a container without an id");
    return id;
}

struct ContainerState {
    bool running = false;
    bool out_of_memory = false;
    int exit_code = -1;
};

ContainerState container_state(const fs::path& socket, const std::string& id,
                               const std::string& what) {
    const Reply reply = exchange(socket, HTTPRequest::HTTP_GET,
                                 api_target("/containers/" + id + "/json"), what);
    expect_status(reply, {HTTPResponse::HTTP_OK}, what + ": inspect");
    const Json state = parse_json(reply, what).value("State", Json::object());
    ContainerState out;
    out.running = state.value("Running", false) || state.value("Restarting", false);
    out.out_of_memory = state.value("OOMKilled", false);
    out.exit_code = state.value("ExitCode", -1);
    return out;
}

// Polls until the container stops or the deadline passes; returns the last state seen.
ContainerState wait_for_stop(const fs::path& socket, const std::string& id,
                             Clock::time_point deadline, const std::string& what) {
    const auto started = Clock::now();
    for (;;) {
        const ContainerState state = container_state(socket, id, what);
        const auto now = Clock::now();
        if (!state.running || now >= deadline) return state;
        const auto pause = now - started < kFrequentPolling ? kFirstPoll : kLongestPoll;
        std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    }
}

// Removes a container when the run ends, however it ends.
class ContainerRemoval {
public:
    ContainerRemoval(const Docker& docker, std::string id) : docker_(docker), id_(std::move(id)) {}
    ContainerRemoval(const ContainerRemoval&) = delete;
    ContainerRemoval& operator=(const ContainerRemoval&) = delete;
    ~ContainerRemoval() {
        try {
            docker_.remove_container(id_);
        } catch (const std::exception& e) {
            spdlog::warn("{}", e.what());
        }
    }

private:
    const Docker& docker_;
    std::string id_;
};

}  // namespace

Docker::Docker(fs::path socket) : socket_(std::move(socket)) {}

bool Docker::ping(std::chrono::milliseconds timeout) const {
    try {
        const Reply reply =
            exchange(socket_, HTTPRequest::HTTP_GET, api_target("/_ping"), "docker: ping",
                     nullptr, timeout);
        return reply.status == HTTPResponse::HTTP_OK;
    } catch (const std::exception&) {
        return false;
    }
}

std::vector<DockerImage> Docker::images(const Labels& labels) const {
    const std::string what = "docker: list images";
    Query query;
    if (!labels.empty()) query.emplace_back("filters", label_filter(labels));
    const Reply reply =
        exchange(socket_, HTTPRequest::HTTP_GET, api_target("/images/json", query), what);
    expect_status(reply, {HTTPResponse::HTTP_OK}, what);
    const Json list = parse_json(reply, what);
    if (!list.is_array()) throw Error(what + ": the daemon's answer is not a list");
    std::vector<DockerImage> images;
    for (const auto& item : list) images.push_back(image_from_list(item));
    return images;
}

std::optional<DockerImage> Docker::image(const std::string& name_or_id) const {
    const std::string what = "docker: image " + name_or_id;
    const Reply reply = exchange(socket_, HTTPRequest::HTTP_GET,
                                 api_target("/images/" + name_or_id + "/json"), what);
    if (reply.status == HTTPResponse::HTTP_NOT_FOUND) return std::nullopt;
    expect_status(reply, {HTTPResponse::HTTP_OK}, what);
    return image_from_inspect(parse_json(reply, what));
}

void Docker::import_directory(const fs::path& root, const std::string& tag,
                              const DockerProgress& progress) const {
    const std::string what = "docker import " + tag;
    const auto [repo, version] = split_tag(tag);
    post_tree(socket_,
              api_target("/images/create", {{"fromSrc", "-"}, {"repo", repo}, {"tag", version}}),
              root, what, progress);
    if (!image(tag))
        throw Error(what + ": the import ended without error but " + tag + " is missing");
}

void Docker::build(const fs::path& context, const std::string& tag,
                   const Labels& build_args, const Labels& labels,
                   const DockerProgress& progress) const {
    const std::string what = "docker build " + tag;
    const Query query{{"t", tag},
                      {"buildargs", Json(build_args).dump()},
                      {"labels", Json(labels).dump()},
                      {"rm", "1"},
                      {"forcerm", "1"}};
    post_tree(socket_, api_target("/build", query), context, what, progress);
    if (!image(tag))
        throw Error(what + ": the build ended without error but " + tag + " is missing");
}

void Docker::remove_image(const std::string& name_or_id) const {
    const std::string what = "docker: remove image " + name_or_id;
    const Reply reply = exchange(socket_, HTTPRequest::HTTP_DELETE,
                                 api_target("/images/" + name_or_id, {{"force", "1"}}), what);
    expect_status(reply, {HTTPResponse::HTTP_OK, HTTPResponse::HTTP_NOT_FOUND}, what);
}

ContainerResult Docker::run(const ContainerSpec& spec, std::chrono::seconds timeout) const {
    const std::string what = "docker run " + (spec.name.empty() ? spec.image : spec.name);
    const std::string id = create_container(socket_, spec, what);
    const ContainerRemoval removal(*this, id);

    const Reply started = exchange(socket_, HTTPRequest::HTTP_POST,
                                   api_target("/containers/" + id + "/start"), what);
    expect_status(started, {HTTPResponse::HTTP_NO_CONTENT, HTTPResponse::HTTP_NOT_MODIFIED},
                  what + ": start");

    const auto deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
    ContainerResult result;
    ContainerState state = wait_for_stop(socket_, id, deadline, what);
    if (state.running) {
        const Reply killed = exchange(socket_, HTTPRequest::HTTP_POST,
                                      api_target("/containers/" + id + "/kill"), what);
        // 409: it stopped on its own between the last look and the kill.
        expect_status(killed, {HTTPResponse::HTTP_NO_CONTENT, HTTPResponse::HTTP_CONFLICT},
                      what + ": kill");
        result.timed_out = killed.status == HTTPResponse::HTTP_NO_CONTENT;
        state = wait_for_stop(socket_, id, Clock::now() + kStopAfterKill, what);
    }
    result.exit_code = state.exit_code;
    result.out_of_memory = state.out_of_memory;

    const Reply logs =
        exchange(socket_, HTTPRequest::HTTP_GET,
                 api_target("/containers/" + id + "/logs", {{"stdout", "1"}, {"stderr", "1"}}),
                 what);
    expect_status(logs, {HTTPResponse::HTTP_OK}, what + ": logs");
    result.output = demultiplex(logs.body);
    return result;
}

std::vector<std::string> Docker::containers(const Labels& labels) const {
    const std::string what = "docker: list containers";
    Query query{{"all", "1"}};
    if (!labels.empty()) query.emplace_back("filters", label_filter(labels));
    const Reply reply =
        exchange(socket_, HTTPRequest::HTTP_GET, api_target("/containers/json", query), what);
    expect_status(reply, {HTTPResponse::HTTP_OK}, what);
    const Json list = parse_json(reply, what);
    if (!list.is_array()) throw Error(what + ": the daemon's answer is not a list");
    std::vector<std::string> ids;
    for (const auto& item : list) ids.push_back(string_field(item, "Id"));
    return ids;
}

void Docker::remove_container(const std::string& id) const {
    const std::string what = "docker: remove container " + id;
    const Reply reply =
        exchange(socket_, HTTPRequest::HTTP_DELETE,
                 api_target("/containers/" + id, {{"force", "1"}, {"v", "1"}}), what);
    // 409: a removal is already under way (another cleanup got there first).
    expect_status(reply,
                  {HTTPResponse::HTTP_NO_CONTENT, HTTPResponse::HTTP_NOT_FOUND,
                   HTTPResponse::HTTP_CONFLICT},
                  what);
}

}  // namespace kbuild
