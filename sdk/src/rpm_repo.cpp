#include <kbuild/digest.hpp>

#include <kbuild/listing.hpp>
#include <kbuild/options.hpp>
#include <kbuild/rpm.hpp>
#include <kbuild/rpm_repo.hpp>
#include "repo_util.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild::rpm {
namespace {

using detail::read_text;
using detail::trim_slash;

// base + "/" + a relative location, with "." and ".." segments resolved (Amazon Linux's
// primary indexes point into ../../blobstore/).
std::string join_url(const std::string& base, const std::string& location) {
    const size_t scheme = base.find("://");
    const size_t path_start = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    const std::string origin = path_start == std::string::npos ? base : base.substr(0, path_start);
    std::string path = path_start == std::string::npos ? "" : base.substr(path_start);
    std::vector<std::string> segments;
    std::istringstream in(trim_slash(path) + "/" + location);
    for (std::string segment; std::getline(in, segment, '/');) {
        if (segment.empty() || segment == ".") continue;
        if (segment == "..") {
            if (!segments.empty()) segments.pop_back();
            continue;
        }
        segments.push_back(segment);
    }
    std::string out = origin;
    for (const auto& s : segments) out += "/" + s;
    return out;
}

Binary binary_of(const rpm::Package& p) {
    Binary b{p.name, p.epoch, p.version, p.release, p.arch};
    b.file.name = p.name;
    return b;
}

Json binary_to_json(const Binary& b) {
    return {{"name", b.name},       {"epoch", b.epoch}, {"version", b.version},
            {"release", b.release}, {"arch", b.arch},   {"file", b.file}};
}

Binary binary_from_json(const Json& j) {
    Binary b{j.at("name"), j.at("epoch"), j.at("version"), j.at("release"), j.at("arch")};
    b.file = j.at("file").get<kbuild::Package>();
    return b;
}

// The repository's base URL: the mirror and path, or the first URL its mirror.list names.
std::optional<std::string> repository_base(const Host& host, const std::string& mirror, const std::string& repo,
                                           bool mirror_list, std::string& miss) {
    const std::string where = trim_slash(mirror) + "/" + repo;
    if (!mirror_list) return trim_slash(where);
    try {
        const FetchedFile list = host.fetch({"mirror.list", where});
        std::istringstream in(read_text(list.path));
        for (std::string line; std::getline(in, line);) {
            line.erase(0, line.find_first_not_of(" \t\r"));
            line.erase(line.find_last_not_of(" \t\r") + 1);
            if (!line.empty() && line.front() != '#') return trim_slash(line);
        }
        throw Error(where + ": names no repository");
    } catch (const Error& e) {
        host.debug(std::string(e.what()) + "; skipped");
        if (miss.empty()) miss = e.what();
        return std::nullopt;
    }
}

// The wanted packages of one repository's primary index, kept in the plugin's cache under the
// index's checksum with locations relative to the repository.
std::vector<Binary> read_repository(const Host& host, const std::string& base, const std::string& repomd_path,
                                    const NameFilter& wanted) {
    const std::vector<RepoData> repomd = parse_repomd(read_text(repomd_path));
    const RepoData* primary = find(repomd, "primary");
    if (primary == nullptr) throw Error(base + "/repodata/repomd.xml: lists no primary index");
    const std::string url = base + "/" + primary->location;

    const fs::path cached = fs::path(host.cache_dir()) / "rpm-indexes" / (primary->checksum + ".json");
    const Json saved = detail::load_cached(cached);
    std::vector<Binary> found;
    if (saved.is_array()) {
        for (const auto& j : saved) found.push_back(binary_from_json(j));
    } else {
        // sha256 is checked by the host as it downloads; another algorithm here.
        const bool sha256 = primary->checksum_type == "sha256";
        const FetchedFile index = host.fetch({"primary", url, "", sha256 ? primary->checksum : "", primary->size});
        if (!sha256) {
            const std::string digest = file_digest(index.path, primary->checksum_type);
            if (digest != primary->checksum)
                throw Error(url + ": " + primary->checksum_type + " is " + digest + ", repomd.xml says " +
                            primary->checksum);
        }
        read_primary(index.path, wanted, [&](const rpm::Package& p) {
            Binary b = binary_of(p);
            b.file.url = p.location;
            b.file.sha256 = p.checksum_type == "sha256" ? p.checksum : "";
            b.file.size = p.size;
            found.push_back(std::move(b));
        });
        Json list = Json::array();
        for (const auto& b : found) list.push_back(binary_to_json(b));
        detail::save_cached(cached, list, url);
    }
    for (auto& b : found) b.file.url = join_url(base, b.file.url);
    return found;
}

// repomd.xml, checked against its detached repomd.xml.asc where the repository publishes one.
// With no key configured for the distro it is used unverified (the host records it); with one,
// a signature that fails is the repository's error. Few distributions sign their metadata
// (Fedora's and CentOS's repositories do not): one that publishes none is used unverified, and
// its packages' own signatures are checked as they are unpacked.
std::string verified_repomd(const Host& host, const std::string& base, const std::string& repomd_path) {
    VerifyRequest request;
    request.file = repomd_path;
    request.url = base + "/repodata/repomd.xml";
    request.required = false;
    request.signature_optional = true;
    try {
        request.signature = host.fetch({"repomd.xml.asc", request.url + ".asc"}).path;
    } catch (const Error& e) {
        host.debug(std::string(e.what()) + ": repomd.xml has no detached signature");
    }
    const Verified verified = host.verify(request);
    host.debug(request.url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                         : ": signed by " + verified.signed_by));
    return verified.path;
}

}  // namespace

