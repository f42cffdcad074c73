#include "build/docker.h"

#include "fetch/http.h"
#include "unpack/tar_writer.h"
#include "util/reaper.h"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>

namespace kbuild {
namespace fs = std::filesystem;

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
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(duration).count()) + " s";
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
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &parts.tm_year, &parts.tm_mon, &parts.tm_mday,
                    &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &consumed) != 6)
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
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return {reference, "latest"};
    return {reference.substr(0, colon), reference.substr(colon + 1)};
}

// ---- requests ----

std::string api_target(const std::string& path, const Query& query = {}) {
    std::string target = kApiPrefix + path;
    for (std::size_t i = 0; i < query.size(); ++i)
        target += (i == 0 ? "?" : "&") + http::url_escape(query[i].first) + "=" + http::url_escape(query[i].second);
    return target;
}

std::string label_filter(const Labels& labels) {
    Json wanted = Json::array();
    for (const auto& [key, value] : labels) wanted.push_back(key + "=" + value);
    return Json{{"label", wanted}}.dump();
}

// One request to the daemon, on a connection of its own: a unix socket costs nothing to open,
// and nothing one call leaves unread can confuse the next one, or another thread's. The host
// in the URL is what HTTP/1.1 asks for; the daemon ignores it.
http::Request daemon_request(const fs::path& socket, const std::string& method, const std::string& target,
                             std::chrono::milliseconds timeout) {
    http::Request request;
    request.method = method;
    request.url = "http://docker" + target;
    request.unix_socket = socket;
    request.timeout = timeout;
    return request;
}

// Why an exchange with the daemon failed; a connection that could not be made gets a hint at
// the usual causes.
Error daemon_failure(const http::Outcome& outcome, const fs::path& socket, const std::string& what,
                     const std::string& silence) {
    if (outcome.failure == http::Failure::refused || outcome.failure == http::Failure::connect) {
        const int code = outcome.failure == http::Failure::refused ? ECONNREFUSED : outcome.os_error;
        std::string cause = code > 0 ? errno_text(code) : outcome.message;
        if (code == ENOENT || code == ECONNREFUSED) cause += " (is dockerd running?)";
        if (code == EACCES) cause += " (is this user in the docker group?)";
        return Error("docker: cannot connect to " + socket.string() + ": " + cause);
    }
    if (outcome.failure == http::Failure::timed_out) return Error(what + ": " + silence);
    return Error(what + ": " + one_line(outcome.message));
}

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
Reply exchange(const fs::path& socket, const std::string& method, const std::string& target, const std::string& what,
               const Json* body = nullptr, std::chrono::milliseconds timeout = kRequestTimeout) {
    http::Request request = daemon_request(socket, method, target, timeout);
    if (body) {
        request.headers.push_back("Content-Type: application/json");
        request.body = body->dump();
    }
    Reply reply;
    const http::Outcome outcome = http::exchange(
        request, [&](const http::Head& head) { reply.status = head.status; },
        [&](const char* bytes, std::size_t count) { reply.body.append(bytes, count); });
    if (outcome.failure != http::Failure::none)
        throw daemon_failure(outcome, socket, what, "no answer from the daemon within " + seconds_text(timeout));
    return reply;
}

Json parse_json(const Reply& reply, const std::string& what) {
    Json j = Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(what + ": the daemon's answer is not JSON");
    return j;
}

// Throws with the daemon's reason unless the status is one of `expected`.
void expect_status(const Reply& reply, std::initializer_list<int> expected, const std::string& what) {
    if (std::find(expected.begin(), expected.end(), reply.status) == expected.end())
        throw Error(what + ": " + refusal(reply));
}

