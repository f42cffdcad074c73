// What deb-family plugins share above the formats of deb.hpp: the binary packages an archive,
// a local .deb or a file name describes; crawling suites of apt archives (Release checked,
// Packages.xz read once and remembered by its sha256); reading a batch of local files or names;
// and pairing each concrete headers package with the packages it depends on.
//
// A plugin says what is distro-specific through PairingRules: which packages are a kernel's
// headers, which of their dependencies a module build needs, the Depends a package has when
// only its name is known, and the kernel version and target of a release.
#pragma once

#include <kbuild/deb.hpp>
#include <kbuild/kernel_tree.hpp>
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbuild::deb {

// One binary package as an index, a control file or a file name describes it.
struct Binary {
    std::string name, version;
    std::string arch;                            // "" for Architecture: all
    std::vector<std::vector<Relation>> depends;  // empty when only the file name is known
    Package file;
    std::string suite;  // the suite whose index listed it ("bullseye-security"); "" in a batch
};

// Whether a package satisfies one relation ("name (op version)").
bool satisfies(const Binary& binary, const Relation& relation);

// "name (op version)", as a Depends field writes it.
std::string describe(const Relation& relation);

// ".../linux-headers-6.1.0-50-amd64_6.1.176-1_amd64.deb" -> name, version, arch; nullopt when
// the file name is not name_version_arch.deb. An escaped epoch ("1%3a2.0") is undone.
std::optional<Binary> binary_from_file_name(const std::string& file);

// The pool directory a URL or path names its source package by: ".../pool/main/l/linux-aws/x.deb"
// -> "linux-aws"; "" when it has no pool directory.
std::string pool_source(const std::string& file);

// A local .deb's control data, read through the host's extract service.
Binary binary_from_control(Host& host, const std::string& file);

// Which packages a plugin reads from indexes and batches.
using NameFilter = std::function<bool(std::string_view name)>;

struct ArchiveQuery {
    std::vector<std::string> mirrors;
    std::vector<std::string> suites;
    std::vector<std::string> components;
    std::string arch;
    // Also read: the build host's indexes (binary-<host_arch>), when it is not arch, for the
    // tools a cross build runs (PairingRules::host_tools). Set by FamilyPlugin::crawl_and_pair.
    std::string host_arch;
};

struct Crawled {
    std::vector<Binary> binaries;
    std::vector<std::string> errors;  // indexes that could not be read, each named with its cause
};

// Reads <mirror>/dists/<suite>/InRelease (else Release with Release.gpg), has the host verify
// its signature (Host::verify), refuses it when past its Valid-Until or older than the Date
// trusted before for the same URL, then reads each component's binary-<arch>/Packages.xz (and
// binary-<host_arch>'s; each one's SHA256, else SHA512, and size checked against the Release) on
// every mirror. A suite a mirror
// lacks is skipped (a debug line); a suite that fails its checks, or an index that fails its
// check or cannot be read, is an error of the result naming the file and the cause, nothing of
// it is used, and the rest is still read. Throws when no index at all was read.
Crawled crawl_archive(Host& host, const ArchiveQuery& query, const NameFilter& wanted);

// Local .deb files (their control data) or, with names_only, URLs and names (their file names).
// Files that are not wanted packages are unclaimed, with the reason; a file that cannot be read
// (a corrupt .deb) is an error naming it, and the rest is still read.
struct BatchRead {
    std::vector<Binary> binaries;
    std::vector<Unclaimed> unclaimed;
    std::vector<std::string> errors;
};
BatchRead read_batch(Host& host, const BatchRequest& request, const NameFilter& wanted);

// Set by name, each a function; release_of alone is required:
//
//   kbuild::deb::PairingRules rules;
//   rules.release_of = release_of_headers;
//   rules.depends_from_name = depends_from_name;
//   rules.describe_release = [](kbuild::Release& r, const Binary&) { r.kernelversion = "1"; };
struct PairingRules {
    // Required: the kernel release (`uname -r`) a package holds headers for; "" when it is not
    // a concrete headers package (a common, meta or kbuild package).
    std::function<std::string(const Binary&)> release_of;
    // Whether a dependency is part of a module build (the others, libc and the like, are not).
    // Unset: FamilyPlugin takes its NameFilter (the packages it reads); pair() takes every one.
    std::function<bool(const Relation&)> needed;
    // The Depends a headers package has when only its file name is known. Unset: none, so a
    // headers package named alone is paired with nothing.
    std::function<std::vector<std::vector<Relation>>(const Binary& headers, const std::string& release)>
        depends_from_name;
    // Optional: sets what a release knows besides its packages (kernelversion, target).
    std::function<void(Release&, const Binary& headers)> describe_release;
    // Optional: what tells apart two builds of one release (Release::variant).
    std::function<std::string(const Binary& headers)> variant_of;
    // Optional: where a package's programs run ("bullseye"). Of the packages satisfying a
    // relation, the headers' own version comes first, then one that runs where the headers do,
    // then the newest: a newer package built for a newer release may not run in the older one.
    std::function<std::string(const Binary&)> runs_on;
    // Optional: whether the Depends that depends_from_name gives these headers are guesses from
    // names (nothing says which alternative is theirs). A group that packages of two of its
    // alternatives satisfy is then left undecided: the headers are unclaimed, naming both,
    // instead of paired by the order of the guesses.
    std::function<bool(const Binary& headers)> guessed_depends;
    // Optional: the packages whose programs a module build runs (Debian's linux-kbuild-*: fixdep,
    // modpost). Cross-building (the request's host_arch is not its arch), they are taken of the
    // build host's architecture, from its own indexes: the target's would not run.
    NameFilter host_tools;
};

// Pairs every concrete headers package of `arch` (its newest version when several are listed,
// for each variant)
// with the packages its needed dependencies name: for each OR-group, the first alternative
// that some package satisfies, preferring the headers' own version, then (with runs_on) one
// that runs where the headers do, else the newest. A group no package satisfies makes the
// release unavailable, with the packages named. Guessed Depends that two packages satisfy
// (guessed_depends) leave the headers and those packages unclaimed, with the reason.
// With host_arch set and other than arch, dependencies that rules.host_tools names are taken of
// host_arch.
ReleaseList pair(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                 const PairingRules& rules, const std::string& host_arch = "");

// For a batch: the batch's unclaimed files and errors go into the list, and so do the files
// that no release took and pair did not name ("no headers package in the batch needs it").
void claim_leftovers(ReleaseList& list, const BatchRead& batch);

// Debian's packaging of kernel headers, which its derivatives (Garden Linux) keep: the
// packages a module build reads (linux-headers-*, linux-kbuild-*), and the release a concrete
// headers package is for, "linux-headers-6.1.0-50-amd64" -> "6.1.0-50-amd64"; "" for common
// packages and for meta packages (linux-headers-6.1-amd64, or an index's package whose Depends
// name no common package).
bool debian_kernel_package(std::string_view name);
std::string debian_headers_release(const Binary& headers);
// The packages of its programs a module build runs (fixdep, modpost): linux-kbuild-*, a
// PairingRules::host_tools.
bool debian_host_tools(std::string_view name);

// The hooks a deb-family plugin has in common, for its class to derive from: it adds crawl
// (building its ArchiveQuery and calling crawl_and_pair) and describe (its options and targets).
class FamilyPlugin {
public:
    // rules.release_of is required (an Error otherwise); an unset rules.needed is `wanted`.
    FamilyPlugin(Host& host, NameFilter wanted, PairingRules rules);

    ReleaseList batch_packages(const BatchRequest& request);
    // /usr/src/linux-headers-<release> (symlinks into a common directory resolve in the root).
    KernelDir get_kernel_dir(const KernelDirRequest& request) {
        return kernel_dir_in(request, "usr/src", "linux-headers-");
    }
    // dpkg's order of the kernel releases (epochs, '~' before anything): --latest's newest.
    int compare_releases(const Release& a, const Release& b) const { return compare_versions(a.release, b.release); }
    // unpack and hash_config are plugin.hpp's defaults: every package extracted, the .config's MD5.

protected:
    // crawl_archive, then pair; what could not be read goes into the list's errors.
    ReleaseList crawl_and_pair(const CrawlRequest& request, const ArchiveQuery& query);

    Host& host_;

private:
    NameFilter wanted_;
    PairingRules rules_;
};

}  // namespace kbuild::deb