std::string kernel_release(const Binary& b) {
    return b.version + "-" + b.release + "." + b.arch;
}

std::string rpm_arch(const std::string& arch) {
    if (arch == "amd64") return "x86_64";
    if (arch == "arm64") return "aarch64";
    return arch;
}

bool kernel_devel_package(std::string_view name) {
    static const std::regex shape(R"(^kernel(\d+\.\d+)?(-[a-z0-9]+)*-devel$)");
    return std::regex_match(name.begin(), name.end(), shape);
}

Crawled crawl_repos(Host& host, const RepoQuery& query, const NameFilter& wanted) {
    if (query.mirrors.empty()) throw Error("no mirror to crawl (give --mirror URL)");
    Crawled crawled;
    int read = 0;
    std::string miss;
    for (const auto& repo : query.repos) {
        for (const auto& mirror : query.mirrors) {
            const auto base = repository_base(host, mirror, repo, query.mirror_lists, miss);
            if (!base) continue;
            // No repomd.xml: the mirror does not hold this repository. Anything after that (a
            // primary index failing its checksum) is an error of the crawl.
            FetchedFile repomd;
            try {
                repomd = host.fetch({"repomd.xml", *base + "/repodata/repomd.xml"});
            } catch (const Error& e) {
                host.debug(std::string(e.what()) + "; skipped");
                if (miss.empty()) miss = e.what();
                continue;
            }
            std::vector<Binary> found;
            try {
                found = read_repository(host, *base, verified_repomd(host, *base, repomd.path), wanted);
            } catch (const Error& e) {
                crawled.errors.push_back(e.what());
                continue;
            }
            ++read;
            host.debug("read " + *base);
            for (auto& b : found)
                if (b.arch == query.arch || b.arch == "noarch") crawled.binaries.push_back(std::move(b));
        }
    }
    if (read == 0) throw detail::nothing_read("no repository could be read of", query.repos, crawled.errors, miss);
    return crawled;
}

