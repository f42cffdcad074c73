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
// The package version <upstream>-<abi>.<upload><suffix> carries what `uname -v` says between
// '#' and "-Ubuntu": 5.15.0-91.101 -> #101-Ubuntu, 5.15.0-1051.56~20.04.1 -> #56~20.04.1-Ubuntu
// (the ~20.04.1 marks a backport), 6.5.0-9.9.1 -> #9.1-Ubuntu.
#include <kbuild/deb_archive.hpp>
#include <kbuild/plugin.hpp>

#include <algorithm>
#include <cctype>
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

// The kernel version Falco's loader and a build service ask for is the whole of what `uname -v`
// carries, not only its number: two uploads of one ABI differ in the suffix alone
// ("56~20.04.1" for focal's build, "56" for jammy's). "5.15.0-1051.56~20.04.1" -> "56~20.04.1",
// "6.8.0-1010.10+cvm1" -> "10+cvm1"; "" when the version has no upload number.
std::string uname_version(const std::string& version) {
    static const std::regex shape(R"(^(?:\d+:)?\d+\.\d+\.\d+-\d+\.(\d[0-9A-Za-z.+~]*)$)");
    std::smatch m;
    return std::regex_match(version, m, shape) ? std::string(m[1]) : std::string();
}

// The target Falco's driver loader asks for (falcoctl's Ubuntu distro; the last versions of the
// falco-driver-loader script had the same rule): "ubuntu-" and the first dash-separated part of
// `uname -r` made of letters alone, "generic" when there is none. So 4.15.0-2094-aws-fips is
// ubuntu-aws and 5.15.0-1036-azure-fde ubuntu-azure: the kernel release in the file name keeps
// them apart.
std::string falco_target(const std::string& release) {
    size_t start = release.find('-');
    while (start != std::string::npos) {
        const size_t end = release.find('-', start + 1);
        const std::string part = release.substr(start + 1, end == std::string::npos ? end : end - start - 1);
        const bool letters = !part.empty() && std::all_of(part.begin(), part.end(),
                                                          [](unsigned char c) { return std::isalpha(c) != 0; });
        if (letters) return "ubuntu-" + part;
        start = end;
    }
    return "ubuntu-generic";
}

bool lowlatency(const std::string& flavour) {
    return flavour.rfind("lowlatency", 0) == 0;
}

bool generic_family(const std::string& flavour) {
    return flavour.rfind("generic", 0) == 0 || lowlatency(flavour);
}

// The pool directory a headers package came from names its source package; without it, the
// common package is one of several guesses.
std::string source_of(const Binary& headers) {
    return kbuild::deb::pool_source(headers.file.where());
}

// The common package a flavour package depends on, when only its file name is known. The pool
// directory names the source package when the name comes from a URL; otherwise the names that
// source packages of this flavour give their common package, most specific first. All of the
// headers' own version: both come from one upload of one source.
std::vector<std::vector<Relation>> depends_from_name(const Binary& headers, const std::string&) {
    const auto kernel = flavour_package(headers.name);
    if (!kernel) return {};
    std::vector<std::string> names;
    const std::string source = source_of(headers);
    if (source == "linux")
        names.push_back("linux-headers-" + kernel->abi);
    else if (!source.empty())
        names.push_back(source + "-headers-" + kernel->abi);
    names.push_back("linux-" + kernel->flavour + "-" + kernel->series + "-headers-" + kernel->abi);
    names.push_back("linux-" + kernel->flavour + "-headers-" + kernel->abi);
    // generic and lowlatency were built from linux and linux-hwe*; lowlatency later also from its
    // own linux-lowlatency*, never generic.
    std::vector<std::string> sources;
    if (generic_family(kernel->flavour))
        sources = {"linux", "linux-hwe-" + kernel->series, "linux-hwe", "linux-hwe-edge"};
    if (lowlatency(kernel->flavour))
        sources.insert(sources.end(), {"linux-lowlatency", "linux-lowlatency-hwe-" + kernel->series});
    for (const auto& common : sources) names.push_back(common + "-headers-" + kernel->abi);
    std::vector<Relation> alternatives;
    for (const auto& name : names) {
        const bool seen =
            std::any_of(alternatives.begin(), alternatives.end(), [&](const Relation& r) { return r.name == name; });
        if (!seen) alternatives.push_back({name, "=", headers.version});
    }
    return {alternatives};
}

void describe_release(kbuild::Release& release, const Binary& headers) {
    release.kernelversion = uname_version(headers.version);
    release.target = falco_target(release.release);
}

// A backport's tag: "20.04.1" of 5.15.0-1036.40~20.04.1 (built for focal; 5.15.0-1036.40 is
// jammy's build of the same release).
std::string backport_of(const Binary& headers) {
    const size_t tilde = headers.version.find('~');
    return tilde == std::string::npos ? std::string() : headers.version.substr(tilde + 1);
}

// A bare file name has no pool directory: which of the guessed common packages a flavour needs
// is then not known (focal's lowlatency and generic backports have a common package each, of
// one version), and two of them in one batch must not be decided by the guesses' order.
bool guessed_depends(const Binary& headers) {
    return source_of(headers).empty();
}

kbuild::deb::PairingRules rules() {
    kbuild::deb::PairingRules r;
    r.release_of = release_of;
    r.depends_from_name = depends_from_name;
    r.describe_release = describe_release;
    r.variant_of = backport_of;
    r.guessed_depends = guessed_depends;
    return r;
}

class Ubuntu : public kbuild::deb::FamilyPlugin {
public:
    Ubuntu(kbuild::Host& host, const kbuild::Json&) : FamilyPlugin(host, wanted_package, rules()) {}

    kbuild::Description describe() {
        return {
            {{"series", "comma-separated series to crawl", kDefaultSeries},
             {"pockets", "comma-separated pockets: release, updates, security, proposed, backports", kDefaultPockets},
             {"components", "comma-separated components", kDefaultComponents}},
            // falco_target: every release's target is ubuntu-<its flavour's first word>.
            {{"ubuntu-<flavour>", "ubuntu"}},
            {{"ubuntu", {"/usr/share/keyrings/ubuntu-archive-keyring.gpg"}}}};
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
