#include "serve/service.h"

#include "output/artifacts.h"

#include <kbuild/digest.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

bool failed(TargetStatus status) {
    return status == TargetStatus::failed || status == TargetStatus::unavailable;
}

std::string fingerprint(const struct stat& st) {
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
}

Json to_json(const TargetState& s) {
    Json artifacts = Json::array();
    for (const auto& a : s.artifacts)
        artifacts.push_back({{"name", a.name}, {"path", a.path}, {"sha256", a.sha256}, {"vermagic", a.vermagic}});
    const ModuleRequest& r = s.request;
    return {{"key", r.key()},
            {"build_type", r.build_type},
            {"arch", r.arch},
            {"kernelrelease", r.kernelrelease},
            {"kernelversion", r.kernelversion},
            {"module_version", r.module_version},
            {"config_sha256", r.config_sha256},
            {"config_md5", r.config_md5},
            {"module", s.module},
            {"status", to_string(s.status)},
            {"artifacts", artifacts},
            {"reason", s.reason},
            {"log", s.log},
            {"config_match", s.config_match},
            {"queued_at", s.queued_at},
            {"finished_at", s.finished_at},
            {"duration_s", s.duration_s},
            {"finished_epoch", s.finished_epoch}};
}

// A target as service.json holds it; nullopt (and a warning) when it does not hold up: the
// file is ours, but a key from it becomes a path, so it passes the same checks as a request.
std::optional<TargetState> target_from(const Json& j, const fs::path& file) {
    try {
        TargetState s;
        const auto request = parse_key(j.at("key").get<std::string>());
        const auto status = target_status(j.at("status").get<std::string>());
        if (!request || !status) throw Error("bad key or status");
        s.request = *request;
        s.request.config_md5 = j.value("config_md5", "");
        s.module = j.at("module").get<std::string>();
        s.status = *status;
        for (const auto& a : j.value("artifacts", Json::array())) {
            ServiceArtifact artifact{a.at("name").get<std::string>(), a.at("path").get<std::string>(),
                                     a.at("sha256").get<std::string>(), a.value("vermagic", "")};
            const fs::path path(artifact.path);
            if (!valid_field("name", artifact.name) || path.is_absolute() ||
                std::any_of(path.begin(), path.end(), [](const fs::path& p) { return p == ".."; }))
                throw Error("bad artifact " + artifact.path);
            s.artifacts.push_back(artifact);
        }
        s.reason = j.value("reason", "");
        s.log = j.value("log", "");
        s.config_match = j.value("config_match", "");
        s.queued_at = j.value("queued_at", "");
        s.finished_at = j.value("finished_at", "");
        s.duration_s = j.value("duration_s", 0.0);
        s.finished_epoch = j.value("finished_epoch", std::int64_t{0});
        return s;
    } catch (const std::exception& e) {
        spdlog::warn("{}: a target is dropped: {}", file.string(), e.what());
        return std::nullopt;
    }
}

}  // namespace

OpenArtifact::OpenArtifact(OpenArtifact&& other) noexcept : fd(other.fd), size(other.size) {
    other.fd = -1;
}

OpenArtifact& OpenArtifact::operator=(OpenArtifact&& other) noexcept {
    if (this != &other) {
        if (fd >= 0) ::close(fd);
        fd = other.fd;
        size = other.size;
        other.fd = -1;
    }
    return *this;
}

OpenArtifact::~OpenArtifact() {
    if (fd >= 0) ::close(fd);
}

BuildQueue::BuildQueue(QueueOptions options, BuildRunner runner)
    : options_(std::move(options)), runner_(std::move(runner)), state_path_(options_.out_dir / "service.json") {
    std::ifstream in(state_path_);
    if (!in) return;
    const Json doc = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("targets") || !doc["targets"].is_array())
        throw Error(state_path_.string() + ": not a kbuild service state (move it away to start anew)");
    std::vector<TargetState> again;
    for (const auto& j : doc["targets"]) {
        auto state = target_from(j, state_path_);
        if (!state) continue;
        if (state->status == TargetStatus::queued || state->status == TargetStatus::building) {
            if (state->status == TargetStatus::building)
                state->reason = "queued again: the service stopped during its build";
            state->status = TargetStatus::queued;
            again.push_back(*state);
        }
        const std::string key = state->request.key();
        if (failed(state->status)) failed_locked(*state);
        targets_[key] = std::move(*state);
    }
    // Compacted at once: what is too old or too much to remember is gone from the file too.
    if (forget_locked()) {
        spdlog::info("{}: {} failed target(s) forgotten (older than {} s, or beyond the {} kept)", state_path_.string(),
                     forgotten_, options_.retry_failed_after.count(), options_.max_failed);
        save_locked();
    }
    // In the order they were asked for (the timestamps sort as text).
    std::stable_sort(again.begin(), again.end(),
                     [](const TargetState& a, const TargetState& b) { return a.queued_at < b.queued_at; });
    for (const auto& state : again) queue_.push_back(state.request.key());
    if (!again.empty())
        spdlog::info("{}: {} target(s) queued again from the last run", state_path_.string(), again.size());
    snapshot_locked();
}

