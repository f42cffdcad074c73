#include <kbuild/deb_archive.hpp>
#include <kbuild/digest.hpp>

#include "repo_util.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild::deb {
namespace {

using detail::read_text;
using detail::trim_slash;

Json binary_to_json(const Binary& b) {
    Json depends = Json::array();
    for (const auto& group : b.depends) {
        Json alternatives = Json::array();
        for (const auto& r : group) alternatives.push_back({r.name, r.op, r.version});
        depends.push_back(alternatives);
    }
    return {{"name", b.name}, {"version", b.version}, {"arch", b.arch}, {"depends", depends}, {"file", b.file}};
}

Binary binary_from_json(const Json& j) {
    Binary b{j.at("name"), j.at("version"), j.at("arch")};
    for (const auto& group : j.at("depends")) {
        b.depends.emplace_back();
        for (const auto& r : group) b.depends.back().push_back({r.at(0), r.at(1), r.at(2)});
    }
    b.file = j.at("file").get<Package>();
    return b;
}

Binary binary_from_paragraph(const Paragraph& p) {
    Binary b{std::string(p.get("Package")), std::string(p.get("Version")), std::string(p.get("Architecture"))};
    if (b.arch == "all") b.arch.clear();
    b.depends = parse_relations(p.get("Depends"));
    b.file.name = b.name;
    return b;
}

// The wanted packages of one Packages index, which the host fetched and checked. URLs are
// left relative to the mirror (the index's Filename): one index may be on several mirrors.
std::vector<Binary> read_index(const std::string& path, const NameFilter& wanted) {
    std::vector<Binary> out;
    read_paragraphs(path, [&](const Paragraph& p) {
        if (!wanted(p.get("Package"))) return;
        Binary b = binary_from_paragraph(p);
        b.file.url = std::string(p.get("Filename"));
        b.file.sha256 = std::string(p.get("SHA256"));
        const std::string size(p.get("Size"));
        b.file.size = size.empty() ? -1 : std::stoll(size);
        out.push_back(std::move(b));
    });
    return out;
}

// What was read from an index is kept in the plugin's cache under the index's digest, so a
// later crawl of an unchanged suite reads a few kilobytes instead of decompressing megabytes.
// The filter is the plugin's own and fixed, so the cache is too. (v2: URLs kept relative.)
std::vector<Binary> read_index_cached(const Host& host, const std::string& base, const std::string& url,
                                      const IndexFile& index, const NameFilter& wanted) {
    const std::string key = index.sha256.empty() ? "sha512-" + index.sha512 : index.sha256;
    const fs::path cached = fs::path(host.cache_dir()) / "indexes" / (key + ".v2.json");
    const Json saved = detail::load_cached(cached);
    std::vector<Binary> found;
    if (saved.is_array()) {
        for (const auto& j : saved) found.push_back(binary_from_json(j));
    } else {
        Package index_file{"Packages.xz", url, "", index.sha256, index.size};
        index_file.sha512 = index.sha512;
        const FetchedFile packages = host.fetch(index_file);
        found = read_index(packages.path, wanted);
        Json list = Json::array();
        for (const auto& b : found) list.push_back(binary_to_json(b));
        detail::save_cached(cached, list, url);
    }
    for (auto& b : found) b.file.url = base + "/" + b.file.url;
    return found;
}

// Refuses a Release that is past its Valid-Until, or older than the newest one trusted before
// from the same place (a mirror rolled back, or one replaying an old signed Release); then
// remembers its Date as the one trusted.
void check_freshness(const Host& host, const std::string& url, const ReleaseFile& release) {
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    if (!release.valid_until.empty()) {
        const auto until = release_time(release.valid_until);
        if (!until) throw Error(url + ": Valid-Until '" + release.valid_until + "' is not a date");
        if (*until < now) throw Error(url + ": expired (Valid-Until " + release.valid_until + ")");
    }
    const auto date = release_time(release.date);
    if (!date) {
        if (release.date.empty()) return;  // nothing to compare: the signature still holds
        throw Error(url + ": Date '" + release.date + "' is not a date");
    }
    const fs::path record = fs::path(host.cache_dir()) / "trusted-dates" / (sha256_text(url) + ".json");
    const Json trusted = detail::load_cached(record);
    if (trusted.is_array() && trusted.size() == 2 && trusted[1].is_number_integer()) {
        if (*date < trusted[1].get<std::int64_t>())
            throw Error(url + ": Date " + release.date + " is older than the one trusted before (" +
                        trusted[0].get<std::string>() + ")");
        if (*date == trusted[1].get<std::int64_t>()) return;
    }
    detail::save_cached(record, Json::array({release.date, *date}), url);
}

// The suite's Release, verified: InRelease (clearsigned) first, else Release and Release.gpg.
// nullopt when the mirror has neither (it does not carry the suite); throws when what it has
// is not signed by a trusted key, is stale, or was rolled back.
std::optional<ReleaseFile> verified_release(Host& host, const std::string& dir, std::string& miss) {
    VerifyRequest request;
    try {
        request.url = dir + "InRelease";
        request.file = host.fetch({"InRelease", request.url}).path;
        request.inline_signed = true;
    } catch (const Error& in_release) {
        try {
            request.url = dir + "Release";
            request.file = host.fetch({"Release", request.url}).path;
        } catch (const Error& e) {
            // Each mirror holds only some suites (security lives apart): skip quietly.
            host.debug(std::string(in_release.what()) + "; " + e.what() + "; skipped");
            if (miss.empty()) miss = e.what();
            return std::nullopt;
        }
        try {
            request.signature = host.fetch({"Release.gpg", dir + "Release.gpg"}).path;
        } catch (const Error& e) {
            host.debug(std::string(e.what()) + ": Release has no detached signature");
        }
    }
    const Verified verified = host.verify(request);
    ReleaseFile release = parse_release(read_text(verified.path));
    if (!verified.signed_by.empty()) check_freshness(host, request.url, release);
    host.debug(request.url + (verified.signed_by.empty() ? ": not verified (" + verified.unverified + ")"
                                                         : ": signed by " + verified.signed_by));
    return release;
}

}  // namespace

