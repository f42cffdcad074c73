// The build service's queue: the modules nodes asked for, keyed by kernel and module version,
// built once however many ask at once, and kept on disk (<out>/service.json) so that a restart
// loses nothing and a build a restart cut short is queued again. The HTTP layer
// (service_http) sits above it; builds are a callback below it (the pipeline in `kbuild serve`,
// a fake in the tests).
#pragma once

#include "output/artifacts.h"
#include "serve/request.h"

#include <kbuild/types.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kbuild {

// One module file of a built target.
struct ServiceArtifact {
    std::string name;    // the file a node asks for: "hello.ko"
    std::string path;    // relative to the service's out dir
    std::string sha256;  // as index.json records it
    std::string vermagic;
};

// What the service knows of one key.
struct TargetState {
    ModuleRequest request;
    std::string module;  // the module source's name: the <name>.ko a Location names
    TargetStatus status = TargetStatus::queued;
    std::vector<ServiceArtifact> artifacts;  // when built
    std::string reason;                      // when failed (or why it was queued again)
    std::string log;                         // relative to the out dir, when there is one
    std::string config_match;                // "yes", "no" (the node's config is not the headers'), "" unknown
    std::string queued_at, finished_at;      // UTC, ISO 8601
    double duration_s = 0;
    std::int64_t finished_epoch = 0;  // for retrying failures after a while
};

// What a build callback answers.
struct BuildOutcome {
    bool built = false;
    std::vector<ServiceArtifact> artifacts;
    std::string reason, log;
    std::string config_match;
    double duration_s = 0;
};
using BuildRunner = std::function<BuildOutcome(const TargetState&)>;

struct QueueOptions {
    std::filesystem::path out_dir;                  // holds service.json; artifact paths are relative to it
    int jobs = 1;                                   // builds at once
    std::size_t max_queued = 64;                    // targets waiting; a new one beyond is refused
    std::chrono::seconds retry_failed_after{3600};  // a failure older than this is tried again...
    // ...and is forgotten (from memory and service.json), as is the oldest failure beyond
    // max_failed: what a node asks for that cannot be built costs a bounded room.
    std::size_t max_failed = 1000;
};

struct QueueMetrics {
    std::size_t queued = 0, building = 0, built = 0, failed = 0;  // targets now in each state
    std::uint64_t builds_done = 0, builds_failed = 0;             // since start
    std::uint64_t forgotten = 0;                                  // failures forgotten since start
    double mean_build_s = 0;                                      // of builds_done
};

// An artifact opened for serving: verified against its recorded sha256 (again whenever the
// file's inode, size or ctime changed since it was last verified).
struct OpenArtifact {
    int fd = -1;
    std::uint64_t size = 0;
    OpenArtifact() = default;
    OpenArtifact(OpenArtifact&& other) noexcept;
    OpenArtifact& operator=(OpenArtifact&& other) noexcept;
    OpenArtifact(const OpenArtifact&) = delete;
    OpenArtifact& operator=(const OpenArtifact&) = delete;
    ~OpenArtifact();
};

class BuildQueue {
public:
    // Loads <out>/service.json: targets queued or building when the last process ended are
    // queued again (in their order), their half-done work never served. Call start() to build.
    BuildQueue(QueueOptions options, BuildRunner runner);
    // Stops taking work and waits for running builds.
    ~BuildQueue();
    BuildQueue(const BuildQueue&) = delete;
    BuildQueue& operator=(const BuildQueue&) = delete;

    void start();

    enum class Answer {
        built,          // state.artifacts are there and intact
        pending,        // queued or building (now or already)
        failed,         // state.reason, state.log
        queue_full,     // not taken: too many targets wait
        shutting_down,  // not taken: the service is stopping
    };
    struct Submitted {
        Answer answer;
        TargetState state;
    };
    // A node's request: answered from what is known, else queued. A key asked for again while
    // queued or building shares that build. A built target whose artifact no longer matches
    // its sha256 is queued again; a failure older than retry_failed_after is tried again.
    Submitted submit(const ModuleRequest& request, const std::string& module);

    std::optional<TargetState> find(const std::string& key) const;

    // For GET: the target's state and, when built and `name` is one of its intact artifacts,
    // the file opened. An artifact that fails its check queues the target again (pending).
    struct Lookup {
        std::optional<Answer> answer;  // nullopt: unknown key, or no artifact of that name
        TargetState state;
        OpenArtifact file;
    };
    Lookup open_artifact(const std::string& key, const std::string& name);

    // Never waits for the queue's lock: the figures as of the last change.
    QueueMetrics metrics() const;

    // Stops taking requests (submit answers shutting_down) and starting builds; waits up to
    // `grace` for running ones. True when none is left running. Targets left queued or
    // building stay so in service.json, to be built by the next process.
    bool drain(std::chrono::milliseconds grace);

    const std::filesystem::path& state_path() const { return state_path_; }

private:
    void work();
    void requeue_locked(TargetState& state, const std::string& why);
    void failed_locked(const TargetState& state);
    bool forget_locked();
    bool intact_locked(const TargetState& state);
    void save_locked() const;
    void snapshot_locked() const;

    QueueOptions options_;
    BuildRunner runner_;
    std::filesystem::path state_path_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, TargetState> targets_;
    std::deque<std::string> queue_;
    std::size_t building_ = 0;
    bool stopping_ = false, draining_ = false;
    std::uint64_t done_ = 0, failed_ = 0, forgotten_ = 0;
    // Failed targets by when they failed, oldest first (an entry whose target has since been
    // queued again, or failed again later, is stale and skipped), and how many there are.
    std::multimap<std::int64_t, std::string> failures_;
    std::size_t failed_now_ = 0;
    double build_seconds_ = 0;
    // Artifact files verified since start: path -> what identified the file then.
    std::map<std::string, std::string> verified_;
    std::vector<std::thread> workers_;
    mutable std::mutex metrics_mutex_;
    mutable QueueMetrics metrics_;
};

}  // namespace kbuild
