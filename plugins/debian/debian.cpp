// Debian: kernels from a Debian archive's Packages indexes (crawl) or from .deb files and
// names (batch). A kernel release (`uname -r`, e.g. 6.1.0-50-amd64) needs three packages:
// linux-headers-<release>, its linux-headers-<abi>-common[-rt], and the linux-kbuild-* that
// holds the scripts the headers' symlinks point at.
#include <kbuild/deb.hpp>
#include <kbuild/digest.hpp>
#include <kbuild/plugin.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using kbuild::deb::Relation;

namespace {

const char* const kDefaultSuites =
    "bullseye,bullseye-updates,bullseye-security,bookworm,bookworm-updates,bookworm-security,"
    "trixie,trixie-updates,trixie-security";

// One binary package as an index, a control file or a file name describes it.
struct Candidate {
    std::string name, version, arch;
    std::vector<std::vector<Relation>> depends;  // empty when only the file name is known
    kbuild::Package file;
};

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, separator);)
        if (!item.empty()) out.push_back(item);
    return out;
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

bool names_common_package(const std::vector<std::vector<Relation>>& depends) {
    for (const auto& group : depends)
        for (const auto& r : group)
            if (r.name.rfind("linux-headers-", 0) == 0 && r.name.find("-common") != std::string::npos)
                return true;
    return false;
}

// "linux-headers-6.1.0-50-amd64" -> "6.1.0-50-amd64"; "" for common packages and for meta
// packages (linux-headers-6.1-amd64), which depend on a kernel's headers, not on a common one.
std::string release_of_headers(const Candidate& c) {
    static const std::regex concrete(R"(^linux-headers-(\d+\.\d+[^ ]*)$)");
    std::smatch m;
    if (!std::regex_match(c.name, m, concrete)) return {};
    const std::string release = m[1];
    if (release.find("-common") != std::string::npos) return {};
    if (!c.depends.empty() && !names_common_package(c.depends)) return {};
    return release;
}

// The Depends a headers package has when only its name is known (a URL list, a bare file):
// the common package of the same version and a kbuild package of at least that version.
std::vector<std::vector<Relation>> depends_from_name(const std::string& release,
                                                     const std::string& version) {
    static const std::regex shape(R"(^(\d+)\.(\d+)((?:\.\d+)?(?:\+[a-z0-9]+)?(?:-\d+)?)-(.+)$)");
    std::smatch m;
    if (!std::regex_match(release, m, shape)) return {};
    const std::string abi = std::string(m[1]) + "." + std::string(m[2]) + std::string(m[3]);
    const std::string series = std::string(m[1]) + "." + std::string(m[2]);
    const std::string flavour = m[4];
    const std::string common = "linux-headers-" + abi + "-common" + (starts_with(flavour, "rt-") ? "-rt" : "");
    const std::string upstream = abi.substr(0, abi.find('-'));
    std::vector<std::vector<Relation>> depends = {{{common, "=", version}},
                                                  {{"linux-kbuild-" + series, ">=", version}}};
    if (upstream != series) depends.back().push_back({"linux-kbuild-" + upstream, ">=", version});
    return depends;
}

