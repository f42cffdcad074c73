// Ubuntu: every flavour's kernels from an Ubuntu archive's Packages indexes (crawl), from .deb
// files or from names (batch).
//
// A kernel release (`uname -r`) is <abi>-<flavour>: 5.15.0-91-generic, 5.15.0-1051-aws,
// 4.15.0-2094-aws-fips. Its module build needs two packages from one source package:
//   linux-headers-<release>        the flavour's directory: .config, generated headers, scripts
//   the common headers package     the rest of the tree, which the flavour's symlinks point into:
//                                    linux-headers-<abi>                 source linux
//                                    linux-<flavour>-headers-<abi>       derivatives (linux-aws)
//                                    linux-<flavour>-<series>-headers-<abi>   backports
//                                    linux-hwe[-<series>]-headers-<abi>  generic backports
// The package version carries the upload number, the `#N` of `uname -v`:
// 5.15.0-91.101 -> 101, 5.15.0-1051.56~20.04.1 -> 56 (the ~20.04.1 marks a backport).
#include <kbuild/deb_archive.hpp>
#include <kbuild/plugin.hpp>

#include <algorithm>
#include <optional>
#include <regex>

using kbuild::deb::Binary;
using kbuild::deb::Relation;

namespace {

const char* const kDefaultSeries = "focal,jammy,noble";
const char* const kDefaultPockets = "release,updates,security";
const char* const kDefaultComponents = "main,universe";

// Kernel headers packages, flavour and common: linux-headers-*, linux-*-headers-*.
bool wanted_package(std::string_view name) {
    return name.substr(0, 6) == "linux-" && name.find("headers-") != std::string_view::npos;
}

struct KernelName {
    std::string abi;      // 5.15.0-1051
    std::string series;   // 5.15 (the upstream major.minor)
    std::string flavour;  // aws
};

// "linux-headers-5.15.0-1051-aws" -> {5.15.0-1051, 5.15, aws}; nullopt for common and meta
// packages (linux-headers-5.15.0-1051, linux-headers-generic-hwe-22.04).
std::optional<KernelName> flavour_package(const std::string& name) {
    static const std::regex shape(R"(^linux-headers-((\d+\.\d+)\.\d+-\d+)-([a-z][a-z0-9.+-]*)$)");
    std::smatch m;
    if (!std::regex_match(name, m, shape)) return std::nullopt;
    return KernelName{m[1], m[2], m[3]};
}

std::string release_of(const Binary& b) {
    const auto kernel = flavour_package(b.name);
    return kernel ? kernel->abi + "-" + kernel->flavour : std::string();
}

// A dependency of a module build: a common headers package (libc and the like are not).
bool needed(const Relation& r) { return wanted_package(r.name); }

// "5.15.0-1051.56~20.04.1" -> "56"; "" when the version has no upload number.
std::string upload_number(const std::string& version) {
    static const std::regex shape(R"(^(?:\d+:)?\d+\.\d+\.\d+-\d+\.(\d+))");
    std::smatch m;
    return std::regex_search(version, m, shape) ? std::string(m[1]) : std::string();
}

bool generic_family(const std::string& flavour) {
    return flavour.rfind("generic", 0) == 0 || flavour.rfind("lowlatency", 0) == 0;
}

// The common package a flavour package depends on, when only its file name is known. The pool
// directory names the source package when the name comes from a URL; otherwise the names that
// source packages of this flavour give their common package, most specific first. All of the
// headers' own version: both come from one upload of one source.
std::vector<std::vector<Relation>> depends_from_name(const Binary& headers, const std::string&) {
    const auto kernel = flavour_package(headers.name);
    if (!kernel) return {};
    std::vector<std::string> names;
    const std::string source = kbuild::deb::pool_source(headers.file.url.empty() ? headers.file.path
                                                                                 : headers.file.url);
    if (source == "linux") names.push_back("linux-headers-" + kernel->abi);
    else if (!source.empty()) names.push_back(source + "-headers-" + kernel->abi);
    names.push_back("linux-" + kernel->flavour + "-" + kernel->series + "-headers-" + kernel->abi);
    names.push_back("linux-" + kernel->flavour + "-headers-" + kernel->abi);
    if (generic_family(kernel->flavour)) {
        for (const std::string& common :
             std::vector<std::string>{"linux", "linux-hwe-" + kernel->series, "linux-hwe", "linux-hwe-edge", "linux-lowlatency",
              "linux-lowlatency-hwe-" + kernel->series})
            names.push_back(common + "-headers-" + kernel->abi);
    }
    std::vector<Relation> alternatives;
    for (const auto& name : names) {
        const bool seen = std::any_of(alternatives.begin(), alternatives.end(),
                                      [&](const Relation& r) { return r.name == name; });
        if (!seen) alternatives.push_back({name, "=", headers.version});
    }
    return {alternatives};
}

void describe_release(kbuild::Release& release, const Binary& headers) {
    release.kernelversion = upload_number(headers.version);
    release.target = "ubuntu-" + flavour_package(headers.name)->flavour;
}

// A backport's tag: "20.04.1" of 5.15.0-1036.40~20.04.1 (built for focal; 5.15.0-1036.40 is
// jammy's build of the same release).
std::string backport_of(const Binary& headers) {
    const size_t tilde = headers.version.find('~');
    return tilde == std::string::npos ? std::string() : headers.version.substr(tilde + 1);
}

const kbuild::deb::PairingRules& rules() {
    static const kbuild::deb::PairingRules r{release_of, needed, depends_from_name, describe_release,
                                             backport_of};
    return r;
}

class Ubuntu : public kbuild::deb::FamilyPlugin {
public:
    Ubuntu(kbuild::Host& host, const kbuild::Json&) : FamilyPlugin(host, wanted_package, rules()) {}

    kbuild::Description describe() {
        return {{{"series", "comma-separated series to crawl", kDefaultSeries},
                 {"pockets", "comma-separated pockets: release, updates, security, proposed, backports",
                  kDefaultPockets},
                 {"components", "comma-separated components", kDefaultComponents}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        using kbuild::option;
        using kbuild::split_list;
        // No default mirror: an Ubuntu archive (and its security archive) is the user's to name.
        if (request.mirrors.empty())
            throw kbuild::Error("no Ubuntu mirror to crawl (give --mirror URL, once per archive)");
        kbuild::deb::ArchiveQuery query;
        query.mirrors = request.mirrors;
        for (const auto& series : split_list(option(request.options, "series", kDefaultSeries)))
            for (const auto& pocket : split_list(option(request.options, "pockets", kDefaultPockets)))
                query.suites.push_back(pocket == "release" ? series : series + "-" + pocket);
        query.components = split_list(option(request.options, "components", kDefaultComponents));
        query.arch = request.arch;
        return crawl_and_pair(request, query);
    }
};

}  // namespace

KBUILD_PLUGIN(Ubuntu, "ubuntu", "0.1.0", "ubuntu", "ubuntu")
