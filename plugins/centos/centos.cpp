// CentOS and the distributions whose repositories look the same (Fedora, Oracle Linux,
// AlmaLinux, Rocky): kernels from yum repositories (crawl) or from rpm files and names (batch).
// A kernel release (`uname -r`, 3.10.0-1160.80.1.el7.x86_64) needs one package,
// kernel-devel-<release>.rpm (or kernel-uek-devel, kernel-rt-devel, kernel-ml/lt-devel from
// ELRepo), holding /usr/src/kernels/<release>. Everything else is the SDK's rpm layer.
#include <kbuild/rpm_repo.hpp>

namespace {

class CentOS : public kbuild::rpm::FamilyPlugin {
public:
    CentOS(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::rpm::kernel_devel_package,
                       {{{"centos",
                          "7/os/{arch},7/updates/{arch},8-stream/AppStream/{arch}/os,"
                          "9-stream/AppStream/{arch}/os"},
                         {"almalinux", "8/AppStream/{arch}/os,9/AppStream/{arch}/os"},
                         {"rocky", "8/AppStream/{arch}/os,9/AppStream/{arch}/os"},
                         {"fedora", "releases/40/Everything/{arch}/os,updates/40/Everything/{arch}"},
                         {"oracle",
                          "OL8/appstream/{arch},OL8/UEKR7/{arch},OL9/appstream/{arch},"
                          "OL9/UEKR7/{arch}"}},
                        /*mirror_lists=*/false,
                        "comma-separated repository paths under the mirror ({arch}: x86_64, aarch64)"}) {}
};

}  // namespace

KBUILD_PLUGIN(CentOS, "centos", "0.1.0", "centos", "centos", "fedora", "oracle", "almalinux", "rocky")