bool satisfies(const Binary& b, const Relation& r) {
    if (b.name != r.name) return false;
    if (r.op.empty()) return true;
    const int order = compare_versions(b.version, r.version);
    if (r.op == "=") return order == 0;
    if (r.op == ">=") return order >= 0;
    if (r.op == "<=") return order <= 0;
    if (r.op == ">>") return order > 0;
    if (r.op == "<<") return order < 0;
    return false;
}

std::string describe(const Relation& r) {
    return r.op.empty() ? r.name : r.name + " (" + r.op + " " + r.version + ")";
}

std::optional<Binary> binary_from_file_name(const std::string& file) {
    static const std::regex deb_name(R"(^([a-z0-9][a-z0-9+.-]*)_([^_]+)_([a-z0-9-]+)\.deb$)");
    std::smatch m;
    const std::string base = fs::path(file).filename().string();
    if (!std::regex_match(base, m, deb_name)) return std::nullopt;
    Binary b{m[1], m[2], m[3]};
    const size_t escaped = b.version.find("%3a");
    if (escaped != std::string::npos) b.version.replace(escaped, 3, ":");
    if (b.arch == "all") b.arch.clear();
    b.file.name = b.name;
    return b;
}

std::string pool_source(const std::string& file) {
    static const std::regex in_pool(R"((?:^|/)pool/[^/]+/[^/]+/([^/]+)/[^/]+$)");
    std::smatch m;
    return std::regex_search(file, m, in_pool) ? std::string(m[1]) : std::string();
}

Binary binary_from_control(Host& host, const std::string& file) {
    const fs::path dest = fs::path(host.cache_dir()) / "control" / sha256_text(file).substr(0, 16);
    std::error_code ec;
    fs::remove_all(dest, ec);
    host.extract({file, dest.string(), "control"});
    std::optional<Binary> found;
    read_paragraphs((dest / "control").string(), [&](const Paragraph& p) {
        if (!found) found = binary_from_paragraph(p);
    });
    fs::remove_all(dest, ec);
    if (!found || found->name.empty()) throw Error(file + ": control file has no Package");
    return *found;
}

