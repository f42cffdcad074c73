// Amazon Linux 1, 2 and 2023: kernels from Amazon's yum repositories, each found through the
// mirror.list file that names it (crawl), or from rpm files and names (batch). A kernel release
// (`uname -r`, 4.14.336-257.562.amzn2.x86_64) needs its kernel-devel rpm, holding
// /usr/src/kernels/<release>; the extras topics (kernel-5.10, kernel-5.15) ship theirs as
// kernel-devel too. Everything else is the SDK's rpm layer.
#include <kbuild/rpm_repo.hpp>

namespace {

class AmazonLinux : public kbuild::rpm::FamilyPlugin {
public:
    AmazonLinux(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::rpm::kernel_devel_package,
                       {{{"amazonlinux", "latest/main/mirror.list,latest/updates/mirror.list"},
                         {"amazonlinux2",
                          "2/core/latest/{arch}/mirror.list,"
                          "2/extras/kernel-5.4/latest/{arch}/mirror.list,"
                          "2/extras/kernel-5.10/latest/{arch}/mirror.list,"
                          "2/extras/kernel-5.15/latest/{arch}/mirror.list"},
                         {"amazonlinux2023", "al2023/core/mirrors/latest/{arch}/mirror.list"}},
                        /*mirror_lists=*/true,
                        "comma-separated paths of mirror.list files under the mirror ({arch}: x86_64, "
                        "aarch64)"}) {}
};

}  // namespace

KBUILD_PLUGIN(AmazonLinux, "amazonlinux", "0.1.0", "amazonlinux", "amazonlinux", "amazonlinux2", "amazonlinux2023")
