// Alibaba Cloud Linux 2 and 3 (alinux): kernels from its yum repositories (os, updates and plus
// of 2.1903 and 3) or from rpm files and names (batch). A kernel release (`uname -r`,
// 5.10.134-16.3.al8.x86_64, 4.19.91-27.al7.x86_64) is one kernel-devel package holding
// /usr/src/kernels/<release>, as on CentOS, whose layout the repositories share. Everything else
// is the SDK's rpm layer; both versions are the target alinux.
#include <kbuild/rpm_repo.hpp>

namespace {

class AlibabaCloudLinux : public kbuild::rpm::FamilyPlugin {
public:
    AlibabaCloudLinux(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::rpm::kernel_devel_package,
                       {{{"alinux",
                          "2.1903/os/{arch},2.1903/updates/{arch},2.1903/plus/{arch},"
                          "3/os/{arch},3/updates/{arch},3/plus/{arch}"}},
                        /*mirror_lists=*/false,
                        "comma-separated repository paths under the mirror ({arch}: x86_64, aarch64)"}) {}
};

}  // namespace

KBUILD_PLUGIN(AlibabaCloudLinux, "alinux", "0.1.0", "alinux", "alinux")
