// Arch Linux: kernels from pacman repositories (crawl: <mirror>/<repo>/os/<arch>/<repo>.db, core
// and extra) or from package files and names (batch). A kernel release needs one package, its
// flavour's headers: linux-headers, linux-lts-headers, linux-zen-headers or
// linux-hardened-headers, holding usr/lib/modules/<release>/build.
//
// <release> (`uname -r`) is what Arch's PKGBUILDs make of the package version: the source tag
// (v${pkgver%.*}-${pkgver##*.}: 6.9.7.arch1 -> 6.9.7-arch1; linux-lts's 6.6.36 is a plain
// kernel.org version), then localversion.10-pkgrel ("-<pkgrel>") and localversion.20-pkgname
// ("${pkgbase#linux}": "", "-lts", "-zen", "-hardened"). So linux-headers 6.9.7.arch1-1 is
// 6.9.7-arch1-1, linux-lts-headers 6.6.36-1 is 6.6.36-1-lts, linux-zen-headers 6.9.7.zen1-1 is
// 6.9.7-zen1-1-zen. Every flavour is the target "arch" (what Falco's driver loader names an
// Arch host, whichever kernel it runs: the release tells the flavours apart).
#include <kbuild/options.hpp>
#include <kbuild/pacman.hpp>
#include <kbuild/plugin.hpp>

#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace fs = std::filesystem;
using kbuild::Error;
using kbuild::pacman::Entry;

