// A client of the Docker Engine API over its unix socket (/var/run/docker.sock), on libcurl (fetch/http.h):
// what kbuild's builder images and container builds use instead of the docker CLI, so every
// step has a typed answer, a time limit and a one-line error.
#pragma once

#include <kbuild/types.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kbuild {

struct DockerImage {
    std::string id;                 // sha256:...
    std::vector<std::string> tags;  // repo:tag
    std::map<std::string, std::string> labels;
    std::int64_t size = 0;  // bytes
    std::string created;    // RFC 3339 / ISO 8601, UTC
};

struct Mount {
    std::filesystem::path source;  // on the host
    std::string target;            // in the container
    bool read_only = true;
};

struct ContainerSpec {
    std::string image;
    std::vector<std::string> command;
    std::vector<std::string> env;  // NAME=value
    std::vector<Mount> mounts;
    std::string user;  // "uid:gid"; empty: the image's
    std::string working_dir;
    bool network = false;           // false: --network none
    double cpus = 0;                // 0: no limit
    std::int64_t memory_bytes = 0;  // 0: no limit
    std::map<std::string, std::string> labels;
    std::string name;  // empty: Docker picks one
};

// A container as listed: its id, state ("created", "running", "exited", ...) and labels.
struct ContainerEntry {
    std::string id;
    std::string state;
    std::map<std::string, std::string> labels;
};

struct ContainerResult {
    int exit_code = -1;
    bool timed_out = false;
    bool out_of_memory = false;  // the kernel's OOM killer ended it (at memory_bytes)
    std::string output;          // stdout and stderr, interleaved as the container wrote them
};

// Progress of a long operation (image build, import): one human line per call.
using DockerProgress = std::function<void(const std::string& line)>;

class Docker {
public:
    explicit Docker(std::filesystem::path socket = "/var/run/docker.sock");

    // True when the daemon answers GET /_ping within the timeout.
    bool ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const;

    // Images whose labels include every key=value of `labels` (all images when empty).
    std::vector<DockerImage> images(const std::map<std::string, std::string>& labels = {}) const;
    std::optional<DockerImage> image(const std::string& name_or_id) const;

    // POST /images/create?fromSrc=-: a root file system tarball (a directory here, tarred on
    // the fly with libarchive and streamed, never written whole to disk) becomes image `tag`.
    void import_directory(const std::filesystem::path& root, const std::string& tag,
                          const DockerProgress& progress = {}) const;

    // POST /build: the directory is the build context (tarred on the fly).
    void build(const std::filesystem::path& context, const std::string& tag,
               const std::map<std::string, std::string>& build_args, const std::map<std::string, std::string>& labels,
               const DockerProgress& progress = {}) const;

    void remove_image(const std::string& name_or_id) const;

    // Creates, starts and waits for a container, then removes it whatever happened (error,
    // time limit, exception). At the time limit the container is killed and timed_out set;
    // a zero timeout is no limit. Throws kbuild::Error when the container cannot be created
    // or started (a missing image, a missing mount source, a command not in the image).
    ContainerResult run(const ContainerSpec& spec, std::chrono::seconds timeout) const;

    // Containers (running or not) carrying every label; used to clean up after a crash.
    std::vector<std::string> containers(const std::map<std::string, std::string>& labels) const;
    std::vector<ContainerEntry> list_containers(const std::map<std::string, std::string>& labels) const;
    void remove_container(const std::string& id) const;  // force: kills a running one

private:
    std::filesystem::path socket_;
};

}  // namespace kbuild
