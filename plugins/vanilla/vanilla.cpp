// kernel.org's kernels, shipped as source: <mirror>/v<major>.x/linux-<version>.tar.xz, checked
// against the sha256 that directory's clearsigned sha256sums.asc lists (the distro's keyring:
// --keyring, or the config file's), built with the config the user gives (--kernel-config).
// Each release asked for (`--option releases=6.1.158,5.5.2-arch1-1`) is the source of its
// leading version; the host prepares the tree with the config and a LOCALVERSION that makes
// the release exactly the one asked for (ABI 1.7).
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>
#include <kbuild/source_kernel.hpp>

#include <filesystem>
#include <map>

namespace fs = std::filesystem;
using kbuild::source::leading_version;

namespace {

class Vanilla {
public:
    Vanilla(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {
            {{"releases", "comma-separated kernel releases (uname -r) to build: 6.1.158,5.5.2-arch1-1", ""},
             {"config", "the kernels' config: a file or a URL (kbuild --kernel-config also takes base64:DATA)", ""}},
            {},
            {}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        kbuild::source::KernelOrgMirror mirror(host_, kbuild::source::kernel_org_mirror(request));
        const kbuild::Package config = config_of(request.options);
        kbuild::ReleaseList list;
        for (const auto& release : releases_of(request.options)) {
            kbuild::Release r = source_release(release, request.arch, config);
            const std::string version = leading_version(release);
            mirror.directory_of(version).serve(version, r);
            list.releases.push_back(r);
        }
        return list;
    }

    // Local tarballs (linux-<version>.tar.*): each the source of the release asked for with its
    // version, else of the version itself.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        const kbuild::Package config = config_of(request.options);
        std::map<std::string, std::string> asked;  // version -> release
        for (const auto& release : kbuild::split_list(kbuild::option(request.options, "releases", "")))
            asked[leading_version(release)] = release;
        kbuild::ReleaseList list;
        for (const auto& file : request.files) {
            const std::string name = fs::path(file).filename().string();
            const std::string version = kbuild::source::tarball_version(name);
            if (version.empty()) {
                list.unclaimed.push_back({file, "not a kernel source tarball (linux-<version>.tar.xz)"});
                continue;
            }
            const auto it = asked.find(version);
            kbuild::Release r = source_release(it == asked.end() ? version : it->second, request.arch, config);
            r.packages.push_back(kbuild::source::batch_package(request, file));
            list.releases.push_back(r);
        }
        return list;
    }

    // The tarball's one top directory (linux-6.1.158/).
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        return {kbuild::source::kernel_tree_in(request.root), false};
    }

private:
    static std::vector<std::string> releases_of(const kbuild::Options& options) {
        auto releases = kbuild::split_list(kbuild::option(options, "releases", ""));
        if (releases.empty()) throw kbuild::Error("name the kernels to build: --option releases=6.1.158[,...]");
        return releases;
    }

    static kbuild::Package config_of(const kbuild::Options& options) {
        const std::string value = kbuild::option(options, "config", "");
        if (value.empty())
            throw kbuild::Error("a source kernel needs its config: --kernel-config FILE|URL|base64:DATA");
        return kbuild::source::config_package(value);
    }

    static kbuild::Release source_release(const std::string& release, const std::string& arch,
                                          const kbuild::Package& config) {
        if (leading_version(release).empty())
            throw kbuild::Error("release " + release + " does not start with a kernel version (6.1.158)");
        kbuild::Release r;
        r.release = release;
        r.kernelversion = "1";
        r.distro = "vanilla";
        r.arch = arch;
        r.config = config;
        return r;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Vanilla, "vanilla", "0.1.0", "", "vanilla")
