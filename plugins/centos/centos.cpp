// CentOS and the distributions whose repositories look the same (Fedora, Oracle Linux,
// AlmaLinux, Rocky): kernels from yum repositories (crawl) or from rpm files and names (batch).
// A kernel release (`uname -r`, 3.10.0-1160.80.1.el7.x86_64) needs one package,
// kernel-devel-<release>.rpm (or kernel-uek-devel, kernel-rt-devel, kernel-ml/lt-devel from
// ELRepo), holding /usr/src/kernels/<release>.
#include <kbuild/rpm_repo.hpp>

#include <map>

namespace {

// Repository paths under each distro's mirror, {arch} standing for x86_64 or aarch64. The
// mirror itself is the user's (--mirror or the config file): none is written here.
const std::map<std::string, std::string>& default_repos() {
    static const std::map<std::string, std::string> repos = {
        {"centos", "7/os/{arch},7/updates/{arch},8-stream/AppStream/{arch}/os,"
                   "9-stream/AppStream/{arch}/os"},
        {"almalinux", "8/AppStream/{arch}/os,9/AppStream/{arch}/os"},
        {"rocky", "8/AppStream/{arch}/os,9/AppStream/{arch}/os"},
        {"fedora", "releases/40/Everything/{arch}/os,updates/40/Everything/{arch}"},
        {"oracle", "OL8/appstream/{arch},OL8/UEKR7/{arch},OL9/appstream/{arch},OL9/UEKR7/{arch}"},
    };
    return repos;
}

class CentOS : public kbuild::rpm::FamilyPlugin {
public:
    CentOS(kbuild::Host& host, const kbuild::Json&) : FamilyPlugin(host, kbuild::rpm::kernel_devel_package) {}

    kbuild::Description describe() {
        return {{{"repos",
                  "comma-separated repository paths under the mirror ({arch}: x86_64, aarch64); "
                  "defaults per distro: centos 7 os/updates and Stream 8/9 AppStream, almalinux "
                  "and rocky 8/9 AppStream, fedora 40, oracle OL8/OL9 appstream and UEKR7",
                  default_repos().at("centos")}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        return crawl_and_group(request, query_for(request, default_repos(), /*mirror_lists=*/false));
    }
};

}  // namespace

KBUILD_PLUGIN(CentOS, "centos", "0.1.0", "centos", "centos", "fedora", "oracle", "almalinux", "rocky")