Crawled crawl_build_system(Host& host, const std::vector<std::string>& mirrors, const std::string& arch,
                           const std::vector<std::string>& dist_tags) {
    Crawled crawled;
    bool listed = false;
    const std::set<std::string> wanted(dist_tags.begin(), dist_tags.end());
    // A directory that cannot be listed is an error of the result; the others are still read.
    auto listing = [&](const std::string& url) -> std::optional<std::vector<std::string>> {
        try {
            return list_directory(host, url);
        } catch (const Error& e) {
            crawled.errors.push_back(e.what());
            return std::nullopt;
        }
    };
    for (const auto& mirror : mirrors) {
        const std::string top = trim_slash(mirror) + "/packages/kernel/";
        const auto versions = listing(top);
        listed |= versions.has_value();
        for (const auto& version : versions.value_or(std::vector<std::string>{})) {
            if (version.back() != '/') continue;
            const std::string v = version.substr(0, version.size() - 1);
            for (const auto& release : listing(top + version).value_or(std::vector<std::string>{})) {
                if (release.back() != '/') continue;
                const std::string r = release.substr(0, release.size() - 1);
                const size_t dot = r.rfind('.');
                if (dot == std::string::npos || !wanted.count(r.substr(dot + 1))) continue;
                Binary b{"kernel-devel", "", v, r, arch};
                b.file.name = b.name;
                b.file.url = top + version + release + arch + "/kernel-devel-" + v + "-" + r + "." + arch + ".rpm";
                crawled.binaries.push_back(std::move(b));
            }
        }
    }
    if (!listed) throw Error(crawled.errors.empty() ? "no mirror to crawl" : crawled.errors.front());
    return crawled;
}

ReleaseList group(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                  const std::function<std::string(const Binary&)>& release_of,
                  const std::function<void(Release&, const Binary&)>& describe) {
    ReleaseList list;
    std::set<std::string> named;
    for (const auto& b : binaries) {
        std::string name = release_of(b);
        if (name.empty() || !named.insert(name).second) continue;
        Release release;
        release.release = std::move(name);
        release.distro = distro;
        release.arch = arch;
        release.packages = {b.file};
        describe(release, b);
        list.releases.push_back(std::move(release));
    }
    return list;
}

ReleaseList group(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                  const std::function<void(Release&, const Binary&)>& describe) {
    return group(binaries, distro, arch, kernel_release, describe);
}

std::string without_last_part(const std::string& release) {
    const size_t dot = release.rfind('.');
    return dot == std::string::npos ? release : release.substr(0, dot);
}

Description FamilyPlugin::describe() const {
    std::string defaults;
    for (const auto& [distro, repos] : repositories_.defaults)
        defaults += (defaults.empty() ? "" : "; ") + distro + ": " + repos;
    Description description{{{"repos", repositories_.help, defaults}}, {}};
    // Each distro is its own target: what describe_release names a release's target.
    for (const auto& entry : repositories_.defaults) description.targets.push_back({entry.first, entry.first});
    return description;
}

int FamilyPlugin::compare_releases(const Release& a, const Release& b) const {
    // A kernel release is version-release.arch: compare_evr splits it at the last '-'.
    return compare_evr(a.release, b.release);
}

ReleaseList FamilyPlugin::crawl(const CrawlRequest& request) {
    if (request.mirrors.empty()) throw Error("no " + request.distro + " mirror to crawl (give --mirror URL)");
    RepoQuery query;
    query.mirrors = request.mirrors;
    query.mirror_lists = repositories_.mirror_lists;
    query.arch = rpm_arch(request.arch);
    const auto fallback = repositories_.defaults.find(request.distro);
    const std::string repos =
        option(request.options, "repos", fallback == repositories_.defaults.end() ? "" : fallback->second);
    for (std::string repo : split_list(repos)) {
        for (size_t at; (at = repo.find("{arch}")) != std::string::npos;) repo.replace(at, 6, query.arch);
        query.repos.push_back(repo);
    }
    if (query.repos.empty()) throw Error("no repositories for " + request.distro + " (give --option repos=...)");

    const Crawled crawled = crawl_repos(host_, query, wanted_);
    ReleaseList list = group_with_companions(crawled.binaries, request.distro, request.arch);
    list.errors = crawled.errors;
    return list;
}

