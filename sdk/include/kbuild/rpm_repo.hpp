// What rpm-family plugins share above the formats of rpm.hpp: crawling yum repositories
// (repomd.xml, then a primary index checked against it and remembered by its checksum), reading
// a batch of local rpms or names, and grouping kernel-devel packages by kernel release.
//
// An rpm kernel's build tree is one package (kernel-devel, kernel-uek-devel, ...) holding
// /usr/src/kernels/<release>, where <release> (`uname -r`) is the package's
// version-release.arch: kernel-devel-3.10.0-1160.80.1.el7.x86_64.rpm -> 3.10.0-1160.80.1.el7.x86_64.
#pragma once

#include <kbuild/kernel_tree.hpp>
#include <kbuild/plugin.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kbuild::rpm {

// One kernel build-tree package as an index, an rpm header or a file name describes it.
struct Binary {
    std::string name, epoch, version, release, arch;
    kbuild::Package file;
};

// version-release.arch: the kernel release a kernel-devel package builds for.
std::string kernel_release(const Binary& binary);

// amd64 -> x86_64, arm64 -> aarch64; other names pass unchanged.
std::string rpm_arch(const std::string& arch);

// Which package names a plugin reads: kernel-devel and its kinds.
using NameFilter = std::function<bool(std::string_view name)>;

// kernel-devel, kernel-<kind>-devel (uek, rt, ml, lt, 64k...), kernel<x.y>-devel.
bool kernel_devel_package(std::string_view name);

struct RepoQuery {
    std::vector<std::string> mirrors;
    // Repository paths under a mirror ("9-stream/BaseOS/x86_64/os"); with mirror_lists, paths
    // of mirror.list files whose first URL is the repository ("2/core/latest/x86_64/mirror.list").
    std::vector<std::string> repos;
    bool mirror_lists = false;
    std::string arch;  // rpm's name: x86_64
};

struct Crawled {
    std::vector<Binary> binaries;
    std::vector<std::string> errors;  // repositories that could not be read, each named
};

// Reads <repo>/repodata/repomd.xml (checked against its repomd.xml.asc, where published, by the
// host's verify) and the primary index it names (checksum and size checked) for every mirror
// and repository. A repository a mirror lacks is skipped (a debug line); one whose repomd.xml
// fails its signature check, or whose index fails its check, is an error of the result, nothing
// of it used. Throws when nothing was read.
Crawled crawl_repos(Host& host, const RepoQuery& query, const NameFilter& wanted);

// Fedora's build system (koji) keeps no repository metadata, only directories behind index
// pages: <mirror>/packages/kernel/<version>/<release>/<arch>/kernel-devel-<version>-<release>.
// <arch>.rpm. Lists the kernel-devel packages of the releases whose dist tag (the release's
// last part: "fc40" of "200.fc40") is one of `dist_tags`. A mirror that cannot be listed is an
// error of the result; throws when none could.
Crawled crawl_build_system(Host& host, const std::vector<std::string>& mirrors, const std::string& arch,
                           const std::vector<std::string>& dist_tags);

// Groups packages by kernel release: one release per distinct release (the first listed when
// several repositories or lines hold the same package). describe sets what else a release
// knows (kernelversion, target).
ReleaseList group(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                  const std::function<void(Release&, const Binary&)>& describe);

// The same with the plugin's naming: release_of gives a package's kernel release, "" for a
// package that is only part of another's tree (SUSE's noarch kernel-devel), which is left out.
ReleaseList group(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                  const std::function<std::string(const Binary&)>& release_of,
                  const std::function<void(Release&, const Binary&)>& describe);

// "150400.24.46.1" -> "150400.24.46": a release without its last part, the rebuild counter that
// SUSE's and Photon's build services add to the rpm but not to `uname -r`.
std::string without_last_part(const std::string& release);

// Where a plugin's repositories are under a mirror: per distro, comma-separated paths with
// {arch} for x86_64 or aarch64 (or, with mirror_lists, paths of mirror.list files). The user
// overrides them with --option repos=...; the mirror itself is always the user's.
struct Repositories {
    std::map<std::string, std::string> defaults;
    bool mirror_lists = false;
    std::string help;  // what `describe` says of the repos option
};

// The hooks of an rpm-family plugin, for its class to derive from with its repositories: a
// plugin is its naming and its table.
class FamilyPlugin {
public:
    FamilyPlugin(Host& host, NameFilter wanted, Repositories repositories)
        : host_(host), wanted_(std::move(wanted)), repositories_(std::move(repositories)) {}

    // The repos option, and each distro as its own target.
    Description describe() const;
    ReleaseList crawl(const CrawlRequest& request);

    // Local rpms by their headers, or (--from-list) names and URLs by file name. What is not a
    // wanted package, or the same package again, is unclaimed with the reason; an unreadable
    // rpm is an error naming it, and the rest is still grouped.
    ReleaseList batch_packages(const BatchRequest& request);
    // Each package's own signature checked (rpmkeys, through the host's verify), then its data
    // extracted into the one root the host gave.
    UnpackResult unpack(const UnpackRequest& request);
    KernelDir get_kernel_dir(const KernelDirRequest& request) { return kernel_dir_in(request, "usr/src/kernels"); }
    // rpm's order (rpmvercmp over version, then release.arch): --latest's newest.
    int compare_releases(const Release& a, const Release& b) const;
    // hash_config is plugin.hpp's default: the .config's MD5.

protected:
    // Sets kernelversion ("1": rpm kernels are built as #1) and target (the distro); a plugin
    // may refine it.
    virtual void describe_release(Release& release, const Binary& binary) const;
    // The kernel release (`uname -r`) a wanted package is the build tree of: kernel_release()
    // unless the distro names its kernels otherwise (Photon's 5.10.152-3.ph4-esx). "" for a
    // package that is only a part of other packages' trees, which add_companions places.
    virtual std::string release_of(const Binary& binary) const { return kernel_release(binary); }
    // The other packages a kernel's tree needs, taken from all those listed (by the crawl, or
    // in the batch): none unless a plugin says (SUSE: the noarch kernel-devel of the same
    // version). One that is missing sets release.unavailable, naming it.
    virtual void add_companions(Release&, const Binary& /*kernel*/, const std::vector<Binary>& /*listed*/) const {}
    virtual ~FamilyPlugin() = default;

    Host& host_;

private:
    // group() with release_of, then each release's companions.
    ReleaseList group_with_companions(const std::vector<Binary>& binaries, const std::string& distro,
                                      const std::string& arch) const;

    NameFilter wanted_;
    Repositories repositories_;
};

}  // namespace kbuild::rpm
