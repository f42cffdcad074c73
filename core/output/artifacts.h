// Where artifacts go and what is known of them: the naming of built modules and <out>/index.json,
// the record of every target (built, failed, skipped, unavailable).
#pragma once

#include "output/module_sign.h"
#include "util/strings.h"  // utc_now, which records carry

#include <kbuild/types.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace kbuild {

// What an artifact's name may be made of: the fields of a naming template, written {field}.
struct NamingFields {
    std::string module;  // the .ko's name without .ko
    std::string module_version;
    std::string arch;           // amd64, arm64
    std::string kernelrelease;  // uname -r
    std::string kernelversion;  // the N of uname -v's #N
    std::string config_md5;
    std::string config_sha256;
    std::string target;  // driverkit-style: debian, ubuntu-aws, flatcar
    std::string distro;
    std::string variant;  // "" or Release::variant (20.04.1, a Flatcar version)
    std::string machine;  // uname -m: x86_64, aarch64 (machine_of(arch))
};

// `uname -m` of a distro's architecture: amd64 -> x86_64, arm64 -> aarch64; any other (an rpm
// distro's x86_64 already) as it is. Falco's loader looks for its drivers under this name.
std::string machine_of(const std::string& arch);

// The presets of one naming template (DESIGN.md section 4), by name:
//   probe-builder  {module}-{module_version}-{machine}-{kernelrelease}-{config_md5}.ko (default)
//   falco          {module_version}/{machine}/falco_{target}_{kernelrelease}_{kernelversion}.ko
//                  (the path Falco's driver loader asks its repositories for; docs/architecture.md)
//   collector      {module_version}/collector-{kernelrelease}.ko.gz
//   service        v1/module/{target}/{arch}/{module_version}/{kernelrelease}/{kernelversion}/
//                  {config_sha256}/{module}.ko
// Empty when there is no such preset.
std::string naming_preset(const std::string& name);
std::vector<std::string> naming_presets();

// Refuses a template naming an unknown field, an unclosed brace, or a path that is absolute or
// climbs with "..": one line naming the template and the cause.
void check_naming_template(const std::string& naming);

// The artifact's path relative to the output directory. A name ending in .gz is written
// gzip-compressed. A field's value never adds a path separator ('/' becomes '_').
std::string artifact_name(const std::string& naming, const NamingFields& fields);

struct ArtifactRecord {
    std::string path;  // relative to the output directory
    std::string sha256;
    std::string vermagic;
    ModuleSignature signature;  // empty: not signed (then not written to index.json)
};

// What became of a target, one enum for the pipeline and the build service. A run records
// built, skipped (built before with the same inputs), failed or unavailable (a needed package is
// missing); the service's targets are also queued or building until a run ends them.
enum class TargetStatus { queued, building, built, skipped, failed, unavailable };

// The word index.json and service.json write: "built", "unavailable", ...
const char* to_string(TargetStatus status);
// The status a word names; nullopt for any other text.
std::optional<TargetStatus> target_status(std::string_view text);
// built or skipped: the target's artifacts are there.
inline bool has_artifacts(TargetStatus status) {
    return status == TargetStatus::built || status == TargetStatus::skipped;
}

// JSON as the word; a word that names no status is an error naming it.
void to_json(Json& j, TargetStatus status);
void from_json(const Json& j, TargetStatus& status);

// One kernel build target and how it ended.
struct TargetRecord {
    std::string distro, arch, kernelrelease, kernelversion;
    std::string module;  // the module source's name (its directory)
    std::string module_version;
    std::string config_md5;
    TargetStatus status = TargetStatus::failed;  // built | failed | skipped | unavailable
    std::string reason;                          // why, when not built
    std::vector<ArtifactRecord> artifacts;
    std::string compiler;        // the kernel's CONFIG_CC_VERSION_TEXT
    std::string builder;         // "local", or the builder image
    std::string builder_reason;  // why that image (the kernel's gcc and what was found)
    std::string log;             // relative to the output directory
    double duration_s = 0;
    std::string inputs;                 // digest of everything the artifacts depend on
    std::vector<std::string> packages;  // URLs or paths the kernel came from
    // The sha256 of each of packages, in the same order, once they were fetched: what a build
    // from a bundle (which carries no signature) was made from.
    std::vector<std::string> package_sha256;
    std::string finished_at;  // UTC, ISO 8601
    std::string target;       // driverkit-style target: "ubuntu-aws", "debian"
    std::string variant;      // Release::variant: "20.04.1" for an Ubuntu backport
    std::string naming;       // the naming template the artifacts were named by
    // Sources of the run used without their signature checked ("<url>: <why>"): an insecure
    // mirror, a repository with no key configured. Empty when everything was verified.
    std::vector<std::string> unverified;
    // A source kernel's: how its tree was made and what it lacks ("prepared from source ...; no
    // Module.symvers: ..."). Empty for a kernel whose headers were packaged.
    std::string source_tree;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModuleSignature, signer, key_id, hash)