namespace {

const char* const kDefaultRepos = "core,extra";
const char* const kFlavours[] = {"", "lts", "zen", "hardened"};

// "" for linux-headers, "lts" for linux-lts-headers...; nullopt for any other package.
std::optional<std::string> flavour_of(std::string_view name) {
    for (const std::string flavour : kFlavours)
        if (name == "linux" + (flavour.empty() ? "" : "-" + flavour) + "-headers") return flavour;
    return std::nullopt;
}

bool headers_package(std::string_view name) {
    return flavour_of(name).has_value();
}

// The kernel release a headers package builds for (see the top of this file).
std::string release_of(const Entry& e) {
    const std::string version = e.version.substr(e.version.find(':') + 1);  // Arch's kernels have no epoch
    const size_t dash = version.rfind('-');
    if (dash == std::string::npos || dash == 0) throw Error(e.filename + ": version " + e.version + " has no pkgrel");
    std::string pkgver = version.substr(0, dash);
    const size_t dot = pkgver.rfind('.');
    if (dot != std::string::npos && dot + 1 < pkgver.size() &&
        std::isalpha(static_cast<unsigned char>(pkgver[dot + 1])))
        pkgver[dot] = '-';
    const std::string flavour = flavour_of(e.name).value_or("");
    return pkgver + version.substr(dash) + (flavour.empty() ? "" : "-" + flavour);
}

// The package version a release was made from: release_of undone, for pacman's order.
std::string version_of(std::string release) {
    for (const std::string flavour : kFlavours) {
        const std::string suffix = "-" + flavour;
        if (!flavour.empty() && release.size() > suffix.size() &&
            release.compare(release.size() - suffix.size(), suffix.size(), suffix) == 0) {
            release.resize(release.size() - suffix.size());
            break;
        }
    }
    const size_t dash = release.rfind('-');
    if (dash == std::string::npos) return release;
    const size_t tag = release.rfind('-', dash - 1);
    if (tag != std::string::npos && tag > 0) release[tag] = '.';
    return release;
}

class Arch {
public:
    Arch(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {
            {{"repos", "comma-separated repositories under the mirror (<repo>/os/<arch>/<repo>.db)", kDefaultRepos}},
            {{"arch", "arch"}},
            {{"arch", {"/usr/share/keyrings/archlinux.gpg"}}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        if (request.mirrors.empty()) throw Error("no arch mirror to crawl (give --mirror URL)");
        kbuild::pacman::RepoQuery query;
        query.mirrors = request.mirrors;
        query.repos = kbuild::split_list(kbuild::option(request.options, "repos", kDefaultRepos));
        query.arch = kbuild::pacman::pacman_arch(request.arch);
        const kbuild::pacman::Crawled crawled = kbuild::pacman::crawl_repos(host_, query, headers_package);
        kbuild::ReleaseList list = group(crawled.entries, request);
        list.unclaimed.clear();  // another mirror's copy of a package: not worth a line
        list.errors.insert(list.errors.end(), crawled.errors.begin(), crawled.errors.end());
        return list;
    }

    // Local packages by their .PKGINFO, or (--from-list) names and URLs by file name.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        std::vector<Entry> entries;
        kbuild::ReleaseList unplaced;
        std::set<std::string> seen;
        const std::string arch = kbuild::pacman::pacman_arch(request.arch);
        for (const auto& file : request.files) {
            if (!seen.insert(file).second) {
                unplaced.unclaimed.push_back({file, "listed more than once"});
                continue;
            }
            std::optional<Entry> e;
            try {
                e = request.names_only ? kbuild::pacman::parse_file_name(file)
                                       : kbuild::pacman::read_package_info(file);
            } catch (const Error& error) {
                unplaced.errors.emplace_back(error.what());
                continue;
            }
            if (!e) {
                unplaced.unclaimed.push_back({file, "names no <name>-<pkgver>-<pkgrel>-<arch>.pkg.tar.* file"});
                continue;
            }
            if (!headers_package(e->name)) {
                unplaced.unclaimed.push_back(
                    {file, e->name + " is not a kernel headers package (linux[-lts|-zen|-hardened]-headers)"});
                continue;
            }
            if (e->arch != arch) {
                unplaced.unclaimed.push_back({file, "an " + e->arch + " package, not " + request.arch + "'s " + arch});
                continue;
            }
            e->file.name = e->name;
            (request.names_only ? e->file.url : e->file.path) = file;
            entries.push_back(std::move(*e));
        }
        kbuild::CrawlRequest as{request.distro, request.arch};
        kbuild::ReleaseList list = group(entries, as);
        for (const auto& u : list.unclaimed) unplaced.unclaimed.push_back(u);
        list.unclaimed = std::move(unplaced.unclaimed);
        list.errors.insert(list.errors.end(), unplaced.errors.begin(), unplaced.errors.end());
        return list;
    }

    // Each package's signature checked, its data extracted; the tree must be the release's.
    kbuild::UnpackResult unpack(const kbuild::UnpackRequest& request) {
        const kbuild::UnpackResult result = kbuild::pacman::unpack(host_, request);
        const fs::path modules = fs::path(result.root) / "usr/lib/modules";
        if (fs::is_directory(modules / request.release.release / "build")) return result;
        std::string held;
        if (fs::is_directory(modules))
            for (const auto& dir : fs::directory_iterator(modules))
                held += (held.empty() ? "" : ", ") + dir.path().filename().string();
        const std::string package =
            request.release.packages.empty() ? "the package" : request.release.packages[0].where();
        throw Error(package + ": holds no usr/lib/modules/" + request.release.release + "/build (" +
                    (held.empty() ? "no usr/lib/modules at all" : "it holds usr/lib/modules/" + held) +
                    "): not the kernel its name and version say");
    }

    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        const fs::path dir = fs::path(request.root) / "usr/lib/modules" / request.release / "build";
        if (!fs::is_directory(dir)) throw Error(dir.string() + ": missing (no headers for " + request.release + ")");
        return {dir.string()};
    }

    int compare_releases(const kbuild::Release& a, const kbuild::Release& b) {
        return kbuild::pacman::compare_versions(version_of(a.release), version_of(b.release));
    }

private:
    // One release per kernel; the same release again (another repository or mirror, another
    // file) is unclaimed, naming the one taken.
    static kbuild::ReleaseList group(const std::vector<Entry>& entries, const kbuild::CrawlRequest& request) {
        kbuild::ReleaseList list;
        std::map<std::string, std::string> taken;
        for (const auto& e : entries) {
            std::string release;
            try {
                release = release_of(e);
            } catch (const Error& error) {
                list.errors.emplace_back(error.what());
                continue;
            }
            const auto [at, added] = taken.emplace(release, e.file.where());
            if (!added) {
                if (at->second != e.file.where())
                    list.unclaimed.push_back({e.file.where(), "the same kernel as " + at->second});
                continue;
            }
            kbuild::Release r;
            r.release = release;
            r.kernelversion = "1";  // Arch's `uname -v` is #1 SMP PREEMPT_DYNAMIC <date>
            r.distro = request.distro;
            r.arch = request.arch;
            r.target = "arch";
            r.packages = {e.file};
            list.releases.push_back(std::move(r));
        }
        return list;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Arch, "arch", "0.1.0", "", "arch")
