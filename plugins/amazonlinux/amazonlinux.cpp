// Amazon Linux 1, 2 and 2023: kernels from Amazon's yum repositories, each found through the
// mirror.list file that names it (crawl), or from rpm files and names (batch). A kernel release
// (`uname -r`, 4.14.336-257.562.amzn2.x86_64) needs its kernel-devel rpm, holding
// /usr/src/kernels/<release>; the extras topics (kernel-5.10, kernel-5.15) ship theirs as
// kernel-devel too.
#include <kbuild/rpm_repo.hpp>

#include <map>

namespace {

// mirror.list paths under each version's mirror, {arch} standing for x86_64 or aarch64. The
// mirror itself is the user's (--mirror or the config file): none is written here.
const std::map<std::string, std::string>& default_lists() {
    static const std::map<std::string, std::string> lists = {
        {"amazonlinux", "latest/main/mirror.list,latest/updates/mirror.list"},
        {"amazonlinux2",
         "2/core/latest/{arch}/mirror.list,2/extras/kernel-5.4/latest/{arch}/mirror.list,"
         "2/extras/kernel-5.10/latest/{arch}/mirror.list,2/extras/kernel-5.15/latest/{arch}/mirror.list"},
        {"amazonlinux2023", "al2023/core/mirrors/latest/{arch}/mirror.list"},
    };
    return lists;
}

class AmazonLinux : public kbuild::rpm::FamilyPlugin {
public:
    AmazonLinux(kbuild::Host& host, const kbuild::Json&)
        : FamilyPlugin(host, kbuild::rpm::kernel_devel_package) {}

    kbuild::Description describe() {
        return {{{"repos",
                  "comma-separated mirror.list paths under the mirror ({arch}: x86_64, aarch64); "
                  "defaults per distro: amazonlinux (1) main and updates, amazonlinux2 core and the "
                  "kernel-5.x extras, amazonlinux2023 core",
                  default_lists().at("amazonlinux2")}}};
    }

    kbuild::ReleaseList crawl(const kbuild::CrawlRequest& request) {
        return crawl_and_group(request, query_for(request, default_lists(), /*mirror_lists=*/true));
    }
};

}  // namespace

KBUILD_PLUGIN(AmazonLinux, "amazonlinux", "0.1.0", "amazonlinux", "amazonlinux", "amazonlinux2",
              "amazonlinux2023")