Crawled crawl_archive(Host& host, const ArchiveQuery& query, const NameFilter& wanted) {
    if (query.mirrors.empty()) throw Error("no mirror to crawl (give --mirror URL)");
    Crawled crawled;
    int indexes = 0;
    std::string first_miss;  // why the first Release could not be had: said when nothing was read
    for (const auto& suite : query.suites) {
        for (const auto& mirror : query.mirrors) {
            const std::string base = trim_slash(mirror);
            const std::string dir = base + "/dists/" + suite + "/";
            std::optional<ReleaseFile> found;
            try {
                found = verified_release(host, dir, first_miss);
            } catch (const Error& e) {
                // Nothing of a suite that fails its checks is used; other suites still are.
                crawled.errors.push_back(e.what());
                continue;
            }
            if (!found) continue;
            const ReleaseFile& release = *found;
            std::vector<std::string> arches{query.arch};
            if (!query.host_arch.empty() && query.host_arch != query.arch) arches.push_back(query.host_arch);
            for (const auto& arch : arches)
                for (const auto& component : query.components) {
                    const std::string index = component + "/binary-" + arch + "/Packages.xz";
                    const auto entry = release.files.find(index);
                    if (entry == release.files.end()) {
                        host.warn(dir + "Release lists no " + index + "; skipped");
                        continue;
                    }
                    const std::string url = base + "/dists/" + suite + "/" + index;
                    try {
                        auto found = read_index_cached(host, base, url, entry->second, wanted);
                        for (auto& b : found) b.suite = suite;
                        crawled.binaries.insert(crawled.binaries.end(), std::make_move_iterator(found.begin()),
                                                std::make_move_iterator(found.end()));
                        ++indexes;
                        host.debug("read " + url);
                    } catch (const Error& e) {
                        crawled.errors.push_back(e.what());
                    }
                }
        }
    }
    if (indexes == 0)
        throw detail::nothing_read("no Packages index could be read for suites", query.suites, crawled.errors,
                                   first_miss);
    return crawled;
}

BatchRead read_batch(Host& host, const BatchRequest& request, const NameFilter& wanted) {
    BatchRead batch;
    std::set<std::string> seen;
    for (const auto& file : request.files) {
        if (!seen.insert(file).second) {
            batch.unclaimed.push_back({file, "listed more than once"});
            continue;
        }
        std::optional<Binary> b;
        if (request.names_only) {
            b = binary_from_file_name(file);
        } else {
            try {
                b = binary_from_control(host, file);
            } catch (const Error& e) {
                batch.errors.push_back(e.what());
                continue;
            }
        }
        if (!b) {
            batch.unclaimed.push_back({file, "not a .deb named name_version_arch.deb"});
            continue;
        }
        if (!wanted(b->name)) {
            batch.unclaimed.push_back({file, b->name + " is not a kernel headers package"});
            continue;
        }
        (request.names_only ? b->file.url : b->file.path) = file;
        batch.binaries.push_back(std::move(*b));
    }
    return batch;
}