// GET `path` filtered to objects carrying every label: the daemon's list, checked to be one.
Json get_list(const fs::path& socket, const std::string& path, Query query, const Labels& labels,
              const std::string& what) {
    if (!labels.empty()) query.emplace_back("filters", label_filter(labels));
    const Reply reply = exchange(socket, "GET", api_target(path, query), what);
    expect_status(reply, {200}, what);
    Json list = parse_json(reply, what);
    if (!list.is_array()) throw Error(what + ": the daemon's answer is not a list");
    return list;
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
        if (tag.is_string() && tag.get<std::string>() != "<none>:<none>") tags.push_back(tag.get<std::string>());
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

// Follows the daemon's JSON messages (one per line) as they arrive; keeps its first error.
class Messages {
public:
    explicit Messages(const DockerProgress& progress) : lines_(progress) {}

    void add(const char* bytes, std::size_t count) {
        pending_.append(bytes, count);
        std::size_t end;
        while ((end = pending_.find('\n')) != std::string::npos) {
            message(pending_.substr(0, end));
            pending_.erase(0, end + 1);
        }
    }

    std::optional<std::string> finish() {
        message(pending_);
        pending_.clear();
        lines_.flush();
        return error_;
    }

private:
    void message(const std::string& line) {
        if (error_ || trim(line).empty()) return;
        const Json message = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!message.is_object()) {
            lines_.add(line + "\n");
            return;
        }
        if ((error_ = message_error(message))) {
            lines_.flush();
            return;
        }
        if (message.contains("stream"))
            lines_.add(string_field(message, "stream"));
        else if (message.contains("status"))
            lines_.add(status_line(message) + "\n");
    }

    ProgressLines lines_;
    std::string pending_;
    std::optional<std::string> error_;
};