BuildQueue::~BuildQueue() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void BuildQueue::start() {
    std::lock_guard lock(mutex_);
    if (!workers_.empty()) return;
    for (int i = 0; i < std::max(1, options_.jobs); ++i) workers_.emplace_back([this] { work(); });
}

void BuildQueue::work() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || (!draining_ && !queue_.empty()); });
        if (stopping_) return;
        const std::string key = queue_.front();
        queue_.pop_front();
        TargetState& state = targets_.at(key);
        state.status = TargetStatus::building;
        ++building_;
        save_locked();
        const TargetState asked = state;
        lock.unlock();

        BuildOutcome outcome;
        try {
            outcome = runner_(asked);
        } catch (const std::exception& e) {
            outcome.built = false;
            outcome.reason = e.what();
        }

        lock.lock();
        --building_;
        TargetState& done = targets_.at(key);
        done.status = outcome.built ? TargetStatus::built : TargetStatus::failed;
        done.artifacts = outcome.built ? outcome.artifacts : std::vector<ServiceArtifact>{};
        done.reason = outcome.built ? std::string() : outcome.reason;
        done.log = outcome.log;
        done.config_match = outcome.config_match;
        done.duration_s = outcome.duration_s;
        done.finished_at = utc_now();
        done.finished_epoch = std::time(nullptr);
        for (const auto& a : done.artifacts) verified_.erase(a.path);
        if (outcome.built) {
            ++done_;
            build_seconds_ += outcome.duration_s;
        } else {
            ++failed_;
            failed_locked(done);
            forget_locked();
        }
        save_locked();
        changed_.notify_all();
    }
}

BuildQueue::Submitted BuildQueue::submit(const ModuleRequest& request, const std::string& module) {
    std::lock_guard lock(mutex_);
    if (draining_ || stopping_) return {Answer::shutting_down, {}};
    const std::string key = request.key();
    if (forget_locked()) snapshot_locked();
    auto it = targets_.find(key);
    if (it == targets_.end()) {
        if (queue_.size() >= options_.max_queued) return {Answer::queue_full, {}};
        TargetState state;
        state.request = request;
        state.module = module;
        state.queued_at = utc_now();
        it = targets_.emplace(key, std::move(state)).first;
        queue_.push_back(key);
        save_locked();
        changed_.notify_all();
        return {Answer::pending, it->second};
    }
    TargetState& state = it->second;
    switch (state.status) {
        case TargetStatus::queued:
        case TargetStatus::building: return {Answer::pending, state};
        case TargetStatus::built:
        case TargetStatus::skipped:
            if (intact_locked(state)) return {Answer::built, state};
            return {Answer::pending, state};  // intact_locked queued it again
        case TargetStatus::failed:
        case TargetStatus::unavailable:
            if (std::time(nullptr) - state.finished_epoch < options_.retry_failed_after.count())
                return {Answer::failed, state};
            if (queue_.size() >= options_.max_queued) return {Answer::queue_full, state};
            requeue_locked(state, "tried again: the last failure is older than " +
                                      std::to_string(options_.retry_failed_after.count()) + " s");
            return {Answer::pending, state};
    }
    return {Answer::failed, state};
}

std::optional<TargetState> BuildQueue::find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = targets_.find(key);
    if (it == targets_.end()) return std::nullopt;
    return it->second;
}

void BuildQueue::requeue_locked(TargetState& state, const std::string& why) {
    spdlog::warn("{}: {}", state.request.key(), why);
    if (failed(state.status)) --failed_now_;  // its entry in failures_ is stale now
    state.status = TargetStatus::queued;
    state.reason = why;
    state.queued_at = utc_now();
    queue_.push_back(state.request.key());
    save_locked();
    changed_.notify_all();
}

void BuildQueue::failed_locked(const TargetState& state) {
    failures_.emplace(state.finished_epoch, state.request.key());
    ++failed_now_;
}

// Forgets failures older than retry_failed_after, and the oldest beyond max_failed. True when
// any was forgotten (the caller saves).
bool BuildQueue::forget_locked() {
    const std::int64_t now = std::time(nullptr);
    bool any = false;
    while (!failures_.empty()) {
        const auto oldest = failures_.begin();
        const auto it = targets_.find(oldest->second);
        if (it == targets_.end() || !failed(it->second.status) || it->second.finished_epoch != oldest->first) {
            failures_.erase(oldest);  // stale
            continue;
        }
        if (failed_now_ <= options_.max_failed && now - oldest->first < options_.retry_failed_after.count()) break;
        targets_.erase(it);
        failures_.erase(oldest);
        --failed_now_;
        ++forgotten_;
        any = true;
    }
    return any;
}