namespace {

// Whether `candidate` fits the headers better than `chosen`: the headers' own version first,
// then one that runs where the headers do, then the newer.
bool fits_better(const Binary& candidate, const Binary& chosen, const Binary& headers, const PairingRules& rules) {
    const auto same_version = [&](const Binary& b) { return b.version == headers.version; };
    const auto same_home = [&](const Binary& b) { return rules.runs_on && rules.runs_on(b) == rules.runs_on(headers); };
    if (same_version(candidate) != same_version(chosen)) return same_version(candidate);
    if (same_home(candidate) != same_home(chosen)) return same_home(candidate);
    return compare_versions(candidate.version, chosen.version) > 0;
}

// The best package of `arch` satisfying one relation; nullptr when none does.
const Binary* best_for(const Relation& relation, const std::vector<const Binary*>& named, const Binary& headers,
                       const std::string& arch, const PairingRules& rules) {
    const Binary* chosen = nullptr;
    for (const Binary* b : named) {
        if (!satisfies(*b, relation) || (!b->arch.empty() && b->arch != arch)) continue;
        if (!chosen || fits_better(*b, *chosen, headers, rules)) chosen = b;
    }
    return chosen;
}

// Headers whose guessed Depends two packages satisfy: not paired, named with the packages.
struct Undecided {
    const Binary* headers;
    std::vector<const Binary*> candidates;
};

void report_undecided(ReleaseList& list, const std::vector<Undecided>& undecided) {
    std::set<std::string> used;
    for (const auto& r : list.releases)
        for (const auto& p : r.packages) used.insert(p.where());
    std::set<std::string> named;
    for (const auto& u : undecided) {
        std::string names;
        for (size_t i = 0; i < u.candidates.size(); ++i)
            names += (i == 0 ? "" : i + 1 == u.candidates.size() ? " and " : ", ") + u.candidates[i]->name;
        list.unclaimed.push_back(
            {u.headers->file.where(), "which of " + names + " (" + u.headers->version +
                                          ") it needs, file names alone cannot tell: list URLs with their pool "
                                          "directories, or the .deb files"});
        for (const Binary* c : u.candidates) {
            if (used.count(c->file.where()) || !named.insert(c->file.where()).second) continue;
            list.unclaimed.push_back({c->file.where(), "one of the packages " + u.headers->name +
                                                           " may need (file names alone cannot tell which)"});
        }
    }
}

}  // namespace

ReleaseList pair(const std::vector<Binary>& binaries, const std::string& distro, const std::string& arch,
                 const PairingRules& rules, const std::string& host_arch) {
    // Cross-building, the packages of programs the build runs (host_tools) are the build host's.
    const bool cross = !host_arch.empty() && host_arch != arch && rules.host_tools;
    const auto arch_for = [&](const Relation& r) -> const std::string& {
        return cross && rules.host_tools(r.name) ? host_arch : arch;
    };
    std::map<std::string, std::vector<const Binary*>> by_name;
    for (const auto& b : binaries) by_name[b.name].push_back(&b);

    // The newest version of each headers package and variant, when several indexes list it.
    std::map<std::pair<std::string, std::string>, const Binary*> headers;
    for (const auto& b : binaries) {
        if (!b.arch.empty() && b.arch != arch) continue;
        const std::string release = rules.release_of(b);
        if (release.empty()) continue;
        auto& best = headers[{release, rules.variant_of ? rules.variant_of(b) : ""}];
        if (!best || compare_versions(b.version, best->version) > 0) best = &b;
    }

    ReleaseList list;
    std::vector<Undecided> undecided;
    for (const auto& [key, header] : headers) {
        const std::string& release_name = key.first;
        Release release;
        release.release = release_name;
        release.variant = key.second;
        release.distro = distro;
        release.arch = arch;
        release.packages = {header->file};
        if (rules.describe_release) rules.describe_release(release, *header);
        const bool from_name = header->depends.empty();
        const bool guessed = from_name && rules.guessed_depends && rules.guessed_depends(*header);
        const auto depends = from_name ? (rules.depends_from_name ? rules.depends_from_name(*header, release_name)
                                                                  : std::vector<std::vector<Relation>>{})
                                       : header->depends;
        bool decided = true;
        for (const auto& group : depends) {
            if (rules.needed && std::none_of(group.begin(), group.end(), rules.needed)) continue;
            const Binary* chosen = nullptr;
            std::vector<const Binary*> fits;  // each alternative's best, for guesses
            for (const auto& relation : group) {
                const Binary* best = best_for(relation, by_name[relation.name], *header, arch_for(relation), rules);
                if (best) fits.push_back(best);
                if (!chosen) chosen = best;
                if (chosen && !guessed) break;
            }
            if (fits.size() > 1) {
                undecided.push_back({header, fits});
                decided = false;
            } else if (chosen) {
                release.packages.push_back(chosen->file);
            } else if (release.unavailable.empty()) {
                std::string wanted;
                for (const auto& r : group)
                    wanted += (wanted.empty() ? "" : " | ") + describe(r) +
                              (arch_for(r) == arch ? "" : " of " + host_arch + ", the build host's");
                release.unavailable =
                    header->name + " " + header->version + " needs " + wanted + ", which no index or list holds";
            }
        }
        if (decided) list.releases.push_back(std::move(release));
    }
    report_undecided(list, undecided);
    return list;
}

