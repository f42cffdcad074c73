// Garden Linux (SAP's Debian-based distribution): kernels from its apt repository's Packages
// indexes (crawl), from .deb files or from names (batch). Its kernels are built with Debian's
// packaging, so a kernel release (`uname -r`) needs the same three packages as Debian's:
//   linux-headers-<release>           the flavour's directory: .config, Module.symvers
//   linux-headers-<abi>-common        the rest of the tree, which the flavour's symlinks point into
//   linux-kbuild-<series or version>  the scripts and tools the headers' symlinks point at
// The release has been named three ways:
//   5.10.141-garden-cloud-amd64        linux-headers-5.10.141-garden-common, linux-kbuild-5.10
//   5.15.114-gardenlinux-cloud-amd64   linux-headers-5.15.114-gardenlinux-common, linux-kbuild-5.15
//   6.6.103-cloud-amd64 (1443 and on)  linux-headers-6.6.103-common, linux-kbuild-6.6.103
// and Debian's own kernels (5.4.0-5-cloud-amd64), which early Garden Linux ran, follow Debian's
// rule. The flavours are amd64, cloud-amd64, arm64 and cloud-arm64.
//
// The repository has a suite per Garden Linux version (`1592.0`, days since 2020-03-31 and a
// patch number), `today` (the newest packages) and `experimental`. A package built for one
// version from a newer one is a backport, tagged in its version: 6.6.103-0gl0~bp1592.
#include <kbuild/deb_archive.hpp>
#include <kbuild/plugin.hpp>

#include <regex>

using kbuild::deb::Binary;
using kbuild::deb::Relation;

namespace {

const char* const kDefaultSuites = "today";
const char* const kKeyring = "/etc/apt/trusted.gpg.d/gardenlinux.asc";

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// A release's parts: 5.15.114-gardenlinux-cloud-amd64 -> abi 5.15.114-gardenlinux, series 5.15,
// flavour cloud-amd64; 5.4.0-5-cloud-amd64 -> 5.4.0-5; 6.6.103-amd64 -> 6.6.103.
struct KernelName {
    std::string abi, series, flavour;
};

bool parse_release(const std::string& release, KernelName& name) {
    static const std::regex shape(
        R"(^((\d+\.\d+)(?:\.\d+)?(?:\+[a-z0-9]+)?(?:-\d+)?(?:-garden(?:linux)?)?)-((?:[a-z0-9]+-)?(?:amd64|arm64))$)");
    std::smatch m;
    if (!std::regex_match(release, m, shape)) return false;
    name = {m[1], m[2], m[3]};
    return true;
}

// The Depends a headers package has when only its name is known (a URL list, a bare file): the
// common package of its own version, and the kbuild package named by the series (Debian, and
// Garden Linux before 6.6) or by the upstream version (6.6.103 and on), at least as new.
std::vector<std::vector<Relation>> depends_from_name(const Binary& headers, const std::string& release) {
    KernelName name;
    if (!parse_release(release, name)) return {};
    const std::string rt = starts_with(name.flavour, "rt-") ? "-rt" : "";
    const std::string upstream = name.abi.substr(0, name.abi.find('-'));
    std::vector<std::vector<Relation>> depends = {
        {{"linux-headers-" + name.abi + "-common" + rt, "=", headers.version}},
        {{"linux-kbuild-" + name.series, ">=", headers.version}}};
    if (upstream != name.series) depends.back().push_back({"linux-kbuild-" + upstream, ">=", headers.version});
    return depends;
}

// The Garden Linux version a backport was built for: "1592" of 6.6.103-0gl0~bp1592 (or
// +bp1877); "" for a build of its own version. Two builds of one release stay apart by it.
std::string backport_of(const Binary& headers) {
    static const std::regex tagged(R"([~+]bp(\d+)$)");
    std::smatch m;
    return std::regex_search(headers.version, m, tagged) ? std::string(m[1]) : std::string();
}

kbuild::deb::PairingRules rules() {
    kbuild::deb::PairingRules r;
    r.release_of = kbuild::deb::debian_headers_release;
    r.depends_from_name = depends_from_name;
    // Built with Debian's packaging: `uname -v` is #1 always. Every release's target is
    // gardenlinux (the distro's own name), whatever its flavour.
    r.describe_release = [](kbuild::Release& release, const Binary&) { release.kernelversion = "1"; };
    r.variant_of = backport_of;
    r.host_tools = kbuild::deb::debian_host_tools;  // cross builds take the build host's kbuild
    return r;
}

class GardenLinux : public kbuild::deb::FamilyPlugin {
public:
    GardenLinux(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::deb::debian_kernel_package, rules()) {}

    kbuild::Description describe() {
        return {{{"suites",
                  "comma-separated suites to crawl: today, experimental, a version (1592.0); missing ones "
                  "are skipped",
                  kDefaultSuites},
                 {"components", "comma-separated components", "main"}},
                {{"gardenlinux", "gardenlinux"}},
                // Where Garden Linux keeps its repository's key (signed-by in its sources.list).
                {{"gardenlinux", {kKeyring}}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        using kbuild::option;
        using kbuild::split_list;
        // No default mirror: a Debian host's apt sources are not Garden Linux's repository.
        if (request.mirrors.empty())
            throw kbuild::Error(
                "no Garden Linux repository to crawl (give --mirror URL, the directory holding dists/)");
        kbuild::deb::ArchiveQuery query;
        query.mirrors = request.mirrors;
        query.suites = split_list(option(request.options, "suites", kDefaultSuites));
        query.components = split_list(option(request.options, "components", "main"));
        query.arch = request.arch;
        return crawl_and_pair(request, query);
    }
};

}  // namespace

KBUILD_PLUGIN(GardenLinux, "gardenlinux", "0.1.0", "debian", "gardenlinux")