// A tree as a tar stream, made by a thread of its own while the request body is read, so an
// image's root is never whole on disk or in memory. Owners are kept when running as root (the
// tree was made by root: debootstrap); a tree a user made has that user's ids, which mean
// nothing in an image, so they become 0.
class TreeStream {
public:
    explicit TreeStream(const fs::path& root) {
        int ends[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
            throw Error("tar stream: " + errno_text(errno));
        reader_ = ends[0];
        writer_ = ends[1];
        thread_ = std::thread([this, root] { produce(root); });
    }
    // Closing the reading end first stops a writer the daemon no longer reads for.
    ~TreeStream() {
        ::close(reader_);
        thread_.join();
    }
    TreeStream(const TreeStream&) = delete;
    TreeStream& operator=(const TreeStream&) = delete;

    // The next bytes of the stream; 0 at its end. A tree that could not be written whole
    // throws at that point, so the request never ends well-formed.
    std::size_t read(char* buffer, std::size_t size) {
        for (;;) {
            const ssize_t got = ::recv(reader_, buffer, size, 0);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw Error("tar stream: " + errno_text(errno));
            if (got == 0 && failed_.load(std::memory_order_acquire)) std::rethrow_exception(failure_);
            return static_cast<std::size_t>(got);
        }
    }

private:
    void produce(const fs::path& root) {
        try {
            TarWriter tar([this](const char* bytes, std::size_t count) { send(bytes, count); });
            tar.add_tree(root, ::geteuid() == 0);
            tar.finish();
        } catch (...) {
            failure_ = std::current_exception();
            failed_.store(true, std::memory_order_release);
        }
        ::close(writer_);  // the reader's end of stream, after any failure is recorded
    }

    void send(const char* bytes, std::size_t count) {
        while (count > 0) {
            const ssize_t sent = ::send(writer_, bytes, count, MSG_NOSIGNAL);
            if (sent < 0 && errno == EINTR) continue;
            if (sent < 0) throw Error("the daemon stopped reading the request");
            bytes += sent;
            count -= static_cast<std::size_t>(sent);
        }
    }

    int reader_ = -1;
    int writer_ = -1;
    std::exception_ptr failure_;
    std::atomic<bool> failed_{false};
    std::thread thread_;
};

// POSTs the tree under `root` as a tar body made on the fly, then follows the daemon's
// progress to its end. Throws with the daemon's message when it reports an error.
void post_tree(const fs::path& socket, const std::string& target, const fs::path& root, const std::string& what,
               const DockerProgress& progress) {
    std::error_code error;
    if (!fs::is_directory(root, error)) throw Error(what + ": " + root.string() + ": not a directory");
    http::Request request = daemon_request(socket, "POST", target, kStreamSilenceLimit);
    request.headers.push_back("Content-Type: application/x-tar");
    Reply refused;
    Messages messages(progress);
    http::Outcome outcome;
    {
        TreeStream tree(root);
        request.body_source = [&](char* buffer, std::size_t size) { return tree.read(buffer, size); };
        try {
            outcome = http::exchange(
                request, [&](const http::Head& head) { refused.status = head.status; },
                [&](const char* bytes, std::size_t count) {
                    if (refused.status == 200)
                        messages.add(bytes, count);
                    else
                        refused.body.append(bytes, count);
                });
        } catch (const Error& e) {
            throw Error(what + ": " + e.what());
        }
    }
    if (outcome.failure != http::Failure::none)
        throw daemon_failure(outcome, socket, what, "no word from the daemon for " + seconds_text(kStreamSilenceLimit));
    if (refused.status != 200) throw Error(what + ": " + refusal(refused));
    if (auto failure = messages.finish()) throw Error(what + ": " + *failure);
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
    Json host{
        {"Mounts", mounts},
        {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", kLogFileSize}, {"max-file", kLogFiles}}}}}};
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
    Json config{{"Image", spec.image},   {"Env", spec.env},       {"Labels", spec.labels}, {"AttachStdin", false},
                {"AttachStdout", false}, {"AttachStderr", false}, {"Tty", false},          {"HostConfig", host}};
    if (!spec.command.empty()) config["Cmd"] = spec.command;
    if (!spec.user.empty()) config["User"] = spec.user;
    if (!spec.working_dir.empty()) config["WorkingDir"] = spec.working_dir;
    return config;
}

std::string create_container(const fs::path& socket, const ContainerSpec& spec, const std::string& what) {
    Query query;
    if (!spec.name.empty()) query.emplace_back("name", spec.name);
    const Json config = container_config(spec);
    const Reply reply = exchange(socket, "POST", api_target("/containers/create", query), what, &config);
    if (reply.status == 404) throw Error("docker: image " + spec.image + ": not found");
    expect_status(reply, {201}, what + ": create");
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

ContainerState container_state(const fs::path& socket, const std::string& id, const std::string& what) {
    const Reply reply = exchange(socket, "GET", api_target("/containers/" + id + "/json"), what);
    expect_status(reply, {200}, what + ": inspect");
    const Json state = parse_json(reply, what).value("State", Json::object());
    ContainerState out;
    out.running = state.value("Running", false) || state.value("Restarting", false);
    out.out_of_memory = state.value("OOMKilled", false);
    out.exit_code = state.value("ExitCode", -1);
    return out;
}

// Polls until the container stops or the deadline passes; returns the last state seen.
ContainerState wait_for_stop(const fs::path& socket, const std::string& id, Clock::time_point deadline,
                             const std::string& what) {
    const auto started = Clock::now();
    for (;;) {
        const ContainerState state = container_state(socket, id, what);
        const auto now = Clock::now();
        if (!state.running || now >= deadline) return state;
        const auto pause = now - started < kFrequentPolling ? kFirstPoll : kLongestPoll;
        std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    }
}

// Removes a container when the run ends, however it ends; when kbuild itself ends first (a
// SIGKILL runs no destructor), the reaper removes it. Registered before it starts: a kbuild
// killed before the registration leaves a container created but never started.
class ContainerRemoval {
public:
    ContainerRemoval(const Docker& docker, const fs::path& socket, std::string id)
        : docker_(docker), socket_(socket.string()), id_(std::move(id)) {
        reaper::watch_container(socket_, id_);
    }
    ContainerRemoval(const ContainerRemoval&) = delete;
    ContainerRemoval& operator=(const ContainerRemoval&) = delete;
    ~ContainerRemoval() {
        try {
            docker_.remove_container(id_);
        } catch (const std::exception& e) {
            spdlog::warn("{}", e.what());
        }
        reaper::forget_container(socket_, id_);
    }

private:
    const Docker& docker_;
    std::string socket_;
    std::string id_;
};

}  // namespace

Docker::Docker(fs::path socket) : socket_(std::move(socket)) {}

bool Docker::ping(std::chrono::milliseconds timeout) const {
    try {
        const Reply reply = exchange(socket_, "GET", api_target("/_ping"), "docker: ping", nullptr, timeout);
        return reply.status == 200;
    } catch (const std::exception&) {
        return false;
    }
}

std::vector<DockerImage> Docker::images(const Labels& labels) const {
    std::vector<DockerImage> images;
    for (const auto& item : get_list(socket_, "/images/json", {}, labels, "docker: list images"))
        images.push_back(image_from_list(item));
    return images;
}

std::optional<DockerImage> Docker::image(const std::string& name_or_id) const {
    const std::string what = "docker: image " + name_or_id;
    const Reply reply = exchange(socket_, "GET", api_target("/images/" + name_or_id + "/json"), what);
    if (reply.status == 404) return std::nullopt;
    expect_status(reply, {200}, what);
    return image_from_inspect(parse_json(reply, what));
}

void Docker::import_directory(const fs::path& root, const std::string& tag, const DockerProgress& progress) const {
    const std::string what = "docker import " + tag;
    const auto [repo, version] = split_tag(tag);
    post_tree(socket_, api_target("/images/create", {{"fromSrc", "-"}, {"repo", repo}, {"tag", version}}), root, what,
              progress);
    if (!image(tag)) throw Error(what + ": the import ended without error but " + tag + " is missing");
}

void Docker::build(const fs::path& context, const std::string& tag, const Labels& build_args, const Labels& labels,
                   const DockerProgress& progress) const {
    const std::string what = "docker build " + tag;
    const Query query{{"t", tag},
                      {"buildargs", Json(build_args).dump()},
                      {"labels", Json(labels).dump()},
                      {"rm", "1"},
                      {"forcerm", "1"}};
    post_tree(socket_, api_target("/build", query), context, what, progress);
    if (!image(tag)) throw Error(what + ": the build ended without error but " + tag + " is missing");
}

void Docker::remove_image(const std::string& name_or_id) const {
    const std::string what = "docker: remove image " + name_or_id;
    const Reply reply = exchange(socket_, "DELETE", api_target("/images/" + name_or_id, {{"force", "1"}}), what);
    expect_status(reply, {200, 404}, what);
}

ContainerResult Docker::run(const ContainerSpec& spec, std::chrono::seconds timeout) const {
    const std::string what = "docker run " + (spec.name.empty() ? spec.image : spec.name);
    const std::string id = create_container(socket_, spec, what);
    const ContainerRemoval removal(*this, socket_, id);

    const Reply started = exchange(socket_, "POST", api_target("/containers/" + id + "/start"), what);
    expect_status(started, {204, 304}, what + ": start");

    const auto deadline = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
    ContainerResult result;
    ContainerState state = wait_for_stop(socket_, id, deadline, what);
    if (state.running) {
        const Reply killed = exchange(socket_, "POST", api_target("/containers/" + id + "/kill"), what);
        // 409: it stopped on its own between the last look and the kill.
        expect_status(killed, {204, 409}, what + ": kill");
        result.timed_out = killed.status == 204;
        state = wait_for_stop(socket_, id, Clock::now() + kStopAfterKill, what);
    }
    result.exit_code = state.exit_code;
    result.out_of_memory = state.out_of_memory;

    const Reply logs =
        exchange(socket_, "GET", api_target("/containers/" + id + "/logs", {{"stdout", "1"}, {"stderr", "1"}}), what);
    expect_status(logs, {200}, what + ": logs");
    result.output = demultiplex(logs.body);
    return result;
}

std::vector<ContainerEntry> Docker::list_containers(const Labels& labels) const {
    std::vector<ContainerEntry> entries;
    for (const auto& item : get_list(socket_, "/containers/json", {{"all", "1"}}, labels, "docker: list containers"))
        entries.push_back({string_field(item, "Id"), string_field(item, "State"), labels_field(item, "Labels")});
    return entries;
}

std::vector<std::string> Docker::containers(const Labels& labels) const {
    std::vector<std::string> ids;
    for (const auto& entry : list_containers(labels)) ids.push_back(entry.id);
    return ids;
}

void Docker::remove_container(const std::string& id) const {
    const std::string what = "docker: remove container " + id;
    const Reply reply =
        exchange(socket_, "DELETE", api_target("/containers/" + id, {{"force", "1"}, {"v", "1"}}), what);
    // 409: a removal is already under way (another cleanup got there first).
    expect_status(reply, {204, 404, 409}, what);
}

}  // namespace kbuild