void claim_leftovers(ReleaseList& list, const BatchRead& batch) {
    std::set<std::string> used, named;
    for (const auto& r : list.releases)
        for (const auto& p : r.packages) used.insert(p.where());
    for (const auto& u : list.unclaimed) named.insert(u.file);  // pair said why already
    // name_version and name -> where a release took it from: a second copy, or an older upload
    // of a package, is named with the one that was taken.
    std::map<std::string, std::string> taken;
    for (const auto& b : batch.binaries) {
        if (!used.count(b.file.where())) continue;
        taken.emplace(b.name + "_" + b.version, b.file.where());
        taken.emplace(b.name, b.file.where());
    }
    list.unclaimed.insert(list.unclaimed.end(), batch.unclaimed.begin(), batch.unclaimed.end());
    list.errors.insert(list.errors.end(), batch.errors.begin(), batch.errors.end());
    for (const auto& b : batch.binaries) {
        if (used.count(b.file.where()) || named.count(b.file.where())) continue;
        std::string reason = "no headers package in the batch needs it";
        if (const auto copy = taken.find(b.name + "_" + b.version); copy != taken.end())
            reason = "the same package as " + copy->second;
        else if (const auto newer = taken.find(b.name); newer != taken.end())
            reason = "an older upload than " + newer->second;
        list.unclaimed.push_back({b.file.where(), reason});
    }
}

namespace {

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool debian_kernel_package(std::string_view name) {
    return starts_with(name, "linux-headers-") || starts_with(name, "linux-kbuild-");
}

bool debian_host_tools(std::string_view name) {
    return name.substr(0, 13) == "linux-kbuild-";
}

std::string debian_headers_release(const Binary& headers) {
    static const std::regex concrete(R"(^linux-headers-(\d+\.\d+[^ ]*)$)");
    std::smatch m;
    if (!std::regex_match(headers.name, m, concrete)) return {};
    const std::string release = m[1];
    if (release.find("-common") != std::string::npos) return {};
    auto names_common = [](const Relation& r) {
        return starts_with(r.name, "linux-headers-") && r.name.find("-common") != std::string::npos;
    };
    bool common = false;
    for (const auto& group : headers.depends) common |= std::any_of(group.begin(), group.end(), names_common);
    if (!headers.depends.empty() && !common) return {};
    return release;
}

FamilyPlugin::FamilyPlugin(Host& host, NameFilter wanted, PairingRules rules)
    : host_(host), wanted_(std::move(wanted)), rules_(std::move(rules)) {
    if (!rules_.release_of) throw Error("deb::PairingRules: release_of is required");
    if (!rules_.needed) rules_.needed = [wanted = wanted_](const Relation& r) { return wanted(r.name); };
}

ReleaseList FamilyPlugin::batch_packages(const BatchRequest& request) {
    const BatchRead batch = read_batch(host_, request, wanted_);
    ReleaseList list = pair(batch.binaries, request.distro, request.arch, rules_, request.host_arch);
    claim_leftovers(list, batch);
    return list;
}

ReleaseList FamilyPlugin::crawl_and_pair(const CrawlRequest& request, const ArchiveQuery& query) {
    ArchiveQuery both = query;
    // Cross-building: the build host's tools too, from its indexes beside the target's.
    if (rules_.host_tools) both.host_arch = request.host_arch;
    Crawled crawled = crawl_archive(host_, both, wanted_);
    ReleaseList list = pair(crawled.binaries, request.distro, request.arch, rules_, request.host_arch);
    list.errors = crawled.errors;
    return list;
}

}  // namespace kbuild::deb
