// LinuxKit's kernels (Docker Desktop's VM), shipped as source (ABI 1.7): kernel.org's
// linux-<version>.tar.gz, or an archive of LinuxKit's own tree on GitHub
// (github.com/linuxkit/linux/archive/v<version>.tar.gz, whose top directory is
// linux-<version>/), built with LinuxKit's config (kernel/config-<series>-x86_64 in the linuxkit
// repository) given as --kernel-config. LinuxKit's kernels are <version>-linuxkit
// (CONFIG_LOCALVERSION); the host makes the release so whatever the config says. Without a
// config the releases are listed unavailable, saying what to give.
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>
#include <kbuild/source_kernel.hpp>

#include <regex>

namespace {

// The kernel version of a source archive's name: linux-4.19.76.tar.gz (kernel.org) or
// v4.9.125.tar.gz (a GitHub archive of a tag); "" for any other name.
std::string archive_version(const std::string& name) {
    static const std::regex github(R"(^v(\d+\.\d+(\.\d+)?)\.tar\.(gz|xz|bz2)$)");
    std::smatch match;
    if (std::regex_match(name, match, github)) return match[1].str();
    return kbuild::source::tarball_version(name);
}

class LinuxKit {
public:
    LinuxKit(kbuild::Host&, const kbuild::Json&) {}

    kbuild::Description describe() {
        return {{{"config",
                  "LinuxKit's kernel config (kernel/config-<series>-x86_64): a file or a URL "
                  "(kbuild --kernel-config also takes base64:DATA)",
                  ""}},
                {},
                {}};
    }

    // Source archives, each the release <version>-linuxkit.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        const std::string config = kbuild::option(request.options, "config", "");
        kbuild::ReleaseList list;
        for (const auto& file : request.files) {
            const std::string name = kbuild::source::file_name_of(file);
            const std::string version = archive_version(name);
            if (version.empty()) {
                list.unclaimed.push_back(
                    {file, "not a kernel source archive (linux-<version>.tar.gz or GitHub's v<version>.tar.gz)"});
                continue;
            }
            kbuild::Release r;
            r.release = version + "-linuxkit";
            r.kernelversion = "1";
            r.distro = "linuxkit";
            r.arch = request.arch;
            if (config.empty())
                r.unavailable = "no config: give --kernel-config (LinuxKit's kernel/config-<series>-x86_64)";
            else
                r.config = kbuild::source::config_package(config);
            r.packages.push_back(kbuild::source::batch_package(request, file));
            list.releases.push_back(r);
        }
        return list;
    }

    // The archive's one top directory (linux-4.19.76/, GitHub's linux-4.9.125/).
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        return {kbuild::source::kernel_tree_in(request.root), false};
    }
};

}  // namespace

KBUILD_PLUGIN(LinuxKit, "linuxkit", "0.1.0", "", "linuxkit")
