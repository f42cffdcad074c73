// Where artifacts go and what is known of them: the naming of built modules and <out>/index.json,
// the record of every target (built, failed, skipped, unavailable).
#pragma once

#include <kbuild/types.hpp>

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kbuild {

// The fields an artifact's name is made of.
struct ArtifactNameFields {
    std::string module;          // probe name: the .ko's name without .ko
    std::string module_version;
    std::string arch;
    std::string kernelrelease;
    std::string config_md5;
};

// The sysdig probe-builder name (DESIGN.md section 4), relative to the output directory:
// <module>-<module_version>-<arch>-<kernelrelease>-<config_md5>.ko
std::string probe_builder_name(const ArtifactNameFields& fields);

struct ArtifactRecord {
    std::string path;      // relative to the output directory
    std::string sha256;
    std::string vermagic;
};

// One kernel build target and how it ended.
struct TargetRecord {
    std::string distro, arch, kernelrelease, kernelversion;
    std::string module;  // the module source's name (its directory)
    std::string module_version;
    std::string config_md5;
    std::string status;  // built | failed | skipped | unavailable
    std::string reason;  // why, when not built
    std::vector<ArtifactRecord> artifacts;
    std::string compiler;  // the kernel's CONFIG_CC_VERSION_TEXT
    std::string builder;   // "local", or the builder image
    std::string builder_reason;  // why that image (the kernel's gcc and what was found)
    std::string log;       // relative to the output directory
    double duration_s = 0;
    std::string inputs;    // digest of everything the artifacts depend on
    std::vector<std::string> packages;  // URLs or paths the kernel came from
    std::string finished_at;            // UTC, ISO 8601
    std::string target;                 // driverkit-style target: "ubuntu-aws", "debian"
    std::string variant;                // Release::variant: "20.04.1" for an Ubuntu backport
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ArtifactRecord, path, sha256, vermagic)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TargetRecord, distro, arch, kernelrelease,
                                                kernelversion, module, module_version, config_md5,
                                                status, reason, artifacts, compiler, builder,
                                                builder_reason, log,
                                                duration_s, inputs, packages, finished_at, target,
                                                variant)

// <out>/index.json: loaded at start, rewritten atomically (temporary file + rename) after every
// change so an interrupted run keeps what finished. Thread-safe.
class Index {
public:
    explicit Index(std::filesystem::path out_dir);

    // The record for this target, if any.
    std::optional<TargetRecord> find(const TargetRecord& target) const;

    // Adds or replaces the target's record and saves the file.
    void put(const TargetRecord& record);

    std::vector<TargetRecord> records() const;
    const std::filesystem::path& path() const { return path_; }

private:
    void save_locked() const;

    std::filesystem::path out_dir_, path_;
    mutable std::mutex mutex_;
    std::vector<TargetRecord> records_;
};

// The current UTC time as 2026-11-23T10:01:02Z.
std::string utc_now();

}  // namespace kbuild
