// Minikube's VM kernels, shipped as source (ABI 1.7): each Minikube version builds one
// kernel.org kernel with its own defconfig (deploy/iso/minikube-iso/.../linux_defconfig, or
// linux_x86_64_defconfig since v1.26.0). A release is a defconfig: its kernel's version (a
// Minikube kernel's uname -r is the plain version), the Minikube version its variant, the
// defconfig its config (make olddefconfig fills in the rest), kernel.org's tarball of that
// version its source. kernel-packer's lists name the kernel in the defconfig's URL
// (`...linux_x86_64_defconfig?kernel=5.10.207`); a local defconfig names it with
// --option kernel=<version>. A crawl reads kernel.org's layout as the vanilla plugin does.
#include <kbuild/options.hpp>
#include <kbuild/plugin.hpp>
#include <kbuild/source_kernel.hpp>

#include <map>
#include <regex>

namespace {

// Minikube's version in a path (".../minikube/v1.33.0/deploy/..."), "" when there is none.
std::string minikube_version_in(const std::string& where) {
    static const std::regex version(R"(/(v\d+\.\d+\.\d+)/)");
    std::smatch match;
    return std::regex_search(where, match, version) ? match[1].str() : std::string();
}

// The kernel a listed defconfig's URL names (?kernel=5.10.207), "" when it names none.
std::string kernel_in_query(const std::string& where) {
    static const std::regex kernel(R"([?&]kernel=(\d+\.\d+(\.\d+)?)(&|$))");
    std::smatch match;
    return std::regex_search(where, match, kernel) ? match[1].str() : std::string();
}

bool ends_with(const std::string& text, const std::string& end) {
    return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

class Minikube {
public:
    Minikube(kbuild::Host& host, const kbuild::Json&) : host_(host) {}

    kbuild::Description describe() {
        return {{{"kernel", "the kernel version of local defconfig files: 5.10.207", ""},
                 {"releases", "crawl: comma-separated kernel versions to build: 5.10.207,4.19.202", ""},
                 {"config", "crawl: the kernels' defconfig, a file or a URL (kbuild --kernel-config)", ""}},
                {},
                {}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        kbuild::source::KernelOrgMirror mirror(host_, kbuild::source::kernel_org_mirror(request));
        const std::string config = kbuild::option(request.options, "config", "");
        if (config.empty()) throw kbuild::Error("a Minikube kernel needs its defconfig: --kernel-config FILE|URL");
        const auto versions = kbuild::split_list(kbuild::option(request.options, "releases", ""));
        if (versions.empty()) throw kbuild::Error("name the kernels to build: --option releases=5.10.207[,...]");
        kbuild::ReleaseList list;
        for (const auto& version : versions) {
            if (kbuild::source::leading_version(version) != version)
                throw kbuild::Error("release " + version + " is not a kernel version (5.10.207)");
            kbuild::Release r = release_of(version, minikube_version_in(config), request.arch);
            r.config = kbuild::source::config_package(config);
            mirror.directory_of(version).serve(version, r);
            list.releases.push_back(r);
        }
        return list;
    }

    // Defconfigs and kernel.org tarballs: a release per defconfig, claiming its version's tarball.
    kbuild::ReleaseList batch_packages(const kbuild::BatchRequest& request) {
        kbuild::ReleaseList list;
        std::map<std::string, std::string> tarballs;  // version -> its tarball
        std::vector<kbuild::Release> configs;
        for (const auto& file : request.files) {
            const std::string name = kbuild::source::file_name_of(file);
            if (const std::string version = kbuild::source::tarball_version(name); !version.empty()) {
                if (!tarballs.emplace(version, file).second)
                    list.unclaimed.push_back({file, "linux-" + version + " is already listed: " + tarballs[version]});
                continue;
            }
            if (!ends_with(name, "defconfig")) {
                list.unclaimed.push_back({file,
                                          "neither a Minikube defconfig (linux_x86_64_defconfig?kernel=<version>) "
                                          "nor a kernel source tarball (linux-<version>.tar.xz)"});
                continue;
            }
            std::string kernel = kernel_in_query(file);
            if (kernel.empty()) kernel = kbuild::option(request.options, "kernel", "");
            if (kernel.empty() || kbuild::source::leading_version(kernel) != kernel) {
                list.unclaimed.push_back({file, "a defconfig naming no kernel version: give --option kernel=5.10.207"});
                continue;
            }
            kbuild::Release r = release_of(kernel, minikube_version_in(file), request.arch);
            if (request.names_only) {
                r.config.url = file;
            } else {
                r.config = kbuild::source::config_package(file);  // absolute: relative is in the unpacked root
            }
            r.config.name = name;
            configs.push_back(r);
        }
        std::map<std::string, bool> claimed;  // version -> a release uses its tarball
        for (auto& r : configs) {
            const auto it = tarballs.find(r.release);
            if (it == tarballs.end()) {
                r.unavailable = "no linux-" + r.release + ".tar.* listed: Minikube " +
                                (r.variant.empty() ? "" : r.variant + " ") + "builds kernel.org's " + r.release;
            } else {
                r.packages.push_back(kbuild::source::batch_package(request, it->second));
                claimed[r.release] = true;
            }
            list.releases.push_back(r);
        }
        for (const auto& [version, file] : tarballs)
            if (!claimed.count(version))
                list.unclaimed.push_back({file, "no Minikube defconfig listed for kernel " + version});
        return list;
    }

    // The tarball's one top directory (linux-5.10.207/).
    kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest& request) {
        return {kbuild::source::kernel_tree_in(request.root), false};
    }

private:
    static kbuild::Release release_of(const std::string& kernel, const std::string& minikube, const std::string& arch) {
        kbuild::Release r;
        r.release = kernel;
        r.kernelversion = "1";
        r.distro = "minikube";
        r.arch = arch;
        r.variant = minikube;
        return r;
    }

    kbuild::Host& host_;
};

}  // namespace

KBUILD_PLUGIN(Minikube, "minikube", "0.1.0", "", "minikube")