ReleaseList FamilyPlugin::group_with_companions(const std::vector<Binary>& binaries, const std::string& distro,
                                                const std::string& arch) const {
    std::map<std::string, const Binary*> kernels;
    ReleaseList list = group(
        binaries, distro, arch, [this](const Binary& b) { return release_of(b); },
        [&](Release& r, const Binary& b) {
            describe_release(r, b);
            kernels[r.release] = &b;
        });
    for (auto& r : list.releases) add_companions(r, *kernels[r.release], binaries);
    return list;
}

UnpackResult FamilyPlugin::unpack(const UnpackRequest& request) {
    for (const auto& package : request.release.packages) {
        // The package's own signature, before anything of it is unpacked: required when a key
        // is configured for the distro, else the package is used unverified (and recorded).
        VerifyRequest check;
        check.kind = "rpm";
        check.file = package.path;
        check.url = package.where();
        check.package = package.where();
        check.required = false;
        const Verified verified = host_.verify(check);
        host_.debug(check.url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                            : ": signed by key ID " + verified.signed_by));
        host_.extract({package.path, request.dest, "data"});
    }
    return {request.dest};
}

void FamilyPlugin::describe_release(Release& release, const Binary&) const {
    release.kernelversion = "1";
    release.target = release.distro;
}

ReleaseList FamilyPlugin::batch_packages(const BatchRequest& request) {
    std::vector<Binary> binaries;
    ReleaseList unplaced;
    std::set<std::string> seen;
    for (const auto& file : request.files) {
        if (!seen.insert(file).second) {
            unplaced.unclaimed.push_back({file, "listed more than once"});
            continue;
        }
        std::optional<rpm::Package> p;
        if (request.names_only) {
            p = parse_file_name(file);
            if (!p) {
                unplaced.unclaimed.push_back({file, "names no name-version-release.arch.rpm file"});
                continue;
            }
        } else {
            try {
                p = read_header(file);
            } catch (const Error& e) {
                unplaced.errors.push_back(e.what());
                continue;
            }
        }
        if (!wanted_(p->name)) {
            unplaced.unclaimed.push_back({file, p->name + " is not a kernel-devel package"});
            continue;
        }
        if (const std::string arch = rpm_arch(request.arch); p->arch != arch && p->arch != "noarch") {
            unplaced.unclaimed.push_back({file, "an " + p->arch + " package, not " + request.arch + "'s " + arch});
            continue;
        }
        Binary b = binary_of(*p);
        (request.names_only ? b.file.url : b.file.path) = file;
        binaries.push_back(std::move(b));
    }
    ReleaseList list = group_with_companions(binaries, request.distro, request.arch);
    // What no release took is named: a second copy of a package (another repository, another
    // URL) with the one taken, a companion no listed kernel uses with why.
    auto nevra = [](const Binary& b) {
        return b.name + "-" + b.epoch + ":" + b.version + "-" + b.release + "." + b.arch;
    };
    std::set<std::string> used;
    std::map<std::string, std::string> taken;  // a used package's name-epoch:version-release.arch -> where
    for (const auto& r : list.releases)
        for (const auto& p : r.packages) used.insert(p.where());
    for (const auto& b : binaries)
        if (used.count(b.file.where())) taken.emplace(nevra(b), b.file.where());
    for (const auto& b : binaries) {
        const std::string where = b.file.where();
        if (used.count(where)) continue;
        const auto first = taken.find(nevra(b));
        if (first != taken.end())
            unplaced.unclaimed.push_back({where, "the same package as " + first->second});
        else if (release_of(b).empty())
            unplaced.unclaimed.push_back({where, "part of a kernel's tree, and no kernel listed here uses it"});
        else
            unplaced.unclaimed.push_back({where, "the same release as another package listed"});
    }
    list.unclaimed = std::move(unplaced.unclaimed);
    list.errors = std::move(unplaced.errors);
    return list;
}

}  // namespace kbuild::rpm