bool satisfies(const Candidate& c, const Relation& r) {
    if (c.name != r.name) return false;
    if (r.op.empty()) return true;
    const int order = kbuild::deb::compare_versions(c.version, r.version);
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

// Pairs every concrete headers package of `arch` with the packages it needs. A needed package
// that is missing makes the release unavailable, with the package named.
kbuild::ReleaseList pair(const std::vector<Candidate>& candidates, const std::string& distro,
                         const std::string& arch) {
    std::map<std::string, std::vector<const Candidate*>> by_name;
    for (const auto& c : candidates) by_name[c.name].push_back(&c);

    // The newest version of each headers package, when several indexes list it.
    std::map<std::string, const Candidate*> headers;
    for (const auto& c : candidates) {
        const std::string release = release_of_headers(c);
        if (release.empty() || (c.arch != arch && !c.arch.empty())) continue;
        auto& best = headers[release];
        if (!best || kbuild::deb::compare_versions(c.version, best->version) > 0) best = &c;
    }

    kbuild::ReleaseList list;
    for (const auto& [release_name, header] : headers) {
        kbuild::Release release{release_name, "1", distro, arch, {header->file}, ""};
        auto depends = header->depends.empty() ? depends_from_name(release_name, header->version)
                                               : header->depends;
        for (const auto& group : depends) {
            // Only the header and kbuild packages are part of a module build.
            const bool needed = std::any_of(group.begin(), group.end(), [](const Relation& r) {
                return starts_with(r.name, "linux-headers-") || starts_with(r.name, "linux-kbuild-");
            });
            if (!needed) continue;
            const Candidate* chosen = nullptr;
            for (const auto& relation : group) {
                for (const Candidate* c : by_name[relation.name]) {
                    if (!satisfies(*c, relation)) continue;
                    // The same version as the headers first, else the newest that satisfies.
                    const bool same = c->version == header->version;
                    const bool chosen_same = chosen && chosen->version == header->version;
                    if (!chosen || (same && !chosen_same) ||
                        (same == chosen_same &&
                         kbuild::deb::compare_versions(c->version, chosen->version) > 0))
                        chosen = c;
                }
                if (chosen) break;
            }
            if (chosen) {
                release.packages.push_back(chosen->file);
            } else if (release.unavailable.empty()) {
                std::string wanted;
                for (const auto& r : group) wanted += (wanted.empty() ? "" : " | ") + describe(r);
                release.unavailable = header->name + " " + header->version + " needs " + wanted +
                                      ", which no index or list holds";
            }
        }
        list.releases.push_back(release);
    }
    return list;
}

// "pool/.../linux-headers-6.1.0-50-amd64_6.1.176-1_amd64.deb" -> name, version, arch.
std::optional<Candidate> candidate_from_file_name(const std::string& file) {
    static const std::regex deb_name(R"(^([a-z0-9][a-z0-9+.-]*)_([^_]+)_([a-z0-9-]+)\.deb$)");
    std::smatch m;
    const std::string base = fs::path(file).filename().string();
    if (!std::regex_match(base, m, deb_name)) return std::nullopt;
    Candidate c{m[1], m[2], m[3]};
    // URL-escaped epochs ("1%3a2.0") are rare for kernels; undo the one dpkg writes.
    const size_t escaped = c.version.find("%3a");
    if (escaped != std::string::npos) c.version.replace(escaped, 3, ":");
    if (c.arch == "all") c.arch.clear();
    c.file.name = c.name;
    return c;
}

bool wanted_package(std::string_view name) {
    return name.substr(0, 14) == "linux-headers-" || name.substr(0, 13) == "linux-kbuild-";
}

class Debian {
public:
    Debian(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {{{"suites", "comma-separated suites to crawl; missing ones are skipped",
                  kDefaultSuites},
                 {"components", "comma-separated components", "main"}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        // The user's mirrors, else the host's apt sources (a Debian host's are Debian mirrors).
        const auto& mirrors = request.mirrors.empty() ? request.apt_mirrors : request.mirrors;
        if (mirrors.empty())
            throw kbuild::Error("no mirror to crawl (give --mirror URL, or configure apt)");
        const auto suites = split(option(request, "suites", kDefaultSuites), ',');
        const auto components = split(option(request, "components", "main"), ',');
        std::vector<Candidate> candidates;
        int indexes = 0;
        for (const auto& suite : suites) {
            for (const auto& mirror : mirrors) {
                const std::string base = trim_slash(mirror);
                const std::string release_url = base + "/dists/" + suite + "/Release";
                kbuild::FetchedFile release_file;
                try {
                    release_file = host_.fetch({"Release", release_url});
                } catch (const kbuild::Error& e) {
                    // Each mirror holds only some suites (security lives apart): skip quietly.
                    host_.debug(std::string(e.what()) + "; skipped");
                    continue;
                }
                const auto release = kbuild::deb::parse_release(read_text(release_file.path));
                for (const auto& component : components) {
                    const std::string index = component + "/binary-" + request.arch + "/Packages.xz";
                    const auto entry = release.sha256.find(index);
                    if (entry == release.sha256.end()) {
                        host_.warn(release_url + " lists no " + index + "; skipped");
                        continue;
                    }
                    read_index_cached(base, suite, index, entry->second, candidates);
                    ++indexes;
                    host_.debug("read " + base + "/dists/" + suite + "/" + index);
                }
            }
        }
        if (indexes == 0)
            throw kbuild::Error("no Packages index found for suites " +
                                option(request, "suites", kDefaultSuites) + " on any mirror");
        return pair(candidates, request.distro, request.arch);
    }

    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        std::vector<Candidate> candidates;
        kbuild::ReleaseList unclaimed;
        for (const auto& file : request.files) {
            std::optional<Candidate> c = request.names_only ? candidate_from_file_name(file)
                                                            : from_control(file);
            if (!c) {
                unclaimed.unclaimed.push_back({file, "not a .deb named name_version_arch.deb"});
                continue;
            }
            if (!wanted_package(c->name)) {
                unclaimed.unclaimed.push_back({file, c->name + " is not a kernel headers or kbuild package"});
                continue;
            }
            (request.names_only ? c->file.url : c->file.path) = file;
            candidates.push_back(*c);
        }
        kbuild::ReleaseList list = pair(candidates, request.distro, request.arch);
        // Common and kbuild packages that no release needed are named too.
        std::set<std::string> used;
        for (const auto& r : list.releases)
            for (const auto& p : r.packages) used.insert(p.url.empty() ? p.path : p.url);
        for (const auto& c : candidates) {
            const std::string where = c.file.url.empty() ? c.file.path : c.file.url;
            if (!used.count(where))
                unclaimed.unclaimed.push_back({where, "no headers package in the batch needs it"});
        }
        list.unclaimed = unclaimed.unclaimed;
        return list;
    }

    kbuild::UnpackResult unpack(const kbuild::UnpackRequest& request) {
        return host_.extract_all(request);
    }

    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        const fs::path dir = fs::path(request.root) / "usr/src" / ("linux-headers-" + request.release);
        if (!fs::is_directory(dir))
            throw kbuild::Error(dir.string() + ": missing (no headers for " + request.release + ")");
        return {dir.string()};
    }

    kbuild::ConfigHash hash_config(const kbuild::ConfigHashRequest& request) {
        const fs::path config = fs::path(request.kernel_dir) / ".config";
        if (!fs::is_regular_file(config))
            throw kbuild::Error(config.string() + ": missing (the headers package has no .config)");
        return {config.string(), kbuild::md5_file(config.string())};
    }

private:
    static std::string option(const kbuild::CrawlRequest& request, const std::string& key,
                              const std::string& fallback) {
        const auto it = request.options.find(key);
        return it == request.options.end() || it->second.empty() ? fallback : it->second;
    }

    static std::string trim_slash(std::string text) {
        while (!text.empty() && text.back() == '/') text.pop_back();
        return text;
    }

    // A fetched Release file: small, plain text, host-owned and read-only.
    static std::string read_text(const std::string& path) {
        std::ifstream in(path);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    }

    // The kernel packages of one Packages index. What was read from an index is kept in the
    // plugin's cache under the index's sha256, so a later crawl of an unchanged suite reads a
    // few kilobytes instead of decompressing megabytes.
    void read_index_cached(const std::string& base, const std::string& suite,
                           const std::string& index, const kbuild::deb::IndexFile& file,
                           std::vector<Candidate>& out) {
        const fs::path cached = fs::path(host_.cache_dir()) / "indexes" / (file.sha256 + ".json");
        std::ifstream in(cached);
        const kbuild::Json saved = kbuild::Json::parse(in, nullptr, /*allow_exceptions=*/false);
        if (saved.is_array()) {
            for (const auto& j : saved) out.push_back(candidate_from_json(j));
            return;
        }
        const auto packages = host_.fetch({"Packages.xz", base + "/dists/" + suite + "/" + index, "",
                                           file.sha256, file.size});
        std::vector<Candidate> found;
        read_index(packages.path, base, found);
        kbuild::Json list = kbuild::Json::array();
        for (const auto& c : found) list.push_back(candidate_to_json(c));
        fs::create_directories(cached.parent_path());
        const fs::path temporary = cached.string() + ".tmp";
        std::ofstream(temporary) << list.dump();
        fs::rename(temporary, cached);
        out.insert(out.end(), found.begin(), found.end());
    }

    static kbuild::Json candidate_to_json(const Candidate& c) {
        kbuild::Json depends = kbuild::Json::array();
        for (const auto& group : c.depends) {
            kbuild::Json alternatives = kbuild::Json::array();
            for (const auto& r : group) alternatives.push_back({r.name, r.op, r.version});
            depends.push_back(alternatives);
        }
        return {{"name", c.name}, {"version", c.version}, {"arch", c.arch},
                {"depends", depends}, {"file", c.file}};
    }

    static Candidate candidate_from_json(const kbuild::Json& j) {
        Candidate c{j.at("name"), j.at("version"), j.at("arch")};
        for (const auto& group : j.at("depends")) {
            c.depends.emplace_back();
            for (const auto& r : group) c.depends.back().push_back({r.at(0), r.at(1), r.at(2)});
        }
        c.file = j.at("file").get<kbuild::Package>();
        return c;
    }

    static void read_index(const std::string& path, const std::string& base,
                           std::vector<Candidate>& out) {
        kbuild::deb::read_paragraphs(path, [&](const kbuild::deb::Paragraph& p) {
            const std::string_view name = p.get("Package");
            if (!wanted_package(name)) return;
            Candidate c{std::string(name), std::string(p.get("Version")),
                        std::string(p.get("Architecture"))};
            if (c.arch == "all") c.arch.clear();
            c.depends = kbuild::deb::parse_relations(p.get("Depends"));
            c.file.name = c.name;
            c.file.url = base + "/" + std::string(p.get("Filename"));
            c.file.sha256 = std::string(p.get("SHA256"));
            const std::string size(p.get("Size"));
            c.file.size = size.empty() ? -1 : std::stoll(size);
            out.push_back(std::move(c));
        });
    }

    // A local .deb's control data, read through the host's extract service.
    std::optional<Candidate> from_control(const std::string& file) {
        const fs::path dest = fs::path(host_.cache_dir()) / "control" /
                              kbuild::sha256_text(file).substr(0, 16);
        std::error_code ec;
        fs::remove_all(dest, ec);
        host_.extract({file, dest.string(), "control"});
        std::optional<Candidate> found;
        kbuild::deb::read_paragraphs((dest / "control").string(), [&](const kbuild::deb::Paragraph& p) {
            Candidate c{std::string(p.get("Package")), std::string(p.get("Version")),
                        std::string(p.get("Architecture"))};
            if (c.arch == "all") c.arch.clear();
            c.depends = kbuild::deb::parse_relations(p.get("Depends"));
            c.file.name = c.name;
            if (!found) found = c;
        });
        fs::remove_all(dest, ec);
        if (!found || found->name.empty()) throw kbuild::Error(file + ": control file has no Package");
        return found;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Debian, "debian", "0.1.0", "debian", "debian")
