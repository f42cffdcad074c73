// What every rpm-family plugin needs: rpm's version order, a yum repository's repomd.xml, a
// streaming primary.xml reader (plain, .gz, .xz or .zst, read without a temporary file), rpm
// file names (NEVRA), and the header of a local .rpm read in process.
//
// Errors are kbuild::Error with one line naming the file (or URL) and the cause.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbuild::rpm {

// ---- versions ----

// rpm's rpmvercmp over one version or release string: <0, 0, >0 like strcmp. Runs of ASCII
// letters or of digits are compared in turn (digits numerically, leading zeros ignored; a digit
// run is newer than a letter run); other characters only separate runs. '~' sorts before
// anything, even the end of the string ("1.0~rc1" < "1.0"); '^' sorts after the end but before
// anything else ("1.0" < "1.0^git1" < "1.0.1").
int compare_segments(std::string_view a, std::string_view b);

// Orders "[epoch:]version[-release]" as `rpm.vercmp` (rpmverCmp) does: the epoch is the leading
// digits before a ':' (missing: 0), the release what follows the last '-'. Epochs, then
// versions, then releases by compare_segments. As in rpm, a missing release is older than any
// release ("1.0" < "1.0-1"), so this is a total order fit for sorting. (rpm's dependency
// matching is looser: "Requires: foo = 1.0" accepts foo-1.0-5; that is a range test, not an
// order, and is not what this function answers.)
int compare_evr(std::string_view a, std::string_view b);

// ---- repomd.xml ----

// One <data> entry of repodata/repomd.xml.
struct RepoData {
    std::string type;             // "primary", "filelists", "other", "primary_db", ...
    std::string location;         // href, relative to the repository ("repodata/...-primary.xml.gz")
    std::string checksum_type;    // "sha256" (old repositories: "sha" = sha1)
    std::string checksum;         // of the file as stored (compressed)
    std::int64_t size = -1;       // of the file as stored; -1 when not given
    std::int64_t open_size = -1;  // decompressed; -1 when not given
    std::string open_checksum;    // of the decompressed file ("" when not given), same type
};

// Reads a repomd.xml document. `origin` (its URL or path) names it in errors: malformed XML,
// a <data> without a type or location, a size that is not a number.
std::vector<RepoData> parse_repomd(std::string_view xml, std::string_view origin = "repomd.xml");

// The entry of this type, or nullptr.
const RepoData* find(const std::vector<RepoData>& data, std::string_view type);

// ---- packages ----

// One binary (or source) package as primary.xml, an rpm header or a file name describes it.
struct Package {
    std::string name, arch;
    // The epoch as a decimal string: "0" when the package has none (as createrepo writes it);
    // "" from parse_file_name, since a file name does not carry it.
    std::string epoch;
    std::string version, release;
    std::string location;                 // primary.xml: href relative to the repository
    std::string checksum_type, checksum;  // primary.xml: of the package file
    std::string sourcerpm;                // "" for a source package (and from a file name)
    std::int64_t size = -1;               // package file size; -1 when not known
    std::vector<std::string> provides;    // names only (rpm:entry name, PROVIDENAME)
    // Names only (rpm:entry name, REQUIRENAME). The '_' because `requires` is a keyword in
    // C++20, which a plugin including this header may be compiled as.
    std::vector<std::string> requires_;
};

// Reads a primary.xml index: plain, or gzip / xz / zstd compressed (told by the magic bytes, not
// the name), streamed through an XML parser in chunks. For each <package> whose <name> passes
// `wanted`, fn gets it filled in (the Package is reused: valid during the call only); other
// packages are skipped without being built up. Throws kbuild::Error naming the file on I/O,
// decompression or XML errors: a truncated or corrupt file is an error, and the packages before
// the damage have been passed to fn by then. An exception from wanted or fn propagates.
void read_primary(const std::string& path, const std::function<bool(std::string_view name)>& wanted,
                  const std::function<void(const Package&)>& fn);

// ".../kernel-devel-3.10.0-1160.80.1.el7.x86_64.rpm" -> name kernel-devel, version 3.10.0,
// release 1160.80.1.el7, arch x86_64: the arch follows the last '.', the release the last '-',
// the version the '-' before it; the name is the rest and may hold '-' and digits
// (kernel5.10-devel, kernel-uek-devel). The last path component is used, with URL escapes
// ("%2B", "%5E") decoded. nullopt when it is not name-version-release.arch.rpm. Only the name,
// version, release and arch are set.
std::optional<Package> parse_file_name(const std::string& file);

// The header of a local .rpm, read in process: name, epoch, version, release, arch, sourcerpm,
// provides and requires; size is the file's size. Throws kbuild::Error naming the file and what
// is wrong with it ("not an rpm (bad lead magic)", "header truncated", ...).
Package read_header(const std::string& path);

}  // namespace kbuild::rpm
