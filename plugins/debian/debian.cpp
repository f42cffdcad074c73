// Debian: kernels from a Debian archive's Packages indexes (crawl) or from .deb files and
// names (batch). A kernel release (`uname -r`, e.g. 6.1.0-50-amd64) needs three packages:
// linux-headers-<release>, its linux-headers-<abi>-common[-rt], and the linux-kbuild-* that
// holds the scripts the headers' symlinks point at.
//
// linux-kbuild-* holds programs (fixdep, modpost) built for one Debian release, which run only
// where its glibc is as new: bullseye's backports of 6.1 (6.1.0-0.deb11.N, gcc 10, built in the
// bullseye image) need bullseye-security's linux-kbuild-6.1 (6.1.x-1~deb11u1), not bookworm's
// newer one. So a kernel takes the kbuild package of its own version, else one of its own
// release, else the newest. Cross-building (an arm64 kernel on an amd64 host), it is the build
// host's: its programs run there, and Debian's modpost reads modules of any architecture.
#include <kbuild/deb_archive.hpp>
#include <kbuild/plugin.hpp>

#include <map>
#include <regex>

using kbuild::deb::Binary;
using kbuild::deb::Relation;

namespace {

const char* const kDefaultSuites =
    "bullseye,bullseye-updates,bullseye-security,bookworm,bookworm-updates,bookworm-security,"
    "trixie,trixie-updates,trixie-security";

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// The Depends a headers package has when only its name is known (a URL list, a bare file):
// the common package of the same version and a kbuild package of at least that version.
std::vector<std::vector<Relation>> depends_from_name(const Binary& headers, const std::string& release) {
    static const std::regex shape(R"(^(\d+)\.(\d+)((?:\.\d+)?(?:\+[a-z0-9]+)?(?:-\d+)?)-(.+)$)");
    std::smatch m;
    if (!std::regex_match(release, m, shape)) return {};
    const std::string abi = std::string(m[1]) + "." + std::string(m[2]) + std::string(m[3]);
    const std::string series = std::string(m[1]) + "." + std::string(m[2]);
    const std::string flavour = m[4];
    const std::string common = "linux-headers-" + abi + "-common" + (starts_with(flavour, "rt-") ? "-rt" : "");
    const std::string upstream = abi.substr(0, abi.find('-'));
    const std::string& version = headers.version;
    std::vector<std::vector<Relation>> depends = {{{common, "=", version}},
                                                  {{"linux-kbuild-" + series, ">=", version}}};
    if (upstream != series) depends.back().push_back({"linux-kbuild-" + upstream, ">=", version});
    return depends;
}

// The Debian release a package is built for: its suite's ("bullseye-security" -> bullseye)
// when an index listed it, else the one its version names (6.1.180-1~deb11u1, ~bpo11+1,
// 6.1.0-0.deb11.N: bullseye). "" for a bare version in a batch: the release whose own kernel it
// is, which no name tells.
std::string runs_on(const Binary& b) {
    if (!b.suite.empty()) return b.suite.substr(0, b.suite.find('-'));
    static const std::regex tagged(R"([~+.](?:deb|bpo)(\d+))");
    static const std::map<std::string, std::string> codenames = {
        {"9", "stretch"}, {"10", "buster"}, {"11", "bullseye"}, {"12", "bookworm"}, {"13", "trixie"}, {"14", "forky"}};
    std::smatch m;
    if (!std::regex_search(b.version, m, tagged)) return {};
    const auto known = codenames.find(m[1]);
    return known == codenames.end() ? "debian " + std::string(m[1]) : known->second;
}

kbuild::deb::PairingRules rules() {
    kbuild::deb::PairingRules r;
    r.release_of = kbuild::deb::debian_headers_release;
    // needed (unset): only the header and kbuild packages, which debian_kernel_package reads, are
    // part of a module build.
    r.depends_from_name = depends_from_name;
    // Debian's `uname -v` has no upload number to speak of: #1 always.
    r.describe_release = [](kbuild::Release& release, const Binary&) { release.kernelversion = "1"; };
    r.runs_on = runs_on;
    // fixdep and modpost: an arm64 kernel cross-built here takes this host's linux-kbuild-*.
    r.host_tools = kbuild::deb::debian_host_tools;
    return r;
}

class Debian : public kbuild::deb::FamilyPlugin {
public:
    Debian(kbuild::Host& host, const kbuild::Json&) : FamilyPlugin(host, kbuild::deb::debian_kernel_package, rules()) {}

    kbuild::Description describe() {
        return {{{"suites", "comma-separated suites to crawl; missing ones are skipped", kDefaultSuites},
                 {"components", "comma-separated components", "main"}},
                {{"debian", "debian"}},
                {{"debian", {"/usr/share/keyrings/debian-archive-keyring.gpg"}}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        using kbuild::option;
        using kbuild::split_list;
        // The user's mirrors, else the host's apt sources (a Debian host's are Debian mirrors).
        kbuild::deb::ArchiveQuery query;
        query.mirrors = request.mirrors.empty() ? request.apt_mirrors : request.mirrors;
        if (query.mirrors.empty()) throw kbuild::Error("no mirror to crawl (give --mirror URL, or configure apt)");
        query.suites = split_list(option(request.options, "suites", kDefaultSuites));
        query.components = split_list(option(request.options, "components", "main"));
        query.arch = request.arch;
        return crawl_and_pair(request, query);
    }
};

}  // namespace

KBUILD_PLUGIN(Debian, "debian", "0.1.0", "debian", "debian")