namespace {

// Opens an artifact and checks it: by its recorded sha256 when the file is new to `verified`
// (or changed since: another inode, size or ctime), else by that identity alone. Throws
// kbuild::Error saying why it fails.
void check_artifact(const fs::path& out_dir, const ServiceArtifact& artifact,
                    std::map<std::string, std::string>& verified, OpenArtifact& file) {
    const fs::path path = out_dir / artifact.path;
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file.fd < 0) throw Error(artifact.path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(artifact.path + ": not a regular file");
    file.size = static_cast<std::uint64_t>(st.st_size);
    const std::string identity = fingerprint(st);
    if (const auto it = verified.find(artifact.path); it != verified.end() && it->second == identity) return;
    // Read through the descriptor, so what is checked is what will be served.
    const std::string digest = sha256_file("/proc/self/fd/" + std::to_string(file.fd));
    if (digest != artifact.sha256)
        throw Error(artifact.path + " no longer matches its sha256 in index.json (" + artifact.sha256.substr(0, 12) +
                    "..., now " + digest.substr(0, 12) + "...)");
    verified[artifact.path] = identity;
}

}  // namespace

bool BuildQueue::intact_locked(const TargetState& state) {
    for (const auto& artifact : state.artifacts) {
        OpenArtifact file;
        try {
            check_artifact(options_.out_dir, artifact, verified_, file);
        } catch (const Error& e) {
            requeue_locked(targets_.at(state.request.key()), std::string("rebuilding: ") + e.what());
            return false;
        }
    }
    return !state.artifacts.empty();
}

BuildQueue::Lookup BuildQueue::open_artifact(const std::string& key, const std::string& name) {
    std::lock_guard lock(mutex_);
    Lookup lookup;
    const auto it = targets_.find(key);
    if (it == targets_.end()) return lookup;
    TargetState& state = it->second;
    lookup.state = state;
    switch (state.status) {
        case TargetStatus::queued:
        case TargetStatus::building: lookup.answer = Answer::pending; return lookup;
        case TargetStatus::failed:
        case TargetStatus::unavailable: lookup.answer = Answer::failed; return lookup;
        case TargetStatus::built:
        case TargetStatus::skipped: break;
    }
    const auto artifact = std::find_if(state.artifacts.begin(), state.artifacts.end(),
                                       [&](const ServiceArtifact& a) { return a.name == name; });
    if (artifact == state.artifacts.end()) return lookup;  // no such module: unknown
    try {
        check_artifact(options_.out_dir, *artifact, verified_, lookup.file);
    } catch (const Error& e) {
        lookup.file = OpenArtifact();
        requeue_locked(state, std::string("rebuilding: ") + e.what());
        lookup.state = state;
        lookup.answer = Answer::pending;
        return lookup;
    }
    lookup.answer = Answer::built;
    return lookup;
}

QueueMetrics BuildQueue::metrics() const {
    std::lock_guard lock(metrics_mutex_);
    return metrics_;
}

// The figures metrics() answers, taken whenever the state changes (with each save): a scrape
// never waits for the queue's lock, held while service.json is written.
void BuildQueue::snapshot_locked() const {
    QueueMetrics m;
    for (const auto& [key, state] : targets_) {
        switch (state.status) {
            case TargetStatus::queued: ++m.queued; break;
            case TargetStatus::building: ++m.building; break;
            case TargetStatus::built:
            case TargetStatus::skipped: ++m.built; break;
            case TargetStatus::failed:
            case TargetStatus::unavailable: ++m.failed; break;
        }
    }
    m.builds_done = done_;
    m.builds_failed = failed_;
    m.forgotten = forgotten_;
    m.mean_build_s = done_ ? build_seconds_ / static_cast<double>(done_) : 0;
    std::lock_guard lock(metrics_mutex_);
    metrics_ = m;
}

bool BuildQueue::drain(std::chrono::milliseconds grace) {
    std::unique_lock lock(mutex_);
    draining_ = true;
    changed_.notify_all();
    return changed_.wait_for(lock, grace, [&] { return building_ == 0; });
}

// Written whole to a temporary file and renamed: a crash leaves the old state or the new.
// A failure is logged, not thrown: the service goes on from what it holds in memory.
// One target a line: compact, and still read (and diffed) by eye.
void BuildQueue::save_locked() const {
    snapshot_locked();
    const fs::path temporary = state_path_.string() + ".tmp";
    std::error_code ec;
    fs::create_directories(options_.out_dir, ec);
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << "{\"schema\": " << Json(kSchema).dump() << ", \"targets\": [";
        const char* separator = "\n";
        for (const auto& [key, state] : targets_) {
            out << separator << to_json(state).dump();
            separator = ",\n";
        }
        out << "\n]}\n";
        if (!out) {
            spdlog::error("{}: cannot write the service's state", temporary.string());
            return;
        }
    }
    fs::rename(temporary, state_path_, ec);
    if (ec) spdlog::error("{}: {}", state_path_.string(), ec.message());
}

}  // namespace kbuild