// An artifact's "signature" is there only when it was signed: unsigned runs write what they
// always wrote.
inline void to_json(Json& j, const ArtifactRecord& a) {
    j = Json{{"path", a.path}, {"sha256", a.sha256}, {"vermagic", a.vermagic}};
    if (!a.signature.empty()) j["signature"] = a.signature;
}
inline void from_json(const Json& j, ArtifactRecord& a) {
    a = ArtifactRecord{};
    a.path = j.value("path", "");
    a.sha256 = j.value("sha256", "");
    a.vermagic = j.value("vermagic", "");
    if (j.contains("signature")) a.signature = j.at("signature").get<ModuleSignature>();
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TargetRecord, distro, arch, kernelrelease, kernelversion, module,
                                                module_version, config_md5, status, reason, artifacts, compiler,
                                                builder, builder_reason, log, duration_s, inputs, packages,
                                                package_sha256, finished_at, target, variant, naming, unverified,
                                                source_tree)

// What identifies a target: one record per key in an index, and across the shards' indexes.
inline auto target_key(const TargetRecord& r) {
    return std::tie(r.distro, r.arch, r.kernelrelease, r.variant, r.module);
}
// A target_key's values, kept.
using TargetKey = std::tuple<std::string, std::string, std::string, std::string, std::string>;

// The records of an index.json file, with the journal an Index may have left beside it
// (<file>.journal) replayed over them; throws "<file>: not a kbuild index[: why]" (or cannot
// read).
std::vector<TargetRecord> read_index(const std::filesystem::path& file);

// <out>/index.json, loaded at start and kept in memory. A put costs about the same at 10 and
// 10,000 targets: it appends the record as one line (one write(2)) to <out>/index.json.journal;
// index.json is rewritten atomically (temporary file + rename) from memory only when the
// journal has grown past max(256, records / 4) lines, on flush() and when the Index goes
// away; the journal is removed then. A run killed at any moment leaves a valid index.json and
// a journal of whole lines (but perhaps a torn last one) holding the rest, which the next Index
// (or read_index) replays. Thread-safe.
class Index {
public:
    explicit Index(std::filesystem::path out_dir);
    // Flushes; an error is logged, not thrown.
    ~Index();
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;

    // The record for this target, if any.
    std::optional<TargetRecord> find(const TargetRecord& target) const;

    // The records holding an artifact of this path (relative to the output directory), sorted
    // by target_key: one, unless two targets' records claim the same file.
    std::vector<TargetRecord> holders(const std::string& artifact_path) const;

    // Adds or replaces the target's record and saves it (in the journal).
    void put(const TargetRecord& record);

    // Rewrites index.json with every record when the journal holds any, and removes the journal.
    void flush();

    std::vector<TargetRecord> records() const;
    const std::filesystem::path& path() const { return path_; }

private:
    void insert_locked(const TargetRecord& record);
    void append_locked(const TargetRecord& record);
    void compact_locked();

    std::filesystem::path out_dir_, path_, journal_path_;
    mutable std::mutex mutex_;
    std::map<TargetKey, TargetRecord, std::less<>> records_;  // by target_key
    std::map<std::string, std::set<TargetKey>> holders_;      // artifact path -> the targets holding it
    int journal_fd_ = -1;                                     // open once a put has appended to it
    size_t journal_lines_ = 0;
    // The next put rewrites index.json: it is not there yet, or the journal may end in part of a
    // line (a failed write), after which no line may go.
    bool compact_next_ = false;
};

// The records of several shards' index.json files as one index's. A target in two files must
// be the same there (status, artifacts, inputs); otherwise a kbuild::Error names both files
// and the target. A file that is not an index is an error naming it.
std::vector<TargetRecord> merge_indexes(const std::vector<std::filesystem::path>& files);

}  // namespace kbuild
